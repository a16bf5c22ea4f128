"""ReferenceNet: a headless 2D UNet that returns reference (and motion) features.

EMO runs it on the reference portrait's latent (once per generation) and on the
latents of the last motion frames (once per clip). Its outputs are handed to
:class:`~emo.models.Backbone` as plain arguments: no hooks, no global state.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from emo.models.blocks import BlockContext
from emo.models.unet_2d import SpatialUNet, TimestepLike, UNet2D

__all__ = ["ReferenceFeatures", "ReferenceNet", "UNetSource"]

#: What ``from_unet2d`` accepts: a UNet2D, a ``(config, state_dict)`` pair, a state
#: dict (config from keyword arguments), or a path to a diffusers-format UNet folder.
UNetSource = (
    UNet2D
    | tuple[Mapping[str, Any], Mapping[str, torch.Tensor]]
    | Mapping[str, torch.Tensor]
    | str
    | os.PathLike[str]
)


@dataclass
class ReferenceFeatures:
    """Features of some frames, computed by :class:`ReferenceNet`.

    Attributes
    ----------
    attention
        For every spatial transformer block, the normalised tokens entering its
        self-attention ``attn1``, shape ``(b, h*w, c)``, keyed by the block path
        (``"down_blocks.0.attentions.0.transformer_blocks.0"``).
    layers
        The output of every layer (resnet [+ spatial transformer]) of every down
        and up block and of the mid block, shape ``(b, c, h, w)``, keyed by the path
        of the temporal module that follows it in a Backbone
        (``"down_blocks.0.motion_modules.1"``, ``"mid_block.motion_modules.0"``).
    """

    attention: dict[str, torch.Tensor] = field(default_factory=dict)
    layers: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        """Batch size of the features (0 when empty)."""
        for tensor in self.attention.values():
            return int(tensor.shape[0])
        for tensor in self.layers.values():
            return int(tensor.shape[0])
        return 0

    def to(
        self, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> ReferenceFeatures:
        """Return a copy with every tensor moved/cast."""
        return ReferenceFeatures(
            {k: v.to(device=device, dtype=dtype) for k, v in self.attention.items()},
            {k: v.to(device=device, dtype=dtype) for k, v in self.layers.items()},
        )

    def detach(self) -> ReferenceFeatures:
        """Return a copy with every tensor detached from the autograd graph."""
        return ReferenceFeatures(
            {k: v.detach() for k, v in self.attention.items()},
            {k: v.detach() for k, v in self.layers.items()},
        )

    def repeat_interleave(self, repeats: int) -> ReferenceFeatures:
        """Repeat every sample ``repeats`` times along the batch (``b -> (b r)``).

        Use it to lay out features of one clip for a batch, e.g. for
        classifier-free guidance.
        """
        return ReferenceFeatures(
            {k: v.repeat_interleave(repeats, dim=0) for k, v in self.attention.items()},
            {k: v.repeat_interleave(repeats, dim=0) for k, v in self.layers.items()},
        )


class ReferenceNet(SpatialUNet):
    """A Stable Diffusion 1.x UNet without output head that returns :class:`ReferenceFeatures`.

    The config is that of :class:`~emo.models.UNet2D` (same fields, same meaning);
    the parameters are those of a UNet2D minus ``conv_norm_out`` and ``conv_out``,
    which are not created.

    Parameters
    ----------
    sample_size
        Nominal latent size (informative).
    in_channels
        Latent channels in.
    out_channels
        Kept for config compatibility with :class:`~emo.models.UNet2D` (unused).
    down_block_types
        ``"CrossAttnDownBlock2D"`` or ``"DownBlock2D"`` per resolution.
    up_block_types
        ``"CrossAttnUpBlock2D"`` or ``"UpBlock2D"`` per resolution.
    block_out_channels
        Channels per resolution.
    layers_per_block
        Layers per down block.
    attention_head_dim
        Number of attention heads (the SD 1.x naming), per block or for all.
    cross_attention_dim
        Width of the text tokens.
    use_linear_projection
        Linear or 1x1-convolution ``proj_in``/``proj_out``.
    norm_num_groups
        Groups of every GroupNorm.
    norm_eps
        Epsilon of the resnet GroupNorms.
    flip_sin_to_cos
        Cosines first in the timestep embedding.
    freq_shift
        Frequency shift of the timestep embedding.
    dropout
        Dropout of resnets and transformers.
    mid_block_type
        ``"UNetMidBlock2DCrossAttn"``.
    num_attention_heads
        If given, overrides ``attention_head_dim`` as the number of heads.
    transformer_layers_per_block
        Transformer blocks per spatial transformer.
    """

    has_output_head: ClassVar[bool] = False

    @classmethod
    def from_unet2d(
        cls, source: UNetSource, *, strict: bool = True, **config_overrides: Any
    ) -> ReferenceNet:
        """Build a ReferenceNet holding the weights of a 2D UNet.

        Parameters
        ----------
        source
            A :class:`~emo.models.UNet2D`, a ``(config, state_dict)`` pair (as
            returned by :func:`emo.models.convert_sd.load_sd15_unet_state_dict`), a
            bare state dict (the config then comes from ``config_overrides`` and the
            defaults), or the path of a diffusers-format SD folder / ``unet`` folder.
        strict
            Raise :class:`~emo.errors.CheckpointError` when a spatial weight is
            missing or a key has no place (the output head is always dropped).
        **config_overrides
            Config values to replace.
        """
        from emo.models.convert_sd import build_from_unet_source

        model, _ = build_from_unet_source(cls, source, strict=strict, **config_overrides)
        return model

    def forward(
        self,
        sample: torch.Tensor,
        timestep: TimestepLike = 0,
        encoder_hidden_states: torch.Tensor | None = None,
    ) -> ReferenceFeatures:
        """Compute the reference features of some latents.

        Parameters
        ----------
        sample
            Latents ``(b, c, h, w)`` (the reference image, or the ``(b n)`` motion frames).
        timestep
            A number or a ``(b,)`` tensor (EMO uses 0: clean latents).
        encoder_hidden_states
            Text tokens ``(b, t, d)``; ``None`` (EMO) skips ``attn2``.

        Returns
        -------
        ReferenceFeatures
            ``attention`` ``(b, h*w, c)`` per transformer block and ``layers``
            ``(b, c, h, w)`` per layer.
        """
        self._check_sample(sample, 4, "(b, c, h, w)")
        batch = sample.shape[0]
        temb = self._time_embedding(timestep, batch, sample.dtype, sample.device)
        if encoder_hidden_states is not None:
            self._check_text(encoder_hidden_states, batch)
            encoder_hidden_states = encoder_hidden_states.to(sample.dtype).expand(batch, -1, -1)
        features = ReferenceFeatures()
        ctx = BlockContext(
            encoder_hidden_states=encoder_hidden_states,
            collect_attention=features.attention,
            collect_layers=features.layers,
            checkpointing=self.gradient_checkpointing,
        )
        self._unet(sample, temb, ctx, head=False)
        return features
