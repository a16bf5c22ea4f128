"""Attention layers of the UNet family: attention, GEGLU feed-forward, spatial transformer.

Parameter names follow the Stable Diffusion 1.x checkpoint layout
(``to_q``/``to_k``/``to_v``/``to_out.0``; ``norm1``/``attn1``/``norm2``/``attn2``/
``norm3``/``ff.net.0.proj``/``ff.net.2``; ``norm``/``proj_in``/``proj_out``).

Two EMO extensions live here, both off unless asked for:

* *reference attention*: the self-attention ``attn1`` of a transformer block
  attends over ``[own tokens ; reference tokens]`` (no new parameters);
* *audio attention*: ``audio_norm`` + ``audio_attn``, a cross-attention from
  the tokens of one frame to that frame's audio tokens, right after the
  reference attention (the paper's placement), its output projection
  zero-initialised.

The text cross-attention ``norm2`` + ``attn2`` of Stable Diffusion is built only when
the block is given a ``cross_attention_dim`` (the plain :class:`~emo.models.UNet2D`);
EMO's networks use no text and do not build it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from emo.errors import InputError
from emo.models.layers import Conv2d, Linear

__all__ = [
    "GEGLU",
    "Attention",
    "BasicTransformerBlock",
    "FeedForward",
    "KeyValues",
    "SpatialTransformer",
    "append_tokens",
]

#: Projected keys and values ``(b, m, inner)`` each, of tokens that stay fixed across steps.
KeyValues = tuple[torch.Tensor, torch.Tensor]


class Attention(nn.Module):
    """Multi-head (cross-)attention through :func:`torch.nn.functional.scaled_dot_product_attention`.

    Parameters
    ----------
    query_dim
        Width of the query tokens (and of the output).
    cross_attention_dim
        Width of the context tokens (default: ``query_dim``, self-attention).
    heads
        Number of heads.
    dim_head
        Width of one head; the inner width is ``heads * dim_head``.
    dropout
        Dropout after the output projection.
    bias
        Whether ``to_q``/``to_k``/``to_v`` have a bias (not in Stable Diffusion).
    """

    def __init__(
        self,
        query_dim: int,
        cross_attention_dim: int | None = None,
        heads: int = 8,
        dim_head: int = 64,
        dropout: float = 0.0,
        bias: bool = False,
    ) -> None:
        super().__init__()
        inner = heads * dim_head
        context_dim = query_dim if cross_attention_dim is None else cross_attention_dim
        self.heads = heads
        self.dim_head = dim_head
        self.to_q = Linear(query_dim, inner, bias=bias)
        self.to_k = Linear(context_dim, inner, bias=bias)
        self.to_v = Linear(context_dim, inner, bias=bias)
        self.to_out = nn.ModuleList([Linear(inner, query_dim), nn.Dropout(dropout)])

    def project_reference(self, reference: torch.Tensor) -> KeyValues:
        """Keys and values of reference tokens ``(b_r, m, d)``, each ``(b_r, m, inner)``.

        Reference tokens do not change between denoising steps: a pipeline projects
        them once per generation and passes the pair as ``reference`` to :meth:`forward`.
        """
        return self.to_k(reference), self.to_v(reference)

    def forward(
        self,
        hidden_states: torch.Tensor,
        context: torch.Tensor | None = None,
        reference: torch.Tensor | KeyValues | None = None,
        num_frames: int = 1,
    ) -> torch.Tensor:
        """Attend from ``hidden_states`` to ``context`` (and to ``reference`` tokens).

        Parameters
        ----------
        hidden_states
            Queries ``(b, n, query_dim)``; with video, ``b`` is ``(b f)``.
        context
            Keys/values ``(b, m, cross_attention_dim)``; ``None`` means ``hidden_states``.
        reference
            Extra key/value tokens ``(b_r, m_r, cross_attention_dim)`` appended to the
            context, or their projection by :meth:`project_reference` (a ``(keys,
            values)`` pair, each ``(b_r, m_r, inner)``). ``b_r`` is 1 (shared by all),
            ``b / num_frames`` (one per video, shared by its frames) or ``b``. They are
            projected once per ``b_r`` sample, not once per frame, and broadcast to the
            frames without a copy of their own.
        num_frames
            Frames per video in the ``(b f)`` batch (for ``reference`` broadcasting).

        Returns
        -------
        torch.Tensor
            ``(b, n, query_dim)``.
        """
        context = hidden_states if context is None else context
        k = self.to_k(context)
        v = self.to_v(context)
        if reference is not None:
            k_ref, v_ref = (
                self.project_reference(reference)
                if isinstance(reference, torch.Tensor)
                else reference
            )
            k = append_tokens(k, k_ref.to(k.dtype), num_frames)
            v = append_tokens(v, v_ref.to(v.dtype), num_frames)
        q = rearrange(self.to_q(hidden_states), "b n (h d) -> b h n d", h=self.heads)
        k = rearrange(k, "b m (h d) -> b h m d", h=self.heads)
        v = rearrange(v, "b m (h d) -> b h m d", h=self.heads)
        out = F.scaled_dot_product_attention(q, k, v)
        out = rearrange(out, "b h n d -> b n (h d)").to(q.dtype)
        for layer in self.to_out:
            out = layer(out)
        return out


def _select_reference(
    reference: torch.Tensor | KeyValues, videos_kept: torch.Tensor, videos: int, num_frames: int
) -> torch.Tensor | KeyValues:
    """The reference rows of some videos (batch 1 is shared; per-video or per-frame rows are picked)."""

    def pick(tensor: torch.Tensor) -> torch.Tensor:
        rows = int(tensor.shape[0])
        if rows == 1:
            return tensor
        if rows == videos:
            return tensor.index_select(0, videos_kept.to(tensor.device))
        if rows == videos * num_frames:
            per_video = tensor.reshape(videos, num_frames, *tensor.shape[1:])
            picked = per_video.index_select(0, videos_kept.to(tensor.device))
            return picked.reshape(-1, *tensor.shape[1:])
        raise InputError(
            f"reference tokens have batch {rows}; it must be 1, the number of videos "
            f"({videos}) or the number of frames ({videos * num_frames})"
        )

    if isinstance(reference, torch.Tensor):
        return pick(reference)
    return pick(reference[0]), pick(reference[1])


def append_tokens(tokens: torch.Tensor, extra: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Append ``extra`` tokens to every sample of ``tokens`` along the token axis.

    Parameters
    ----------
    tokens
        ``((b f), n, c)``.
    extra
        ``(b_r, m, c)`` with ``b_r`` 1 (shared by every sample), ``b`` (one per video,
        shared by its ``f`` frames) or ``(b f)``.
    num_frames
        ``f``.

    Returns
    -------
    torch.Tensor
        ``((b f), n + m, c)``; ``extra`` is broadcast inside the one concatenation
        (no repeated copy of it).
    """
    total, n, c = tokens.shape
    rows, m = int(extra.shape[0]), int(extra.shape[1])
    if rows == total:
        return torch.cat([tokens, extra], dim=1)
    if rows == 1:
        return torch.cat([tokens, extra.expand(total, m, c)], dim=1)
    videos = total // num_frames
    if rows != videos or videos * num_frames != total:
        raise InputError(
            f"reference tokens have batch {rows}; it must be 1, the number of videos "
            f"({videos}) or the number of frames ({total})"
        )
    per_frame = tokens.reshape(videos, num_frames, n, c)
    shared = extra[:, None].expand(videos, num_frames, m, c)
    return torch.cat([per_frame, shared], dim=2).reshape(total, n + m, c)


class GEGLU(nn.Module):
    """Gated GELU: ``proj`` doubles the width, one half gates the other through GELU.

    Parameters
    ----------
    dim_in
        Input width.
    dim_out
        Output width.
    """

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(..., dim_in)`` to ``(..., dim_out)``."""
        hidden, gate = self.proj(x).chunk(2, dim=-1)
        out: torch.Tensor = hidden * F.gelu(gate)
        return out


class FeedForward(nn.Module):
    """GEGLU feed-forward ``net = [GEGLU, Dropout, Linear]`` with a 4x inner width.

    Parameters
    ----------
    dim
        Input and output width.
    mult
        Inner width multiplier.
    dropout
        Dropout between the two projections.
    """

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        inner = dim * mult
        self.net = nn.ModuleList([GEGLU(dim, inner), nn.Dropout(dropout), Linear(inner, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(..., dim)`` to ``(..., dim)``."""
        for layer in self.net:
            x = layer(x)
        return x


class BasicTransformerBlock(nn.Module):
    """Self-(reference-)attention, [audio attention], [text attention], GEGLU feed-forward.

    Every part is a pre-LayerNorm residual: ``attn1`` (self-attention, reference tokens
    appended to its keys/values), ``audio_attn`` (when built), ``attn2`` (when built),
    ``ff``.

    Parameters
    ----------
    dim
        Token width.
    num_attention_heads
        Heads of every attention.
    attention_head_dim
        Width of one head.
    cross_attention_dim
        Width of the text tokens of ``attn2``; ``None`` builds no ``norm2``/``attn2``.
    dropout
        Dropout of the attentions and the feed-forward.
    audio_cross_attention_dim
        Width of the audio tokens; when set, ``audio_norm`` and ``audio_attn``
        (zero-initialised output) are added.
    """

    def __init__(
        self,
        dim: int,
        num_attention_heads: int,
        attention_head_dim: int,
        cross_attention_dim: int | None = None,
        dropout: float = 0.0,
        audio_cross_attention_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.key = ""  # stable layer path; set by the owning network
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, None, num_attention_heads, attention_head_dim, dropout)
        self.norm2: nn.LayerNorm | None = None
        self.attn2: Attention | None = None
        if cross_attention_dim is not None:
            self.norm2 = nn.LayerNorm(dim)
            self.attn2 = Attention(
                dim, cross_attention_dim, num_attention_heads, attention_head_dim, dropout
            )
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, dropout=dropout)
        self._audio_spec = (dim, audio_cross_attention_dim, num_attention_heads, attention_head_dim)
        self._dropout = dropout
        self.audio_norm: nn.LayerNorm | None = None
        self.audio_attn: Attention | None = None
        self.reset_audio_attention()

    def reset_audio_attention(self) -> None:
        """(Re)create ``audio_norm`` and ``audio_attn`` freshly initialised (zero output).

        They are created on the current default device; nothing happens when the
        block has no audio attention.
        """
        dim, audio_dim, heads, head_dim = self._audio_spec
        if audio_dim is None:
            return
        self.audio_norm = nn.LayerNorm(dim)
        self.audio_attn = Attention(dim, audio_dim, heads, head_dim, self._dropout)
        out = self.audio_attn.to_out[0]
        assert isinstance(out, nn.Linear)
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        reference: torch.Tensor | KeyValues | None = None,
        audio_tokens: torch.Tensor | None = None,
        num_frames: int = 1,
        audio_rows: Sequence[int] | None = None,
        reference_rows: Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply the block.

        Parameters
        ----------
        hidden_states
            Tokens ``(b, n, dim)``.
        encoder_hidden_states
            Text tokens ``(b, t, d)``; ``None`` skips ``attn2`` altogether (a block
            without ``attn2`` ignores them).
        reference
            Reference tokens ``(b_r, m, dim)`` appended to the keys/values of ``attn1``
            (``b_r``: 1, ``b / num_frames`` or ``b``; see :meth:`Attention.forward`),
            or their ``attn1.project_reference`` pair.
        audio_tokens
            Audio tokens ``(b, k, d_audio)`` for ``audio_attn`` (ignored when the
            block has none).
        num_frames
            Frames per video in the ``(b f)`` batch.
        audio_rows
            The videos (indices into the ``b / num_frames`` videos) whose audio tokens
            are not all zero; ``None``: all of them. For the others (a dropped audio
            condition) the audio attention's keys and values are zero, so its output is
            exactly the bias of ``to_out``: it is added without computing the attention.
        reference_rows
            The videos whose ``attn1`` attends to the reference tokens; the others run
            plain self-attention (Hallo's unconditional branch). ``None``: all of them.

        Returns
        -------
        tuple of torch.Tensor
            The new tokens ``(b, n, dim)`` and the normalised tokens that entered
            ``attn1`` ``(b, n, dim)`` (the reference features of this layer).
        """
        normed = self.norm1(hidden_states)
        hidden_states = hidden_states + self._self_attention(
            normed, reference, num_frames, reference_rows
        )
        if audio_tokens is not None and self.audio_attn is not None and self.audio_norm is not None:
            hidden_states = self._add_audio(hidden_states, audio_tokens, num_frames, audio_rows)
        if encoder_hidden_states is not None and self.attn2 is not None:
            assert self.norm2 is not None
            hidden_states = hidden_states + self.attn2(
                self.norm2(hidden_states), encoder_hidden_states
            )
        hidden_states = hidden_states + self.ff(self.norm3(hidden_states))
        return hidden_states, normed

    def _self_attention(
        self,
        normed: torch.Tensor,
        reference: torch.Tensor | KeyValues | None,
        num_frames: int,
        reference_rows: Sequence[int] | None,
    ) -> torch.Tensor:
        """``attn1`` with the reference tokens for the videos in ``reference_rows``, plain for the rest."""
        total, n, c = normed.shape
        videos = total // num_frames
        rows = None if reference_rows is None else sorted({int(r) for r in reference_rows})
        if reference is None or rows is None or len(rows) == videos:
            out: torch.Tensor = self.attn1(normed, None, reference, num_frames)
            return out
        if any(not 0 <= r < videos for r in rows) or videos * num_frames != total:
            raise InputError(
                f"reference_rows {rows} must index the {videos} videos of {num_frames} frames"
            )
        plain = [r for r in range(videos) if r not in rows]
        per_video = normed.reshape(videos, num_frames, n, c)
        result = torch.zeros_like(per_video)
        plain_index = torch.tensor(plain, device=normed.device)
        plain_in = per_video.index_select(0, plain_index).reshape(-1, n, c)
        plain_out = self.attn1(plain_in).reshape(len(plain), num_frames, n, c)
        result = result.index_copy(0, plain_index, plain_out)
        if rows:
            index = torch.tensor(rows, device=normed.device)
            kept = per_video.index_select(0, index).reshape(-1, n, c)
            selected = _select_reference(reference, index, videos, num_frames)
            kept_out = self.attn1(kept, None, selected, num_frames)
            result = result.index_copy(0, index, kept_out.reshape(len(rows), num_frames, n, c))
        return result.reshape(total, n, c)

    def _add_audio(
        self,
        hidden_states: torch.Tensor,
        audio_tokens: torch.Tensor,
        num_frames: int,
        audio_rows: Sequence[int] | None,
    ) -> torch.Tensor:
        """``hidden_states + audio_attn(audio_norm(hidden_states), audio_tokens)``, skipping silent rows."""
        attn, norm = self.audio_attn, self.audio_norm
        assert attn is not None and norm is not None
        total, n, c = hidden_states.shape
        videos = total // num_frames
        out_proj = attn.to_out[0]
        assert isinstance(out_proj, nn.Linear)
        exact_skip = (
            attn.to_k.bias is None
            and attn.to_v.bias is None
            and out_proj.bias is not None
            and videos * num_frames == total
        )
        if audio_rows is None or len(audio_rows) == videos or not exact_skip:
            out: torch.Tensor = hidden_states + attn(norm(hidden_states), audio_tokens)
            return out
        # Zero tokens -> zero keys and values -> attention output 0 -> to_out gives its bias.
        assert out_proj.bias is not None
        video = hidden_states.reshape(videos, num_frames, n, c)
        result = video + out_proj.bias.to(video.dtype)
        if audio_rows:
            rows = torch.tensor(list(audio_rows), device=video.device)
            kept = video.index_select(0, rows).reshape(-1, n, c)
            tokens = audio_tokens.reshape(videos, num_frames, *audio_tokens.shape[1:])
            kept_tokens = tokens.index_select(0, rows).reshape(-1, *audio_tokens.shape[1:])
            added = kept + attn(norm(kept), kept_tokens)
            result.index_copy_(0, rows, added.reshape(len(audio_rows), num_frames, n, c))
        return result.reshape(total, n, c)


class SpatialTransformer(nn.Module):
    """GroupNorm, ``proj_in``, transformer blocks over the ``h*w`` tokens, ``proj_out``, residual.

    Parameters
    ----------
    num_attention_heads
        Heads of every attention.
    attention_head_dim
        Width of one head.
    in_channels
        Channels of the feature map.
    num_layers
        Number of transformer blocks.
    cross_attention_dim
        Width of the text tokens; ``None`` builds no text cross-attention.
    norm_num_groups
        Groups of the input GroupNorm.
    use_linear_projection
        ``proj_in``/``proj_out`` are linear layers on tokens (SD 2.x style)
        rather than 1x1 convolutions (SD 1.x).
    dropout
        Dropout inside the blocks.
    audio_cross_attention_dim
        Width of the audio tokens, or ``None`` for no audio attention.
    """

    def __init__(
        self,
        num_attention_heads: int,
        attention_head_dim: int,
        in_channels: int,
        num_layers: int = 1,
        cross_attention_dim: int | None = None,
        norm_num_groups: int = 32,
        use_linear_projection: bool = False,
        dropout: float = 0.0,
        audio_cross_attention_dim: int | None = None,
    ) -> None:
        super().__init__()
        inner = num_attention_heads * attention_head_dim
        self.use_linear_projection = use_linear_projection
        self.norm = nn.GroupNorm(norm_num_groups, in_channels, eps=1e-6, affine=True)
        self.proj_in: nn.Module
        self.proj_out: nn.Module
        if use_linear_projection:
            self.proj_in = Linear(in_channels, inner)
            self.proj_out = Linear(inner, in_channels)
        else:
            self.proj_in = Conv2d(in_channels, inner, kernel_size=1)
            self.proj_out = Conv2d(inner, in_channels, kernel_size=1)
        self.block_keys: list[str] = [f"transformer_blocks.{k}" for k in range(num_layers)]
        self.transformer_blocks = nn.ModuleList(
            [
                BasicTransformerBlock(
                    inner,
                    num_attention_heads,
                    attention_head_dim,
                    cross_attention_dim=cross_attention_dim,
                    dropout=dropout,
                    audio_cross_attention_dim=audio_cross_attention_dim,
                )
                for _ in range(num_layers)
            ]
        )

    def assign_keys(self, prefix: str) -> None:
        """Name the transformer blocks ``{prefix}.transformer_blocks.{k}`` (feature keys)."""
        keys = []
        for k, block in enumerate(self.transformer_blocks):
            assert isinstance(block, BasicTransformerBlock)
            block.key = f"{prefix}.transformer_blocks.{k}"
            keys.append(block.key)
        self.block_keys = keys

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        reference: Sequence[torch.Tensor | KeyValues] | None = None,
        audio_tokens: torch.Tensor | None = None,
        num_frames: int = 1,
        audio_rows: Sequence[int] | None = None,
        reference_rows: Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Apply the transformer to a feature map.

        Parameters
        ----------
        hidden_states
            Feature map ``(b, c, h, w)``.
        encoder_hidden_states
            Text tokens ``(b, t, d)`` or ``None`` (no ``attn2``).
        reference
            One reference token tensor ``(b_r, m, inner)`` (or its projected keys and
            values) per transformer block, or ``None`` (``b_r``: 1, ``b / num_frames``
            or ``b``).
        audio_tokens
            Audio tokens ``(b, k, d_audio)`` or ``None``.
        num_frames
            Frames per video in the ``(b f)`` batch.
        audio_rows
            Videos whose audio tokens are not all zero (see
            :meth:`BasicTransformerBlock.forward`); ``None``: all.
        reference_rows
            Videos whose ``attn1`` reads the reference tokens (see
            :meth:`BasicTransformerBlock.forward`); ``None``: all.

        Returns
        -------
        tuple
            The new feature map ``(b, c, h, w)`` and, per transformer block, the
            normalised tokens ``(b, h*w, inner)`` that entered its ``attn1``.
        """
        _, _, height, width = hidden_states.shape
        residual = hidden_states
        x = self.norm(hidden_states)
        if self.use_linear_projection:
            x = self.proj_in(rearrange(x, "b c h w -> b (h w) c"))
        else:
            x = rearrange(self.proj_in(x), "b c h w -> b (h w) c")
        entered: list[torch.Tensor] = []
        for i, block in enumerate(self.transformer_blocks):
            ref = None if reference is None else reference[i]
            x, normed = block(
                x, encoder_hidden_states, ref, audio_tokens, num_frames, audio_rows, reference_rows
            )
            entered.append(normed)
        if self.use_linear_projection:
            x = rearrange(self.proj_out(x), "b (h w) c -> b c h w", h=height, w=width)
        else:
            x = self.proj_out(rearrange(x, "b (h w) c -> b c h w", h=height, w=width))
        return x + residual, entered
