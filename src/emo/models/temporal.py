"""Temporal modules: self-attention along time, AnimateDiff-compatible, with motion frames and speed.

A :class:`TemporalModule` mixes information across the frames of a clip at every
spatial position of a feature map. It is the AnimateDiff "motion module" (the
``mm_sd_v15_v2`` design: two temporal self-attentions and a GEGLU feed-forward per
transformer block, sinusoidal positions) extended with the two inputs EMO adds:

* **motion frames**: the features of the last ``n`` frames of the previous clip at the
  same layer are prepended along time, so the current clip continues the previous
  one smoothly. They are keys/values only; just the current frames come out;
* **speed**: the speed embedding (see :mod:`emo.models.speed`; one vector per frame,
  each built from the speed codes of a window of frames) enters through a
  *cross-attention* in every transformer block (``speed_norm`` + ``speed_attention``,
  after the two self-attentions, before the feed-forward): the current frames' tokens
  of each spatial position attend to the ``f`` speed vectors of the clip, the same
  vectors at every position (the paper's "repeated over the spatial positions").
  The same sinusoidal positions are added to the queries' input and to the projected
  keys, so a frame can find its own speed (the paper does not say how frames are
  aligned; this is emo's choice). Its output projection starts at zero.

Parameter names follow the original AnimateDiff checkpoint layout, so motion-module
weights load with :func:`emo.loaders.animatediff.load_motion_module_weights`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from emo.errors import ConfigError, InputError
from emo.models.attention import FeedForward
from emo.models.layers import Linear

__all__ = ["SinusoidalPositionalEncoding", "TemporalModule", "sinusoidal_positions"]


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """The fixed sinusoidal position table of "Attention Is All You Need" (AnimateDiff's ``pe``).

    Even channels hold ``sin(p / 10000**(2i/dim))``, odd channels the matching cosine.

    Parameters
    ----------
    length
        Number of positions.
    dim
        Channels per position (even).

    Returns
    -------
    torch.Tensor
        float32 table of shape ``(1, length, dim)``.
    """
    if dim % 2:
        raise ConfigError(f"sinusoidal positions need an even channel count, got dim={dim}")
    position = torch.arange(length, dtype=torch.float32)[:, None]
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(1, length, dim)
    table[0, :, 0::2] = torch.sin(position * div_term)
    table[0, :, 1::2] = torch.cos(position * div_term)
    return table


class SinusoidalPositionalEncoding(nn.Module):
    """Adds fixed sinusoidal positions to a token sequence.

    The table is a *persistent* buffer named ``pe`` of shape ``(1, max_positions, dim)``,
    as in AnimateDiff checkpoints (``...attention_blocks.0.pos_encoder.pe``).

    Parameters
    ----------
    dim
        Token channels.
    max_positions
        Longest sequence the table covers.
    """

    pe: torch.Tensor

    def __init__(self, dim: int, max_positions: int) -> None:
        super().__init__()
        if torch.empty(0).device.type == "meta":  # shapes only (a load assigns the table)
            table = torch.empty(1, max_positions, dim)
        else:
            table = sinusoidal_positions(max_positions, dim)
        self.register_buffer("pe", table)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Return ``tokens + pe[:, :l]``.

        Parameters
        ----------
        tokens
            Shape ``(b, l, c)`` with ``l <= max_positions``.

        Returns
        -------
        torch.Tensor
            Shape ``(b, l, c)``.
        """
        return tokens + self.pe[:, : tokens.shape[1]].to(tokens.dtype)


class _TemporalAttention(nn.Module):
    """Multi-head self-attention along the sequence axis with added sinusoidal positions."""

    def __init__(self, dim: int, heads: int, max_positions: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_q = Linear(dim, dim, bias=False)
        self.to_k = Linear(dim, dim, bias=False)
        self.to_v = Linear(dim, dim, bias=False)
        self.to_out = nn.ModuleList([Linear(dim, dim)])
        self.pos_encoder = SinusoidalPositionalEncoding(dim, max_positions)

    def forward(self, tokens: torch.Tensor, queries_from: int = 0) -> torch.Tensor:
        # tokens: (B, L, C) -> (B, L - queries_from, C)
        tokens = self.pos_encoder(tokens)
        q = rearrange(self.to_q(tokens[:, queries_from:]), "b l (h d) -> b h l d", h=self.heads)
        k = rearrange(self.to_k(tokens), "b l (h d) -> b h l d", h=self.heads)
        v = rearrange(self.to_v(tokens), "b l (h d) -> b h l d", h=self.heads)
        out = F.scaled_dot_product_attention(q, k, v)
        out = rearrange(out, "b h l d -> b l (h d)")
        linear: nn.Linear = self.to_out[0]  # type: ignore[assignment]
        return linear(out)  # type: ignore[no-any-return]


class _SpeedAttention(nn.Module):
    """Cross-attention from the current frames' tokens to the clip's speed embedding.

    Keys and values are computed once per sample, not once per spatial position: the
    queries of all ``h*w`` positions of a sample attend to the same ``f`` speed tokens.
    """

    def __init__(self, dim: int, speed_dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_q = Linear(dim, dim, bias=False)
        self.to_k = Linear(speed_dim, dim, bias=False)
        self.to_v = Linear(speed_dim, dim, bias=False)
        self.to_out = nn.ModuleList([Linear(dim, dim)])
        out: nn.Linear = self.to_out[0]  # type: ignore[assignment]
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)

    def forward(
        self, tokens: torch.Tensor, speed: torch.Tensor, batch: int, positions: torch.Tensor
    ) -> torch.Tensor:
        # tokens: ((b s), f, c) normalised current frames; speed: (b | 1, f, d);
        # positions: (1, f, c) sinusoidal table rows of the current frames -> ((b s), f, c)
        f = tokens.shape[1]
        pe = positions.to(tokens.dtype)
        q = self.to_q(tokens + pe)
        q = rearrange(q, "(b s) f (h d) -> b h (s f) d", b=batch, h=self.heads)
        speed = speed.to(tokens.dtype)
        k = rearrange(self.to_k(speed) + pe, "b f (h d) -> b h f d", h=self.heads)
        v = rearrange(self.to_v(speed), "b f (h d) -> b h f d", h=self.heads)
        if k.shape[0] != batch:
            k, v = k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)
        out = F.scaled_dot_product_attention(q, k, v)
        out = rearrange(out, "b h (s f) d -> (b s) f (h d)", f=f)
        linear: nn.Linear = self.to_out[0]  # type: ignore[assignment]
        return linear(out)  # type: ignore[no-any-return]


class _TemporalTransformerBlock(nn.Module):
    """Two pre-norm temporal self-attentions, [pre-norm speed cross-attention], pre-norm FF."""

    def __init__(
        self, dim: int, heads: int, max_positions: int, speed_embed_dim: int | None
    ) -> None:
        super().__init__()
        self.attention_blocks = nn.ModuleList(
            [_TemporalAttention(dim, heads, max_positions) for _ in range(2)]
        )
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(2)])
        self.speed_norm: nn.LayerNorm | None = None
        self.speed_attention: _SpeedAttention | None = None
        if speed_embed_dim is not None:
            self.speed_norm = nn.LayerNorm(dim)
            self.speed_attention = _SpeedAttention(dim, speed_embed_dim, heads)
        self.ff = FeedForward(dim)  # keys net.0.proj and net.2, as AnimateDiff
        self.ff_norm = nn.LayerNorm(dim)

    def forward(
        self,
        x: torch.Tensor,
        keep_last: int | None = None,
        speed: torch.Tensor | None = None,
        batch: int = 1,
    ) -> torch.Tensor:
        # x: (B, L, C). With keep_last=k only the last k tokens are computed in the last
        # attention and the feed-forward (the others would be discarded anyway).
        # speed: (b | 1, f, d) for the last f tokens (the current frames), or None.
        length = x.shape[1]
        last = len(self.attention_blocks) - 1
        for i, (attention, norm) in enumerate(zip(self.attention_blocks, self.norms, strict=True)):
            if keep_last is not None and i == last:
                start = x.shape[1] - keep_last
                x = attention(norm(x), queries_from=start) + x[:, start:]
            else:
                x = attention(norm(x)) + x
        if speed is not None and self.speed_attention is not None and self.speed_norm is not None:
            f = speed.shape[1]
            current = x[:, -f:]
            # The rows of the self-attention's (fixed sinusoidal) table for these frames.
            first: _TemporalAttention = self.attention_blocks[0]  # type: ignore[assignment]
            positions = first.pos_encoder.pe[:, length - f : length]
            added = self.speed_attention(self.speed_norm(current), speed, batch, positions)
            x = (
                torch.cat([x[:, :-f], current + added], dim=1)
                if x.shape[1] > f
                else current + added
            )
        return self.ff(self.ff_norm(x)) + x  # type: ignore[no-any-return]


class _TemporalTransformer(nn.Module):
    def __init__(
        self,
        in_channels: int,
        heads: int,
        num_blocks: int,
        norm_num_groups: int,
        max_positions: int,
        speed_embed_dim: int | None,
    ) -> None:
        super().__init__()
        inner_dim = in_channels
        self.norm = nn.GroupNorm(norm_num_groups, in_channels, eps=1e-6, affine=True)
        self.proj_in = Linear(in_channels, inner_dim)
        self.transformer_blocks = nn.ModuleList(
            [
                _TemporalTransformerBlock(inner_dim, heads, max_positions, speed_embed_dim)
                for _ in range(num_blocks)
            ]
        )
        self.proj_out = Linear(inner_dim, in_channels)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)


class TemporalModule(nn.Module):
    """AnimateDiff-style motion module with EMO's motion frames and speed conditioning.

    ``GroupNorm -> proj_in -> transformer blocks -> proj_out -> + input``, where each
    transformer block runs two temporal self-attentions (sinusoidal positions added to
    the normalised attention input), the speed cross-attention (when built and given a
    speed embedding) and a GEGLU feed-forward along time, at every spatial position
    (tokens ``(b h w) f c``).

    ``proj_out`` (and the speed attention's ``to_out``) start at zero, so a fresh module
    returns its input exactly.

    Parameters
    ----------
    in_channels
        Channels ``c`` of the feature map (320/640/1280 in a Stable Diffusion 1.5 UNet).
        Must be divisible by ``num_attention_heads`` and by ``norm_num_groups``.
    num_attention_heads
        Attention heads; the head dim is ``in_channels // num_attention_heads``.
    num_transformer_blocks
        Transformer blocks (AnimateDiff v1/v2: 1).
    norm_num_groups
        Groups of the input GroupNorm.
    max_positions
        Longest sequence (motion frames + current frames) the positional table covers
        (AnimateDiff v2: 32; v1: 24).
    speed_embed_dim
        Width ``d`` of the speed embedding (:class:`emo.models.speed.SpeedEncoder`);
        ``None`` builds no speed cross-attention.
    norm_across_frames
        ``False`` (default): the input GroupNorm normalises every frame on its own, as
        the original AnimateDiff code does (``(b f) c h w``). ``True``: statistics are
        taken over all frames of the sequence, motion frames included, as the
        ``diffusers`` port (``AnimateDiffTransformer3D``) does. The weights are the
        same; choose ``True`` only to reproduce ``diffusers`` numerically.

    Notes
    -----
    Parameter names relative to the module follow the original AnimateDiff layout:
    ``temporal_transformer.{norm,proj_in,proj_out}``,
    ``temporal_transformer.transformer_blocks.{k}.attention_blocks.{a}.{to_q,to_k,to_v,to_out.0}``,
    ``...attention_blocks.{a}.pos_encoder.pe``, ``...norms.{a}``, ``...ff.net.{0.proj,2}``,
    ``...ff_norm``, plus EMO's ``...transformer_blocks.{k}.speed_norm`` and
    ``...transformer_blocks.{k}.speed_attention.{to_q,to_k,to_v,to_out.0}``.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        num_attention_heads: int = 8,
        num_transformer_blocks: int = 1,
        norm_num_groups: int = 32,
        max_positions: int = 32,
        speed_embed_dim: int | None = None,
        norm_across_frames: bool = False,
    ) -> None:
        super().__init__()
        if in_channels <= 0 or num_attention_heads <= 0 or in_channels % num_attention_heads:
            raise ConfigError(
                f"TemporalModule: in_channels={in_channels} must be a positive multiple of "
                f"num_attention_heads={num_attention_heads}"
            )
        if norm_num_groups <= 0 or in_channels % norm_num_groups:
            raise ConfigError(
                f"TemporalModule: in_channels={in_channels} must be divisible by "
                f"norm_num_groups={norm_num_groups}"
            )
        if max_positions <= 0 or num_transformer_blocks <= 0:
            raise ConfigError(
                "TemporalModule: max_positions and num_transformer_blocks must be positive, got "
                f"{max_positions} and {num_transformer_blocks}"
            )
        if speed_embed_dim is not None and speed_embed_dim <= 0:
            raise ConfigError(f"TemporalModule: speed_embed_dim={speed_embed_dim} must be positive")
        self.in_channels = in_channels
        self.num_attention_heads = num_attention_heads
        self.max_positions = max_positions
        self.speed_embed_dim = speed_embed_dim
        self.norm_across_frames = norm_across_frames
        self.temporal_transformer = _TemporalTransformer(
            in_channels,
            num_attention_heads,
            num_transformer_blocks,
            norm_num_groups,
            max_positions,
            speed_embed_dim,
        )

    def _check_inputs(
        self,
        hidden_states: torch.Tensor,
        motion_states: torch.Tensor | None,
        speed_embedding: torch.Tensor | None,
    ) -> None:
        if hidden_states.ndim != 5 or hidden_states.shape[1] != self.in_channels:
            raise InputError(
                f"TemporalModule: hidden_states must be (b, c={self.in_channels}, f, h, w), got "
                f"shape {tuple(hidden_states.shape)}"
            )
        b, c, f, h, w = hidden_states.shape
        n = 0
        if motion_states is not None:
            if (
                motion_states.ndim != 5
                or motion_states.shape[0] not in (1, b)
                or tuple(motion_states.shape[1:2]) + tuple(motion_states.shape[3:]) != (c, h, w)
            ):
                raise InputError(
                    f"TemporalModule: motion_states must be (b={b} or 1, c={c}, n, h={h}, w={w}), "
                    f"got shape {tuple(motion_states.shape)}"
                )
            n = motion_states.shape[2]
        if n + f > self.max_positions:
            raise InputError(
                f"TemporalModule: {n} motion frames + {f} frames = {n + f} positions exceed "
                f"max_positions={self.max_positions}; use shorter clips or fewer motion frames"
            )
        if speed_embedding is not None:
            if self.speed_embed_dim is None:
                raise InputError(
                    "TemporalModule: a speed_embedding was given but this module was built without "
                    "speed_embed_dim; build it with speed_embed_dim=d or pass speed_embedding=None"
                )
            if speed_embedding.ndim != 3 or tuple(speed_embedding.shape) not in (
                (b, f, self.speed_embed_dim),
                (1, f, self.speed_embed_dim),
            ):
                raise InputError(
                    f"TemporalModule: speed_embedding must be (b={b}, f={f}, "
                    f"d={self.speed_embed_dim}), got shape {tuple(speed_embedding.shape)}"
                )

    def forward(
        self,
        hidden_states: torch.Tensor,
        motion_states: torch.Tensor | None = None,
        speed_embedding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mix features along time.

        Parameters
        ----------
        hidden_states
            Features of the current frames, shape ``(b, c, f, h, w)``.
        motion_states
            Features of the ``n`` previous (motion) frames at this layer, shape
            ``(b, c, n, h, w)`` (a batch of 1 is broadcast). They take positions
            ``0..n-1`` and the current frames ``n..n+f-1``; they are attended to but
            not returned.
        speed_embedding
            Per-frame speed embedding of shape ``(b, f, d)`` (a batch of 1 is
            broadcast), attended to by the current frames' tokens in every transformer
            block (speed cross-attention).

        Returns
        -------
        torch.Tensor
            Shape ``(b, c, f, h, w)``.

        Raises
        ------
        InputError
            On a shape that does not fit, or more than ``max_positions`` frames.
        """
        self._check_inputs(hidden_states, motion_states, speed_embedding)
        b, _, f, h, w = hidden_states.shape
        tt = self.temporal_transformer
        x = hidden_states
        n = 0
        if motion_states is not None and motion_states.shape[2] > 0:
            motion = motion_states.to(hidden_states.dtype)
            if motion.shape[0] != b:
                motion = motion.expand(b, -1, -1, -1, -1)
            x = torch.cat([motion, hidden_states], dim=2)
            n = motion.shape[2]

        if self.norm_across_frames:
            normed = tt.norm(x)
        else:
            normed = rearrange(
                tt.norm(rearrange(x, "b c f h w -> (b f) c h w")), "(b f) c h w -> b c f h w", b=b
            )
        tokens = tt.proj_in(rearrange(normed, "b c f h w -> (b h w) f c"))

        blocks = list(tt.transformer_blocks)
        for i, block in enumerate(blocks):
            keep = f if (n and i == len(blocks) - 1) else None
            tokens = block(tokens, keep_last=keep, speed=speed_embedding, batch=b)
        if tokens.shape[1] != f:
            tokens = tokens[:, -f:]
        out: torch.Tensor = rearrange(
            tt.proj_out(tokens), "(b h w) f c -> b c f h w", b=b, h=h, w=w
        )
        return out + hidden_states
