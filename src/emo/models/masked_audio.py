"""Masked audio modules: Hallo's region-weighted audio cross-attention after a spatial transformer.

Hallo (Fudan, 2024) does not put audio attention inside the spatial transformer
blocks as EMO does; it adds a separate module after each spatial transformer of the
denoising network (``{block}.audio_modules.{j}``):

``GroupNorm -> 1x1 proj_in (C -> C_a) -> [self-attention; three cross-attentions to
the frame's audio tokens, each multiplied by a soft region mask (full/"pose", face
minus lips, lips) and mapped by a 1x1 zero-initialised convolution, summed with
weights; GEGLU feed-forward] -> 1x1 proj_out (C_a -> C) -> + input``.

The masks come as a pyramid: level ``l`` holds ``h_l * w_l`` values per frame, the
latent resolution of the blocks ``l`` steps down (down block ``i`` and up block
``n-1-i`` use level ``i``; the mid block the coarsest). Parameter names follow
Hallo's checkpoint (``norm``, ``proj_in``, ``proj_out``,
``transformer_blocks.0.{norm1,attn1,norm2,attn2_0,attn2_1,attn2_2,norm3,ff,
zero_conv_full,zero_conv_face,zero_conv_lip}``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from emo.errors import InputError
from emo.models.attention import Attention, FeedForward
from emo.models.layers import Conv2d

__all__ = ["AudioMasks", "MaskedAudioBlock", "MaskedAudioModule", "masked_audio_inner_width"]

#: The three regions, in the order of ``attn2_{0,1,2}`` and the mask weights.
REGIONS = ("full", "face", "lip")


def masked_audio_inner_width(channels: int, heads: int) -> int:
    """Hallo's inner width rule: ``(channels // heads) * heads``.

    Hallo sizes each audio module from its *block's input* width (the first layer of a
    down block, every layer of an up block's skip width), not from the features it
    normalises; see :class:`MaskedAudioModule`.
    """
    return (channels // heads) * heads


@dataclass(frozen=True)
class AudioMasks:
    """The region masks of the masked audio modules, one pyramid level per resolution.

    Attributes
    ----------
    full, face, lip
        Per level ``l`` (finest first), ``((b f), h_l * w_l)`` values in ``[0, 1]``,
        row-major over the latent grid of that level.
    weights
        The weight of each region's contribution (Hallo's ``pose_weight``,
        ``face_weight``, ``lip_weight``).
    """

    full: Sequence[torch.Tensor]
    face: Sequence[torch.Tensor]
    lip: Sequence[torch.Tensor]
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def level(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The three masks of one level, ``((b f), h_l * w_l)`` each."""
        if not 0 <= index < min(len(self.full), len(self.face), len(self.lip)):
            raise InputError(
                f"AudioMasks: level {index} was asked for but the masks have "
                f"{min(len(self.full), len(self.face), len(self.lip))} levels; give one per "
                "resolution of the network (4 for Stable Diffusion 1.5)"
            )
        return self.full[index], self.face[index], self.lip[index]

    def to(self, device: torch.device | str, dtype: torch.dtype) -> AudioMasks:
        """A copy with every mask moved and cast."""
        return AudioMasks(
            [m.to(device=device, dtype=dtype) for m in self.full],
            [m.to(device=device, dtype=dtype) for m in self.face],
            [m.to(device=device, dtype=dtype) for m in self.lip],
            self.weights,
        )

    def rows(self, index: Sequence[int] | torch.Tensor) -> AudioMasks:
        """A copy keeping some rows ``(b f)`` of every mask (e.g. one guidance branch)."""
        idx = torch.as_tensor(index)
        return AudioMasks(
            [m.index_select(0, idx.to(m.device)) for m in self.full],
            [m.index_select(0, idx.to(m.device)) for m in self.face],
            [m.index_select(0, idx.to(m.device)) for m in self.lip],
            self.weights,
        )


class MaskedAudioBlock(nn.Module):
    """Self-attention, three mask-weighted audio cross-attentions, GEGLU feed-forward.

    Parameters
    ----------
    dim
        Token width ``C_a``.
    heads
        Attention heads (head width ``dim // heads``).
    audio_dim
        Width of the audio tokens.
    """

    def __init__(self, dim: int, heads: int, audio_dim: int) -> None:
        super().__init__()
        head_dim = dim // heads
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, None, heads, head_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2_0 = Attention(dim, audio_dim, heads, head_dim)
        self.attn2_1 = Attention(dim, audio_dim, heads, head_dim)
        self.attn2_2 = Attention(dim, audio_dim, heads, head_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)
        self.zero_conv_full = Conv2d(dim, dim, kernel_size=1)
        self.zero_conv_face = Conv2d(dim, dim, kernel_size=1)
        self.zero_conv_lip = Conv2d(dim, dim, kernel_size=1)
        for conv in (self.zero_conv_full, self.zero_conv_face, self.zero_conv_lip):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)  # type: ignore[arg-type]

    def forward(
        self,
        tokens: torch.Tensor,
        audio_tokens: torch.Tensor,
        masks: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        weights: tuple[float, float, float],
        size: tuple[int, int],
    ) -> torch.Tensor:
        """Apply the block to ``((b f), h*w, C_a)`` tokens; same shape out.

        ``audio_tokens`` are ``((b f), k, d_audio)``, ``masks`` three ``((b f), h*w)``
        and ``size`` the ``(h, w)`` of the token grid (the 1x1 convolutions run on it).
        """
        tokens = tokens + self.attn1(self.norm1(tokens))
        normed = self.norm2(tokens)
        height, width = size
        attns = (self.attn2_0, self.attn2_1, self.attn2_2)
        convs = (self.zero_conv_full, self.zero_conv_face, self.zero_conv_lip)
        region_outputs = []
        for attn, conv, mask in zip(attns, convs, masks, strict=True):
            region = attn(normed, audio_tokens) * mask[:, :, None].to(normed.dtype)
            grid = rearrange(region, "b (h w) c -> b c h w", h=height, w=width)
            region_outputs.append(rearrange(conv(grid), "b c h w -> b (h w) c"))
        # Hallo's order of summation (float rounding): w0 a0 + w1 a1 + w2 a2 + tokens.
        added = (
            weights[0] * region_outputs[0]
            + weights[1] * region_outputs[1]
            + weights[2] * region_outputs[2]
            + tokens
        )
        out: torch.Tensor = added + self.ff(self.norm3(added))
        return out


class MaskedAudioModule(nn.Module):
    """GroupNorm, 1x1 ``proj_in``, a :class:`MaskedAudioBlock`, 1x1 ``proj_out``, residual.

    Parameters
    ----------
    channels
        Channels ``C`` of the feature map it reads and writes.
    inner_dim
        Token width ``C_a`` inside (Hallo: :func:`masked_audio_inner_width` of the block's
        input width, which can differ from ``channels``).
    heads
        Attention heads.
    audio_dim
        Width of the audio tokens.
    level
        Pyramid level of the masks this module reads (0 = finest).
    norm_num_groups
        Groups of the input GroupNorm.
    """

    def __init__(
        self,
        channels: int,
        inner_dim: int,
        heads: int,
        audio_dim: int,
        level: int,
        norm_num_groups: int = 32,
    ) -> None:
        super().__init__()
        self.level = level
        self.norm = nn.GroupNorm(norm_num_groups, channels, eps=1e-6, affine=True)
        self.proj_in = Conv2d(channels, inner_dim, kernel_size=1)
        self.transformer_blocks = nn.ModuleList([MaskedAudioBlock(inner_dim, heads, audio_dim)])
        self.proj_out = Conv2d(inner_dim, channels, kernel_size=1)

    def forward(
        self, hidden_states: torch.Tensor, audio_tokens: torch.Tensor, masks: AudioMasks
    ) -> torch.Tensor:
        """Add the region-weighted audio features to a feature map.

        Parameters
        ----------
        hidden_states
            ``((b f), C, h, w)``.
        audio_tokens
            ``((b f), k, d_audio)``: each frame's audio tokens.
        masks
            The mask pyramid; level :attr:`level` must hold ``h * w`` values per frame.

        Returns
        -------
        torch.Tensor
            ``((b f), C, h, w)``.
        """
        total, _, height, width = hidden_states.shape
        level = masks.level(self.level)
        for name, mask in zip(REGIONS, level, strict=True):
            if mask.ndim != 2 or mask.shape[1] != height * width or mask.shape[0] not in (1, total):
                raise InputError(
                    f"MaskedAudioModule: the {name} mask of level {self.level} must be "
                    f"((b f)={total}, h*w={height * width}) for a {height}x{width} feature map, "
                    f"got {tuple(mask.shape)}"
                )
        x = self.proj_in(self.norm(hidden_states))
        tokens = rearrange(x, "b c h w -> b (h w) c")
        block = self.transformer_blocks[0]
        assert isinstance(block, MaskedAudioBlock)
        tokens = block(tokens, audio_tokens, level, masks.weights, (height, width))
        out = self.proj_out(rearrange(tokens, "b (h w) c -> b c h w", h=height, w=width))
        result: torch.Tensor = out + hidden_states
        return result
