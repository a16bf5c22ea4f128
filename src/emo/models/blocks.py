"""Down, mid and up blocks of the UNet family, usable on images or (flattened) video.

One set of blocks serves :class:`~emo.models.UNet2D`, :class:`~emo.models.ReferenceNet`
and :class:`~emo.models.Backbone`. Spatial layers always see a batch of images
``(b, c, h, w)``; on video that batch is ``(b f)``. A block built with
``temporal_kwargs`` also owns one ``motion_modules.{j}`` temporal module after
each of its layers (the AnimateDiff placement), which is given the features
rearranged to ``(b, c, f, h, w)``.

What a forward pass needs besides the feature map travels in a
:class:`BlockContext`: text tokens, reference tokens, audio tokens, motion
features, the speed embedding, and the dictionaries the ReferenceNet fills.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint

from emo.models.attention import KeyValues, SpatialTransformer
from emo.models.masked_audio import AudioMasks, MaskedAudioModule, masked_audio_inner_width
from emo.models.resnet import Downsample2D, ResnetBlock2D, Upsample2D

__all__ = [
    "BlockContext",
    "DownBlock",
    "MidBlock",
    "UpBlock",
    "layer_key",
]


def layer_key(prefix: str, index: int) -> str:
    """Key of the output of layer ``index`` of the block at ``prefix``.

    It is the path of the temporal module that follows the layer in a
    :class:`~emo.models.Backbone`, e.g. ``"down_blocks.0.motion_modules.1"``.
    """
    return f"{prefix}.motion_modules.{index}"


@dataclass
class BlockContext:
    """Everything a block's forward pass needs besides the feature map and time embedding.

    Attributes
    ----------
    encoder_hidden_states
        Text tokens ``((b f), t, d)`` for ``attn2``; ``None`` skips ``attn2``.
    num_frames
        Frames ``f`` per video; the image batch is ``(b f)``.
    reference
        Reference tokens ``(b_r, m, c)`` per transformer-block path, or their keys and
        values projected once (:meth:`~emo.models.attention.Attention.project_reference`);
        ``b_r`` is 1 or ``b`` (shared by the frames of a video) or ``(b f)``.
    audio_tokens
        Audio tokens ``((b f), k, d_audio)``, or ``None``.
    audio_rows
        The videos whose audio tokens are not all zero (the others skip the audio
        attention, whose output is then exactly its output bias); ``None``: all.
    motion
        Motion features per layer key, ``(b, c, n, h, w)`` (or batch 1), or ``None``.
    speed_embedding
        Speed embedding ``(b, f, d)``, or ``None``.
    collect_attention
        When a dict, filled with the tokens ``((b f), h*w, c)`` entering every ``attn1``.
    collect_layers
        When a dict, filled with every layer's output ``((b f), c, h, w)``.
    checkpointing
        Recompute each layer in the backward pass (gradient checkpointing).
    reference_rows
        The videos whose self-attention reads the reference tokens; the others run
        plain self-attention (Hallo's unconditional branch). ``None``: all.
    audio_masks
        The region-mask pyramid of the masked audio modules (Hallo's audio layout), or
        ``None`` (they are skipped).
    """

    encoder_hidden_states: torch.Tensor | None = None
    num_frames: int = 1
    reference: Mapping[str, torch.Tensor | KeyValues] | None = None
    audio_tokens: torch.Tensor | None = None
    audio_rows: Sequence[int] | None = None
    motion: Mapping[str, torch.Tensor] | None = None
    speed_embedding: torch.Tensor | None = None
    collect_attention: dict[str, torch.Tensor] | None = None
    collect_layers: dict[str, torch.Tensor] | None = None
    checkpointing: bool = False
    reference_rows: Sequence[int] | None = None
    audio_masks: AudioMasks | None = None


def _audio_widths(
    kwargs: Mapping[str, Any] | None, sizing_channels: Sequence[int]
) -> dict[str, Any] | None:
    """Masked-audio settings with each layer's inner width (Hallo's rule, from ``sizing_channels``)."""
    if kwargs is None:
        return None
    heads = int(kwargs["heads"])
    return {**kwargs, "inner_dims": [masked_audio_inner_width(c, heads) for c in sizing_channels]}


def _run(ctx: BlockContext, fn: Callable[..., Any], *args: Any) -> Any:
    if ctx.checkpointing and torch.is_grad_enabled():
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


class _LayeredBlock(nn.Module):
    """Shared layer loop: resnet, optional spatial transformer, record, optional temporal module."""

    resnets: nn.ModuleList
    attentions: nn.ModuleList | None
    motion_modules: nn.ModuleList | None
    audio_modules: nn.ModuleList | None

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix
        #: Whether the temporal modules run (Hallo's inference path skips those of the
        #: blocks without spatial attention; their weights are still loaded).
        self.run_motion_modules = True

    def _build_attention_and_motion(
        self,
        channels: int,
        num_layers: int,
        cross_attention: bool,
        attention_kwargs: Mapping[str, Any],
        temporal_kwargs: Mapping[str, Any] | None,
        audio_module_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.attentions = None
        if cross_attention:
            transformers = [
                SpatialTransformer(in_channels=channels, **attention_kwargs)
                for _ in range(num_layers)
            ]
            for i, attn in enumerate(transformers):
                attn.assign_keys(f"{self.prefix}.attentions.{i}")
            self.attentions = nn.ModuleList(transformers)
        self._temporal_spec = (
            channels,
            1 if isinstance(self, MidBlock) else num_layers,
            None if temporal_kwargs is None else dict(temporal_kwargs),
        )
        self.motion_modules = None
        self.reset_motion_modules()
        self._audio_spec = (
            channels,
            None
            if audio_module_kwargs is None or not cross_attention
            else dict(audio_module_kwargs),
        )
        self.audio_modules = None
        self.reset_audio_modules()

    def reset_audio_modules(self) -> None:
        """(Re)create the masked audio modules freshly initialised (zero output projection)."""
        channels, kwargs = self._audio_spec
        if kwargs is None:
            return
        inner_dims: Sequence[int] = kwargs["inner_dims"]
        modules = []
        for inner in inner_dims:
            module = MaskedAudioModule(
                channels,
                inner,
                heads=int(kwargs["heads"]),
                audio_dim=int(kwargs["audio_dim"]),
                level=int(kwargs["level"]),
                norm_num_groups=int(kwargs["norm_num_groups"]),
            )
            nn.init.zeros_(module.proj_out.weight)
            nn.init.zeros_(module.proj_out.bias)  # type: ignore[arg-type]
            modules.append(module)
        self.audio_modules = nn.ModuleList(modules)

    def reset_motion_modules(self) -> None:
        """(Re)create the temporal modules freshly initialised, on the current default device."""
        channels, count, temporal_kwargs = self._temporal_spec
        if temporal_kwargs is None:
            return
        from emo.models.temporal import TemporalModule

        self.motion_modules = nn.ModuleList(
            [TemporalModule(channels, **temporal_kwargs) for _ in range(count)]
        )

    def _attend(self, index: int, x: torch.Tensor, ctx: BlockContext) -> torch.Tensor:
        if self.attentions is None:
            return x
        attn = self.attentions[index]
        assert isinstance(attn, SpatialTransformer)
        reference: list[torch.Tensor | KeyValues] | None = None
        if ctx.reference is not None:
            reference = [ctx.reference[key] for key in attn.block_keys]
        x, entered = _run(
            ctx,
            attn,
            x,
            ctx.encoder_hidden_states,
            reference,
            ctx.audio_tokens,
            ctx.num_frames,
            ctx.audio_rows,
            ctx.reference_rows,
        )
        if ctx.collect_attention is not None:
            for key, tokens in zip(attn.block_keys, entered, strict=True):
                ctx.collect_attention[key] = tokens
        if (
            self.audio_modules is not None
            and ctx.audio_tokens is not None
            and ctx.audio_masks is not None
        ):
            x = _run(ctx, self.audio_modules[index], x, ctx.audio_tokens, ctx.audio_masks)
        return x

    def _after_layer(self, index: int, x: torch.Tensor, ctx: BlockContext) -> torch.Tensor:
        key = layer_key(self.prefix, index)
        if ctx.collect_layers is not None:
            ctx.collect_layers[key] = x
        if self.motion_modules is None or not self.run_motion_modules:
            return x
        video = rearrange(x, "(b f) c h w -> b c f h w", f=ctx.num_frames)
        motion = None if ctx.motion is None else ctx.motion.get(key)
        video = _run(ctx, self.motion_modules[index], video, motion, ctx.speed_embedding)
        out: torch.Tensor = rearrange(video, "b c f h w -> (b f) c h w")
        return out


class DownBlock(_LayeredBlock):
    """Encoder block: ``num_layers`` x (resnet [+ spatial transformer] [+ temporal]), then downsample.

    Parameter names: ``resnets.{j}``, ``attentions.{j}`` (when ``cross_attention``),
    ``motion_modules.{j}`` (when ``temporal_kwargs``), ``downsamplers.0``.

    Parameters
    ----------
    prefix
        Path of the block in its network (``"down_blocks.{i}"``), used for feature keys.
    in_channels
        Input channels.
    out_channels
        Output channels.
    temb_channels
        Width of the time embedding.
    num_layers
        Number of layers.
    add_downsample
        Whether a stride-2 ``downsamplers.0`` follows the layers.
    cross_attention
        Whether each layer has a spatial transformer (``CrossAttnDownBlock2D``).
    resnet_kwargs
        ``groups``, ``eps``, ``dropout`` of the resnets.
    attention_kwargs
        Keyword arguments of :class:`~emo.models.attention.SpatialTransformer`
        (all but ``in_channels``).
    temporal_kwargs
        Keyword arguments of :class:`~emo.models.temporal.TemporalModule`
        (all but ``in_channels``), or ``None`` for an image-only block.
    """

    def __init__(
        self,
        prefix: str,
        in_channels: int,
        out_channels: int,
        temb_channels: int,
        num_layers: int,
        add_downsample: bool,
        cross_attention: bool,
        resnet_kwargs: Mapping[str, Any],
        attention_kwargs: Mapping[str, Any],
        temporal_kwargs: Mapping[str, Any] | None = None,
        audio_module_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(prefix)
        self.resnets = nn.ModuleList(
            [
                ResnetBlock2D(
                    in_channels if j == 0 else out_channels,
                    out_channels,
                    temb_channels,
                    **resnet_kwargs,
                )
                for j in range(num_layers)
            ]
        )
        self._build_attention_and_motion(
            out_channels,
            num_layers,
            cross_attention,
            attention_kwargs,
            temporal_kwargs,
            _audio_widths(
                audio_module_kwargs,
                [in_channels if j == 0 else out_channels for j in range(num_layers)],
            ),
        )
        self.downsamplers = (
            nn.ModuleList([Downsample2D(out_channels, out_channels, padding=1)])
            if add_downsample
            else None
        )

    def forward(
        self, x: torch.Tensor, temb: torch.Tensor, ctx: BlockContext
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Apply the block to ``((b f), c_in, h, w)``.

        Returns
        -------
        tuple
            The output ``((b f), c_out, h', w')`` and the skip connections (one per
            layer, plus one after the downsampler).
        """
        skips: list[torch.Tensor] = []
        for j, resnet in enumerate(self.resnets):
            x = _run(ctx, resnet, x, temb)
            x = self._attend(j, x, ctx)
            x = self._after_layer(j, x, ctx)
            skips.append(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            skips.append(x)
        return x, skips


class MidBlock(_LayeredBlock):
    """Middle block: resnet, then (spatial transformer [+ temporal], resnet).

    Parameter names: ``resnets.{0,1}``, ``attentions.0``, ``motion_modules.0``.
    The temporal module (and the recorded layer ``"mid_block.motion_modules.0"``)
    sits after the transformer, before the second resnet, as in AnimateDiff.

    Parameters
    ----------
    prefix
        Path of the block (``"mid_block"``).
    channels
        Channels in and out.
    temb_channels
        Width of the time embedding.
    resnet_kwargs
        ``groups``, ``eps``, ``dropout`` of the resnets.
    attention_kwargs
        Keyword arguments of :class:`~emo.models.attention.SpatialTransformer`.
    temporal_kwargs
        Keyword arguments of :class:`~emo.models.temporal.TemporalModule`, or ``None``.
    """

    def __init__(
        self,
        prefix: str,
        channels: int,
        temb_channels: int,
        resnet_kwargs: Mapping[str, Any],
        attention_kwargs: Mapping[str, Any],
        temporal_kwargs: Mapping[str, Any] | None = None,
        audio_module_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(prefix)
        self.resnets = nn.ModuleList(
            [ResnetBlock2D(channels, channels, temb_channels, **resnet_kwargs) for _ in range(2)]
        )
        self._build_attention_and_motion(
            channels,
            1,
            True,
            attention_kwargs,
            temporal_kwargs,
            _audio_widths(audio_module_kwargs, [channels]),
        )

    def forward(self, x: torch.Tensor, temb: torch.Tensor, ctx: BlockContext) -> torch.Tensor:
        """Apply the block to ``((b f), c, h, w)``; same shape out."""
        x = _run(ctx, self.resnets[0], x, temb)
        x = self._attend(0, x, ctx)
        x = self._after_layer(0, x, ctx)
        out: torch.Tensor = _run(ctx, self.resnets[1], x, temb)
        return out


class UpBlock(_LayeredBlock):
    """Decoder block: ``num_layers`` x (concat skip, resnet [+ transformer] [+ temporal]), upsample.

    Parameter names: ``resnets.{j}``, ``attentions.{j}``, ``motion_modules.{j}``,
    ``upsamplers.0``.

    Parameters
    ----------
    prefix
        Path of the block (``"up_blocks.{i}"``).
    in_channels
        Channels of the encoder block this one mirrors (width of its first skip).
    prev_output_channel
        Channels coming from the previous decoder block.
    out_channels
        Output channels.
    temb_channels
        Width of the time embedding.
    num_layers
        Number of layers (``layers_per_block + 1``).
    add_upsample
        Whether ``upsamplers.0`` follows the layers.
    cross_attention
        Whether each layer has a spatial transformer (``CrossAttnUpBlock2D``).
    resnet_kwargs
        ``groups``, ``eps``, ``dropout`` of the resnets.
    attention_kwargs
        Keyword arguments of :class:`~emo.models.attention.SpatialTransformer`.
    temporal_kwargs
        Keyword arguments of :class:`~emo.models.temporal.TemporalModule`, or ``None``.
    """

    def __init__(
        self,
        prefix: str,
        in_channels: int,
        prev_output_channel: int,
        out_channels: int,
        temb_channels: int,
        num_layers: int,
        add_upsample: bool,
        cross_attention: bool,
        resnet_kwargs: Mapping[str, Any],
        attention_kwargs: Mapping[str, Any],
        temporal_kwargs: Mapping[str, Any] | None = None,
        audio_module_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(prefix)
        resnets = []
        for j in range(num_layers):
            skip = in_channels if j == num_layers - 1 else out_channels
            first = prev_output_channel if j == 0 else out_channels
            resnets.append(
                ResnetBlock2D(first + skip, out_channels, temb_channels, **resnet_kwargs)
            )
        self.resnets = nn.ModuleList(resnets)
        self._build_attention_and_motion(
            out_channels,
            num_layers,
            cross_attention,
            attention_kwargs,
            temporal_kwargs,
            _audio_widths(audio_module_kwargs, [in_channels] * num_layers),
        )
        self.upsamplers = (
            nn.ModuleList([Upsample2D(out_channels, out_channels)]) if add_upsample else None
        )

    def forward(
        self,
        x: torch.Tensor,
        skips: Sequence[torch.Tensor],
        temb: torch.Tensor,
        ctx: BlockContext,
        upsample_size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Apply the block to ``((b f), c, h, w)``, consuming ``skips`` last-first.

        Parameters
        ----------
        x
            Input ``((b f), c, h, w)``.
        skips
            This block's skip connections, in encoder order (the last is used first).
        temb
            Time embedding ``((b f), t)``.
        ctx
            The forward context.
        upsample_size
            Spatial size after upsampling (the next skip's size); default doubles.
        """
        for j, resnet in enumerate(self.resnets):
            x = torch.cat([x, skips[-1 - j]], dim=1)
            x = _run(ctx, resnet, x, temb)
            x = self._attend(j, x, ctx)
            x = self._after_layer(j, x, ctx)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x, upsample_size)
        return x
