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
from einops import rearrange

from emo.errors import InputError
from emo.models.blocks import BlockContext
from emo.models.unet_2d import SpatialUNet, TimestepLike, UNet2D, document_unet_config

__all__ = ["MotionFeatures", "ReferenceFeatures", "ReferenceNet", "UNetSource"]

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
        """Repeat every image's features ``repeats`` times along the batch (``b -> (b r)``).

        Each of the ``b`` images is one sample here; this copies. To share one
        reference image across a batch, pass the batch-1 features as they are: the
        :class:`~emo.models.Backbone` broadcasts them without copying. Motion frames
        are not laid out with this class: see :class:`MotionFeatures`.
        """
        return ReferenceFeatures(
            {k: v.repeat_interleave(repeats, dim=0) for k, v in self.attention.items()},
            {k: v.repeat_interleave(repeats, dim=0) for k, v in self.layers.items()},
        )


@dataclass
class MotionFeatures:
    """Features of the ``n`` motion frames of each sample, with an explicit frame axis.

    The temporal modules of a :class:`~emo.models.Backbone` prepend them, layer by
    layer, to the current clip's frames (see :class:`~emo.models.temporal.TemporalModule`).

    Attributes
    ----------
    layers
        For every layer the Backbone has a temporal module after, the motion frames'
        features ``(b, c, n, h, w)`` keyed by that module's path
        (``"down_blocks.0.motion_modules.1"``). A batch of 1 is shared by every sample
        of a Backbone batch (broadcast, not copied).

    Examples
    --------
    >>> motion = reference_net.motion_features(latents)  # doctest: +SKIP
    >>> motion.layers["mid_block.motion_modules.0"].shape  # doctest: +SKIP
    torch.Size([1, 64, 4, 2, 2])
    """

    layers: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        """Batch size ``b`` (0 when empty)."""
        for tensor in self.layers.values():
            return int(tensor.shape[0])
        return 0

    @property
    def num_frames(self) -> int:
        """Motion frames ``n`` per sample (0 when empty)."""
        for tensor in self.layers.values():
            return int(tensor.shape[2])
        return 0

    @classmethod
    def from_reference_features(
        cls, features: ReferenceFeatures, *, num_frames: int
    ) -> MotionFeatures:
        """Regroup a ReferenceNet output on ``(b n)`` frames into ``(b, c, n, h, w)`` per layer.

        Parameters
        ----------
        features
            What :class:`ReferenceNet` returned for the motion frames of ``b`` samples,
            laid out sample-major: frames ``0..n-1`` of sample 0, then of sample 1...
        num_frames
            Motion frames ``n`` per sample.

        Raises
        ------
        InputError
            If the batch of ``features`` is not a multiple of ``num_frames``.
        """
        if num_frames <= 0 or features.batch_size % num_frames:
            raise InputError(
                f"MotionFeatures: {features.batch_size} feature maps cannot be split into "
                f"samples of num_frames={num_frames} motion frames; pass (b n) frames, "
                "sample-major"
            )
        return cls(
            {
                k: rearrange(v, "(b n) c h w -> b c n h w", n=num_frames)
                for k, v in features.layers.items()
            }
        )

    @classmethod
    def from_attention_tokens(
        cls, features: ReferenceFeatures, *, num_frames: int
    ) -> MotionFeatures:
        """Motion features from the normalised self-attention tokens (Hallo's motion context).

        Hallo gives each temporal module the tokens that entered the reference
        network's first self-attention of the same layer (``norm1`` output), laid out
        as feature maps, rather than the layer's output. Layers without a spatial
        transformer get no entry (Hallo's inference path runs no temporal module there).

        Parameters
        ----------
        features
            What :class:`ReferenceNet` returned for the motion frames of ``b`` samples,
            sample-major ``(b n)``; its ``layers`` give each layer's ``(h, w)``.
        num_frames
            Motion frames ``n`` per sample.

        Returns
        -------
        MotionFeatures
            ``(b, c, n, h, w)`` per temporal-module path, ``c`` the attention width.
        """
        if num_frames <= 0 or features.batch_size % num_frames:
            raise InputError(
                f"MotionFeatures: {features.batch_size} feature maps cannot be split into "
                f"samples of num_frames={num_frames} motion frames; pass (b n) frames, "
                "sample-major"
            )
        layers: dict[str, torch.Tensor] = {}
        for key, tokens in features.attention.items():
            prefix, _, rest = key.partition(".attentions.")
            index, _, block = rest.partition(".")
            if block != "transformer_blocks.0":
                continue
            layer = f"{prefix}.motion_modules.{index}"
            grid = features.layers.get(layer)
            if grid is None:
                raise InputError(
                    f"MotionFeatures: the features lack the layer output {layer!r} that gives "
                    f"the grid size of {key!r}; compute them with ReferenceNet.forward"
                )
            height, width = int(grid.shape[-2]), int(grid.shape[-1])
            layers[layer] = rearrange(
                tokens, "(b n) (h w) c -> b c n h w", n=num_frames, h=height, w=width
            )
        return cls(layers)

    @classmethod
    def zeros(cls, like: Mapping[str, torch.Tensor], *, num_frames: int) -> MotionFeatures:
        """Zero feature maps for ``num_frames`` motion frames of one sample (the paper's first clip).

        Parameters
        ----------
        like
            Per layer, any features ``(b, c, h, w)`` of that layer (e.g.
            ``ReferenceFeatures.layers`` of the reference image): only the shape,
            dtype and device are read.
        num_frames
            Motion frames ``n``.

        Returns
        -------
        MotionFeatures
            Batch 1, ``(1, c, n, h, w)`` per layer; each is an expanded view of one
            zero map per layer (no memory for the ``n`` copies).
        """
        return cls(
            {
                k: v.new_zeros((1, v.shape[1], 1, *v.shape[2:])).expand(-1, -1, num_frames, -1, -1)
                for k, v in like.items()
            }
        )

    def to(
        self, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> MotionFeatures:
        """Return a copy with every tensor moved/cast."""
        return MotionFeatures({k: v.to(device=device, dtype=dtype) for k, v in self.layers.items()})

    def detach(self) -> MotionFeatures:
        """Return a copy with every tensor detached from the autograd graph."""
        return MotionFeatures({k: v.detach() for k, v in self.layers.items()})

    def repeat_interleave(self, repeats: int) -> MotionFeatures:
        """Repeat every sample's motion frames ``repeats`` times along the batch (copies).

        Sample ``i`` becomes samples ``i r .. i r + r - 1``, each with all its ``n``
        frames in order. A batch of 1 needs no repeating: the Backbone broadcasts it.
        """
        return MotionFeatures(
            {k: v.repeat_interleave(repeats, dim=0) for k, v in self.layers.items()}
        )


@document_unet_config
class ReferenceNet(SpatialUNet):
    """A Stable Diffusion 1.x UNet without output head that returns :class:`ReferenceFeatures`.

    The config is that of :class:`~emo.models.UNet2D` (same fields, same meaning);
    the parameters are those of a UNet2D minus the output head (``conv_norm_out``,
    ``conv_out``) and, unless ``text_attention=True`` (Hallo's reference network, which
    feeds face-embedding tokens to them), minus the text cross-attentions (``norm2``,
    ``attn2``): EMO uses no text prompt.

    Parameters
    ----------
    {unet_config_parameters}
    """

    has_output_head: ClassVar[bool] = False
    builds_text_attention: ClassVar[bool] = False

    @classmethod
    def from_unet2d(
        cls, source: UNetSource, *, strict: bool = True, **config_overrides: Any
    ) -> ReferenceNet:
        """Build a ReferenceNet holding the weights of a 2D UNet.

        Parameters
        ----------
        source
            A :class:`~emo.models.UNet2D`, a ``(config, state_dict)`` pair (as
            returned by :func:`emo.loaders.diffusers_unet.load_sd15_unet_state_dict`), a
            bare state dict (the config then comes from ``config_overrides`` and the
            defaults), or the path of a diffusers-format SD folder / ``unet`` folder.
        strict
            Raise :class:`~emo.errors.CheckpointError` when a spatial weight is
            missing or a key has no place (the output head is always dropped).
        **config_overrides
            Config values to replace.
        """
        from emo.loaders.diffusers_unet import build_from_unet_source

        model, _ = build_from_unet_source(cls, source, strict=strict, **config_overrides)
        return model

    def motion_features(self, latents: torch.Tensor, timestep: TimestepLike = 0) -> MotionFeatures:
        """Compute the features of motion frames, with their frame axis.

        Parameters
        ----------
        latents
            Latents of the ``n`` motion frames of ``b`` samples, ``(b, c, n, h, w)``.
        timestep
            A number or a ``(b n,)`` tensor (EMO uses 0: clean latents).

        Returns
        -------
        MotionFeatures
            ``(b, c_l, n, h_l, w_l)`` per layer.
        """
        self._check_sample(latents, 5, "(b, c, n, h, w)")
        frames = int(latents.shape[2])
        flat = rearrange(latents, "b c n h w -> (b n) c h w")
        features = self._features(flat, timestep, attention=False)
        return MotionFeatures.from_reference_features(features, num_frames=frames)

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
            Context tokens ``(b or 1, t, d)`` of the cross-attentions ``attn2`` (only
            when built with ``text_attention=True``, e.g. Hallo's face tokens); ``None``
            skips them.

        Returns
        -------
        ReferenceFeatures
            ``attention`` ``(b, h*w, c)`` per transformer block and ``layers``
            ``(b, c, h, w)`` per layer.
        """
        self._check_sample(sample, 4, "(b, c, h, w)")
        return self._features(sample, timestep, attention=True, context=encoder_hidden_states)

    def _features(
        self,
        sample: torch.Tensor,
        timestep: TimestepLike,
        *,
        attention: bool,
        context: torch.Tensor | None = None,
    ) -> ReferenceFeatures:
        batch = sample.shape[0]
        temb = self._time_embedding(timestep, batch, sample.dtype, sample.device)
        if context is not None:
            self._check_text(context, batch)
            context = context.to(sample.dtype).expand(batch, -1, -1)
        features = ReferenceFeatures()
        ctx = BlockContext(
            encoder_hidden_states=context,
            collect_attention=features.attention if attention else None,
            collect_layers=features.layers,
            checkpointing=self.gradient_checkpointing,
        )
        self._unet(sample, temb, ctx, head=False)
        return features
