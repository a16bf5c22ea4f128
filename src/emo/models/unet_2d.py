"""The 2D conditional UNet of the Stable Diffusion 1.x family (:class:`UNet2D`).

Its config mirrors the field names of a ``unet/config.json`` of that family
(``block_out_channels``, ``layers_per_block``, ``attention_head_dim``, ...), and
its parameter names equal that checkpoint layout, so pretrained weights load as
they are. :class:`UNetBase` holds the construction and the layer loop shared with
:class:`~emo.models.ReferenceNet` and :class:`~emo.models.Backbone`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from emo.errors import ConfigError, InputError
from emo.modeling import ModelMixin
from emo.models._checks import check_input_tensor, positive_ints
from emo.models.attention import SpatialTransformer
from emo.models.blocks import BlockContext, DownBlock, MidBlock, UpBlock, layer_key
from emo.models.embeddings import TimestepEmbedding, Timesteps
from emo.models.sd15 import SD15_UNET_CONFIG

__all__ = [
    "DOWN_BLOCK_TYPES",
    "MID_BLOCK_TYPES",
    "UP_BLOCK_TYPES",
    "TimestepLike",
    "UNet2D",
    "UNetBase",
]

#: Down block types understood (cross-attention or plain).
DOWN_BLOCK_TYPES = ("CrossAttnDownBlock2D", "DownBlock2D")
#: Up block types understood (cross-attention or plain).
UP_BLOCK_TYPES = ("CrossAttnUpBlock2D", "UpBlock2D")
#: Mid block types understood.
MID_BLOCK_TYPES = ("UNetMidBlock2DCrossAttn",)

#: A diffusion timestep: a number, a 0-d tensor or a ``(b,)`` tensor.
TimestepLike = torch.Tensor | float | int


def _per_block(name: str, value: int | Sequence[int], count: int) -> list[int]:
    if isinstance(value, int):
        return [value] * count
    values = [int(v) for v in value]
    if len(values) != count:
        raise ConfigError(
            f"{name} has {len(values)} entries but there are {count} down blocks; give one per "
            "block or a single int"
        )
    return values


class UNetBase(ModelMixin):
    """Construction and layer loop shared by :class:`UNet2D`, ReferenceNet and Backbone.

    Subclasses call :meth:`_build` from their ``__init__`` with their config.
    Parameter names (``conv_in``, ``time_embedding.linear_1``, ``down_blocks.{i}``,
    ``mid_block``, ``up_blocks.{i}``, ``conv_norm_out``, ``conv_out``) follow the
    Stable Diffusion layout.
    """

    #: Whether the spatial transformers build the text cross-attention ``norm2``/``attn2``.
    #: EMO's ReferenceNet and Backbone use no text and do not (their reference features
    #: enter through ``attn1``); loading an SD checkpoint into them lists those tensors
    #: as skipped (:attr:`emo.modeling.LoadReport.skipped_keys`).
    builds_text_attention: ClassVar[bool] = True
    gradient_checkpointing: bool = False
    conv_norm_out: nn.GroupNorm | None
    conv_out: nn.Conv2d | None

    def _build(
        self,
        *,
        in_channels: int,
        out_channels: int,
        down_block_types: Sequence[str],
        up_block_types: Sequence[str],
        mid_block_type: str | None,
        block_out_channels: Sequence[int],
        layers_per_block: int | Sequence[int],
        attention_head_dim: int | Sequence[int],
        num_attention_heads: int | Sequence[int] | None,
        transformer_layers_per_block: int | Sequence[int],
        cross_attention_dim: int,
        use_linear_projection: bool,
        norm_num_groups: int,
        norm_eps: float,
        flip_sin_to_cos: bool,
        freq_shift: float,
        dropout: float,
        with_head: bool,
        temporal_kwargs: Mapping[str, Any] | None = None,
        temporal_in_mid_block: bool = False,
        audio_cross_attention_dim: int | None = None,
        text_attention: bool | None = None,
        masked_audio: bool = False,
        skip_motion_modules: Sequence[str] = (),
    ) -> None:
        n = len(block_out_channels)
        if text_attention is None:
            text_attention = self.builds_text_attention
        name = type(self).__name__
        if n == 0 or len(down_block_types) != n or len(up_block_types) != n:
            raise ConfigError(
                f"{name}: down_block_types ({len(down_block_types)}), up_block_types "
                f"({len(up_block_types)}) and block_out_channels ({n}) must have the same "
                "non-zero length"
            )
        for kind, allowed in (
            (down_block_types, DOWN_BLOCK_TYPES),
            (up_block_types, UP_BLOCK_TYPES),
        ):
            bad = [t for t in kind if t not in allowed]
            if bad:
                raise ConfigError(f"{name}: unsupported block types {bad}; supported: {allowed}")
        if mid_block_type not in MID_BLOCK_TYPES:
            raise ConfigError(
                f"{name}: unsupported mid_block_type {mid_block_type!r}; supported: {MID_BLOCK_TYPES}"
            )
        positive_ints(
            name,
            in_channels=in_channels,
            out_channels=out_channels,
            block_out_channels=list(block_out_channels),
            norm_num_groups=norm_num_groups,
            cross_attention_dim=cross_attention_dim,
            audio_cross_attention_dim=audio_cross_attention_dim,
        )
        bad_channels = [c for c in block_out_channels if c <= 0 or c % norm_num_groups]
        if bad_channels:
            raise ConfigError(
                f"{name}: block_out_channels {list(block_out_channels)} must be positive multiples "
                f"of norm_num_groups={norm_num_groups}"
            )
        # The SD 1.x configs call the number of heads "attention_head_dim".
        heads = _per_block(
            "attention_head_dim",
            num_attention_heads if num_attention_heads is not None else attention_head_dim,
            n,
        )
        layers = _per_block("layers_per_block", layers_per_block, n)
        positive_ints(name, layers_per_block=layers)
        depth = _per_block("transformer_layers_per_block", transformer_layers_per_block, n)
        for channels, h in zip(block_out_channels, heads, strict=True):
            if h <= 0 or channels % h:
                raise ConfigError(
                    f"{name}: {channels} channels are not divisible into {h} attention heads"
                )

        c0 = block_out_channels[0]
        time_embed_dim = c0 * 4
        self.conv_in = nn.Conv2d(in_channels, c0, kernel_size=3, padding=1)
        self.time_proj = Timesteps(c0, flip_sin_to_cos, freq_shift)
        self.time_embedding = TimestepEmbedding(c0, time_embed_dim)
        resnet_kwargs = {"groups": norm_num_groups, "eps": norm_eps, "dropout": dropout}

        def attention_kwargs(i: int, channels: int) -> dict[str, Any]:
            return {
                "num_attention_heads": heads[i],
                "attention_head_dim": channels // heads[i],
                "num_layers": depth[i],
                "cross_attention_dim": cross_attention_dim if text_attention else None,
                "norm_num_groups": norm_num_groups,
                "use_linear_projection": use_linear_projection,
                "dropout": dropout,
                "audio_cross_attention_dim": None if masked_audio else audio_cross_attention_dim,
            }

        def audio_module_kwargs(block_heads: int, level: int) -> dict[str, Any] | None:
            # Hallo's layout: a masked audio module after each spatial transformer.
            if not masked_audio or audio_cross_attention_dim is None:
                return None
            return {
                "heads": block_heads,
                "audio_dim": audio_cross_attention_dim,
                "level": level,
                "norm_num_groups": norm_num_groups,
            }

        down: list[nn.Module] = []
        out_ch = c0
        for i, block_type in enumerate(down_block_types):
            in_ch, out_ch = out_ch, block_out_channels[i]
            down.append(
                DownBlock(
                    f"down_blocks.{i}",
                    in_ch,
                    out_ch,
                    time_embed_dim,
                    layers[i],
                    add_downsample=i < n - 1,
                    cross_attention=block_type == "CrossAttnDownBlock2D",
                    resnet_kwargs=resnet_kwargs,
                    attention_kwargs=attention_kwargs(i, out_ch),
                    temporal_kwargs=temporal_kwargs,
                    audio_module_kwargs=audio_module_kwargs(heads[i], i),
                )
            )
        self.down_blocks = nn.ModuleList(down)
        self.mid_block = MidBlock(
            "mid_block",
            block_out_channels[-1],
            time_embed_dim,
            resnet_kwargs,
            attention_kwargs(n - 1, block_out_channels[-1]),
            temporal_kwargs if temporal_in_mid_block else None,
            audio_module_kwargs(heads[n - 1], n - 1),
        )
        rev_channels = list(reversed(block_out_channels))
        rev_heads, rev_layers, rev_depth = heads[::-1], layers[::-1], depth[::-1]
        up: list[nn.Module] = []
        out_ch = rev_channels[0]
        for i, block_type in enumerate(up_block_types):
            prev_ch, out_ch = out_ch, rev_channels[i]
            in_ch = rev_channels[min(i + 1, n - 1)]
            kwargs = attention_kwargs(0, out_ch)
            kwargs["num_attention_heads"] = rev_heads[i]
            kwargs["attention_head_dim"] = out_ch // rev_heads[i]
            kwargs["num_layers"] = rev_depth[i]
            up.append(
                UpBlock(
                    f"up_blocks.{i}",
                    in_ch,
                    prev_ch,
                    out_ch,
                    time_embed_dim,
                    rev_layers[i] + 1,
                    add_upsample=i < n - 1,
                    cross_attention=block_type == "CrossAttnUpBlock2D",
                    resnet_kwargs=resnet_kwargs,
                    attention_kwargs=kwargs,
                    temporal_kwargs=temporal_kwargs,
                    audio_module_kwargs=audio_module_kwargs(rev_heads[i], n - 1 - i),
                )
            )
        self.up_blocks = nn.ModuleList(up)
        prefixes = {block.prefix for block in self._blocks()}
        unknown = sorted(set(skip_motion_modules) - prefixes)
        if unknown:
            raise ConfigError(
                f"{name}: skip_motion_modules names blocks {unknown} that do not exist; "
                f"blocks are {sorted(prefixes)}"
            )
        for block in self._blocks():
            block.run_motion_modules = block.prefix not in set(skip_motion_modules)
        self.conv_norm_out = None
        self.conv_out = None
        if with_head:
            self.conv_norm_out = nn.GroupNorm(norm_num_groups, c0, eps=norm_eps)
            self.conv_out = nn.Conv2d(c0, out_channels, kernel_size=3, padding=1)

    # ----------------------------------------------------------------------------------------
    def reset_new_branches(self) -> None:
        """Re-create every branch a 2D UNet checkpoint cannot provide, freshly initialised.

        Temporal modules and audio attentions (and, in a Backbone, the speed
        encoder) are rebuilt on the current default device with their initial
        (zero-output) weights. Used to materialise a model built on the meta device
        whose spatial weights come from a checkpoint.
        """
        from emo.models.attention import BasicTransformerBlock

        for block in self._blocks():
            block.reset_motion_modules()
        for module in self.modules():
            if isinstance(module, BasicTransformerBlock):
                module.reset_audio_attention()
        for block in self._blocks():
            block.reset_audio_modules()

    def enable_gradient_checkpointing(self) -> None:
        """Recompute every layer in the backward pass instead of storing its activations."""
        self.gradient_checkpointing = True

    def disable_gradient_checkpointing(self) -> None:
        """Store activations again (the default)."""
        self.gradient_checkpointing = False

    @property
    def attention_keys(self) -> list[str]:
        """Paths of every spatial transformer block (keys of reference attention features)."""
        keys: list[str] = []
        for block in self._blocks():
            for attn in block.attentions or ():
                assert isinstance(attn, SpatialTransformer)
                keys.extend(attn.block_keys)
        return keys

    @property
    def layer_keys(self) -> list[str]:
        """Keys of every recorded layer output (the temporal-module paths of a Backbone)."""
        keys: list[str] = []
        for block in self._blocks():
            count = 1 if isinstance(block, MidBlock) else len(block.resnets)
            keys.extend(layer_key(block.prefix, j) for j in range(count))
        return keys

    def _blocks(self) -> list[DownBlock | MidBlock | UpBlock]:
        blocks: list[DownBlock | MidBlock | UpBlock] = []
        for block in [*self.down_blocks, self.mid_block, *self.up_blocks]:
            assert isinstance(block, (DownBlock, MidBlock, UpBlock))
            blocks.append(block)
        return blocks

    def _check_sample(self, sample: torch.Tensor, ndim: int, layout: str) -> None:
        name = type(self).__name__
        expected = int(self.config["in_channels"])
        if not isinstance(sample, torch.Tensor) or sample.ndim != ndim:
            shape = tuple(sample.shape) if isinstance(sample, torch.Tensor) else type(sample)
            raise InputError(f"{name}: sample must be a tensor {layout}, got {shape}")
        if sample.shape[1] != expected:
            raise InputError(
                f"{name}: sample has {sample.shape[1]} channels but the model takes "
                f"in_channels={expected}; pass latents {layout} with c={expected}"
            )
        if not sample.is_floating_point():
            raise InputError(f"{name}: sample must be floating point, got {sample.dtype}")
        if 0 in sample.shape[-2:]:
            raise InputError(f"{name}: sample has an empty size {tuple(sample.shape)} {layout}")
        weight = self.conv_in.weight
        check_input_tensor(name, "sample", sample, like=weight, layout=layout)
        if sample.dtype != weight.dtype and not torch.is_autocast_enabled(sample.device.type):
            raise InputError(
                f"{name}: sample is {sample.dtype} but the weights are {weight.dtype}; pass "
                f"sample.to({weight.dtype}) or load the model with dtype={sample.dtype}"
            )

    def _time_embedding(
        self, timestep: TimestepLike, batch: int, dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        try:
            t = torch.as_tensor(timestep, device=device)
        except (TypeError, ValueError, RuntimeError, NotImplementedError) as exc:
            raise InputError(
                f"{type(self).__name__}: timestep must be a number or a (b,) tensor, got "
                f"{timestep!r}"
            ) from exc
        if t.ndim == 0:
            t = t[None]
        if t.ndim != 1 or t.shape[0] not in (1, batch):
            raise InputError(
                f"{type(self).__name__}: timestep must be a number or a (b,) tensor with "
                f"b={batch} (or 1), got shape {tuple(t.shape)}"
            )
        t = t.expand(batch)
        emb = self.time_proj(t).to(dtype=dtype)
        out: torch.Tensor = self.time_embedding(emb)
        return out

    def _check_text(self, encoder_hidden_states: torch.Tensor, batch: int) -> None:
        dim = int(self.config["cross_attention_dim"])
        check_input_tensor(
            type(self).__name__,
            "encoder_hidden_states",
            encoder_hidden_states,
            like=self.conv_in.weight,
            layout=f"(b, t, d={dim})",
        )
        if (
            encoder_hidden_states.ndim != 3
            or encoder_hidden_states.shape[0] not in (1, batch)
            or encoder_hidden_states.shape[2] != dim
        ):
            raise InputError(
                f"{type(self).__name__}: encoder_hidden_states must be (b={batch}, t, d={dim}), "
                f"got {tuple(encoder_hidden_states.shape)}"
            )

    def _unet(
        self,
        x: torch.Tensor,
        temb: torch.Tensor,
        ctx: BlockContext,
        head: bool,
        conv_in_residual: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run conv_in, the blocks and (if ``head``) the output head on ``((b f), c, h, w)``.

        ``conv_in_residual`` ``((b f), c0, h, w)`` is added to the output of ``conv_in``
        (where Hallo adds its face-locator features).
        """
        x = self.conv_in(x)
        if conv_in_residual is not None:
            x = x + conv_in_residual
        skips: list[torch.Tensor] = [x]
        for down in self.down_blocks:
            x, block_skips = down(x, temb, ctx)
            skips.extend(block_skips)
        x = self.mid_block(x, temb, ctx)
        for up in self.up_blocks:
            assert isinstance(up, UpBlock)
            count = len(up.resnets)
            block_skips, skips = skips[-count:], skips[:-count]
            size = None
            if up.upsamplers is not None:
                size = (int(skips[-1].shape[-2]), int(skips[-1].shape[-1]))
            x = up(x, block_skips, temb, ctx, size)
        if head and self.conv_norm_out is not None and self.conv_out is not None:
            x = self.conv_out(F.silu(self.conv_norm_out(x)))
        return x


#: The numpy-style descriptions of the SD 1.x UNet config arguments, written once for the
#: docstrings of UNet2D, ReferenceNet and Backbone (``{unet_config_parameters}`` in each).
UNET_CONFIG_PARAMETERS = """\
    sample_size
        Nominal latent size (informative; any size divisible by ``2**(blocks-1)`` works,
        others work too).
    in_channels
        Latent channels in.
    out_channels
        Channels out (kept in a ReferenceNet's config, which has no output head).
    down_block_types
        ``"CrossAttnDownBlock2D"`` or ``"DownBlock2D"`` per resolution.
    up_block_types
        ``"CrossAttnUpBlock2D"`` or ``"UpBlock2D"`` per resolution (coarsest first).
    block_out_channels
        Channels per resolution.
    layers_per_block
        Resnet (+ transformer) layers per down block (up blocks get one more).
    attention_head_dim
        Number of spatial attention heads, per block or for all (the SD 1.x naming).
    cross_attention_dim
        Width of the text tokens. ReferenceNet and Backbone keep it so an SD config loads
        as it is, but build no text cross-attention (``attn2``): EMO uses no text.
    use_linear_projection
        Linear ``proj_in``/``proj_out`` (``True``) or 1x1 convolutions (``False``, SD 1.x).
    norm_num_groups
        Groups of every spatial GroupNorm.
    norm_eps
        Epsilon of the resnet and output GroupNorms.
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
        Transformer blocks per spatial transformer (1 in SD 1.x).
    text_attention
        Build the cross-attentions ``norm2``/``attn2`` over context tokens
        (``encoder_hidden_states``, width ``cross_attention_dim``). ``None``: the class
        default (a UNet2D builds them; EMO's ReferenceNet and Backbone do not). Hallo's
        networks build them and feed its four face-embedding tokens.
"""

_C = TypeVar("_C", bound=type)


def document_unet_config(cls: _C) -> _C:
    """Put :data:`UNET_CONFIG_PARAMETERS` where ``cls``'s docstring says ``{unet_config_parameters}``."""
    if cls.__doc__:
        cls.__doc__ = cls.__doc__.replace("    {unet_config_parameters}\n", UNET_CONFIG_PARAMETERS)
    return cls


class SpatialUNet(UNetBase):
    """The 2D UNet constructor shared by :class:`UNet2D` and the ReferenceNet.

    Both take the same configuration (the Stable Diffusion UNet config); they differ in
    whether the output head (``conv_norm_out``, ``conv_out``) exists, set by the class
    attribute :attr:`has_output_head`, and in what ``forward`` returns.
    """

    #: Whether ``conv_norm_out`` and ``conv_out`` are built.
    has_output_head: ClassVar[bool] = True

    def __init__(
        self,
        sample_size: int = SD15_UNET_CONFIG["sample_size"],
        in_channels: int = SD15_UNET_CONFIG["in_channels"],
        out_channels: int = SD15_UNET_CONFIG["out_channels"],
        down_block_types: Sequence[str] = SD15_UNET_CONFIG["down_block_types"],
        up_block_types: Sequence[str] = SD15_UNET_CONFIG["up_block_types"],
        block_out_channels: Sequence[int] = SD15_UNET_CONFIG["block_out_channels"],
        layers_per_block: int | Sequence[int] = SD15_UNET_CONFIG["layers_per_block"],
        attention_head_dim: int | Sequence[int] = SD15_UNET_CONFIG["attention_head_dim"],
        cross_attention_dim: int = SD15_UNET_CONFIG["cross_attention_dim"],
        use_linear_projection: bool = SD15_UNET_CONFIG["use_linear_projection"],
        norm_num_groups: int = SD15_UNET_CONFIG["norm_num_groups"],
        norm_eps: float = SD15_UNET_CONFIG["norm_eps"],
        flip_sin_to_cos: bool = True,
        freq_shift: float = 0,
        dropout: float = 0.0,
        mid_block_type: str | None = "UNetMidBlock2DCrossAttn",
        num_attention_heads: int | Sequence[int] | None = None,
        transformer_layers_per_block: int | Sequence[int] = 1,
        text_attention: bool | None = None,
    ) -> None:
        super().__init__()
        self._build(
            text_attention=text_attention,
            in_channels=in_channels,
            out_channels=out_channels,
            down_block_types=down_block_types,
            up_block_types=up_block_types,
            mid_block_type=mid_block_type,
            block_out_channels=block_out_channels,
            layers_per_block=layers_per_block,
            attention_head_dim=attention_head_dim,
            num_attention_heads=num_attention_heads,
            transformer_layers_per_block=transformer_layers_per_block,
            cross_attention_dim=cross_attention_dim,
            use_linear_projection=use_linear_projection,
            norm_num_groups=norm_num_groups,
            norm_eps=norm_eps,
            flip_sin_to_cos=flip_sin_to_cos,
            freq_shift=freq_shift,
            dropout=dropout,
            with_head=self.has_output_head,
        )


@document_unet_config
class UNet2D(SpatialUNet):
    """The Stable Diffusion 1.x conditional UNet: noisy latents + timestep + text -> noise.

    The config fields mirror those of a ``unet/config.json`` of that family
    (see :func:`emo.loaders.diffusers_unet.unet_config_from_diffusers` to import one),
    and the parameter names equal its checkpoint layout.

    Parameters
    ----------
    {unet_config_parameters}
    """

    def forward(
        self,
        sample: torch.Tensor,
        timestep: TimestepLike,
        encoder_hidden_states: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the noise (or whatever the weights were trained for).

        Parameters
        ----------
        sample
            Noisy latents ``(b, c, h, w)``.
        timestep
            A number or a ``(b,)`` tensor.
        encoder_hidden_states
            Text tokens ``(b, t, d)``; ``None`` skips the cross-attentions ``attn2``.

        Returns
        -------
        torch.Tensor
            ``(b, out_channels, h, w)``.
        """
        self._check_sample(sample, 4, "(b, c, h, w)")
        batch = sample.shape[0]
        temb = self._time_embedding(timestep, batch, sample.dtype, sample.device)
        if encoder_hidden_states is not None:
            self._check_text(encoder_hidden_states, batch)
            encoder_hidden_states = encoder_hidden_states.to(sample.dtype).expand(batch, -1, -1)
        ctx = BlockContext(
            encoder_hidden_states=encoder_hidden_states,
            checkpointing=self.gradient_checkpointing,
        )
        return self._unet(sample, temb, ctx, head=True)
