"""Timestep embeddings of the UNet family (sinusoidal projection + MLP)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TimestepEmbedding", "Timesteps", "timestep_embedding"]


def timestep_embedding(
    timesteps: torch.Tensor,
    dim: int,
    *,
    flip_sin_to_cos: bool = True,
    freq_shift: float = 0.0,
    max_period: float = 10000.0,
) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) diffusion timesteps.

    Frequencies are ``max_period ** (-i / (dim // 2 - freq_shift))``; the output
    holds ``[sin, cos]`` of ``t * freq`` (``[cos, sin]`` with ``flip_sin_to_cos``),
    zero-padded by one column when ``dim`` is odd.

    Parameters
    ----------
    timesteps
        Timesteps ``(b,)``.
    dim
        Embedding width.
    flip_sin_to_cos
        Put the cosines first (the Stable Diffusion convention).
    freq_shift
        Shift of the frequency denominator (0 for Stable Diffusion).
    max_period
        Longest period of the sinusoids.

    Returns
    -------
    torch.Tensor
        ``(b, dim)`` in float32.
    """
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(
        half, dtype=torch.float32, device=timesteps.device
    )
    freqs = torch.exp(exponent / (half - freq_shift))
    args = timesteps.float()[:, None] * freqs[None, :]
    sin, cos = torch.sin(args), torch.cos(args)
    emb = torch.cat([cos, sin] if flip_sin_to_cos else [sin, cos], dim=-1)
    if dim % 2 == 1:
        emb = F.pad(emb, (0, 1))
    return emb


class Timesteps(nn.Module):
    """Parameter-free module wrapping :func:`timestep_embedding`.

    Parameters
    ----------
    dim
        Embedding width.
    flip_sin_to_cos
        Put the cosines first.
    freq_shift
        Shift of the frequency denominator.
    """

    def __init__(self, dim: int, flip_sin_to_cos: bool = True, freq_shift: float = 0.0) -> None:
        super().__init__()
        self.dim = dim
        self.flip_sin_to_cos = flip_sin_to_cos
        self.freq_shift = freq_shift

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        """Embed timesteps ``(b,)`` into ``(b, dim)`` (float32)."""
        return timestep_embedding(
            timesteps, self.dim, flip_sin_to_cos=self.flip_sin_to_cos, freq_shift=self.freq_shift
        )


class TimestepEmbedding(nn.Module):
    """Two-layer SiLU MLP (``linear_1``, ``linear_2``) on a sinusoidal timestep embedding.

    Parameters
    ----------
    in_channels
        Width of the sinusoidal embedding.
    time_embed_dim
        Width of the hidden layer and of the output.
    """

    def __init__(self, in_channels: int, time_embed_dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, time_embed_dim)
        self.linear_2 = nn.Linear(time_embed_dim, time_embed_dim)

    def forward(self, sample: torch.Tensor) -> torch.Tensor:
        """Map ``(b, in_channels)`` to ``(b, time_embed_dim)``."""
        out: torch.Tensor = self.linear_2(F.silu(self.linear_1(sample)))
        return out
