"""The spectrum an MDX-Net model reads and writes, and the way back to audio.

An MDX-Net model takes ``(b, 4, dim_f, dim_t)``: the STFT of a stereo chunk (centred
frames, reflect padding, periodic Hann window of ``n_fft``), cut to the lowest ``dim_f``
bins, with the real and imaginary parts of each channel side by side on the second axis
(``[left.re, left.im, right.re, right.im]``) and the lowest ``zeroed_bins`` bins set to zero.
It returns a spectrum of the same layout (the vocals); the bins above ``dim_f`` come back as
zeros and the inverse STFT gives ``hop_length * (dim_t - 1)`` samples per channel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from emo.audio.vocals.config import MDXConfig

__all__ = ["from_model_output", "model_window", "to_model_input"]


def model_window(config: MDXConfig) -> torch.Tensor:
    """The periodic Hann window of ``n_fft`` samples, ``(n_fft,)`` float32."""
    return torch.hann_window(config.n_fft, periodic=True, dtype=torch.float32)


def to_model_input(chunks: torch.Tensor, config: MDXConfig, window: torch.Tensor) -> torch.Tensor:
    """The model's input for stereo chunks.

    Parameters
    ----------
    chunks
        ``(b, 2, chunk_size)`` float32 audio at the model's rate.
    config
        The model's settings.
    window
        :func:`model_window` of ``config``.

    Returns
    -------
    torch.Tensor
        ``(b, 4, dim_f, dim_t)`` float32, channels ``(c r)`` with ``r`` = real, imaginary.
    """
    flat = rearrange(chunks, "b c n -> (b c) n")
    spec = torch.stft(
        flat,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        window=window,
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    parts = torch.view_as_real(spec[:, : config.dim_f])  # ((b c), f, t, r)
    out = rearrange(parts, "(b c) f t r -> b (c r) f t", c=2).contiguous()
    out[:, :, : config.zeroed_bins] = 0.0
    return out


def from_model_output(
    spectrum: torch.Tensor, config: MDXConfig, window: torch.Tensor
) -> torch.Tensor:
    """Stereo audio from a spectrum in the model's layout.

    Parameters
    ----------
    spectrum
        ``(b, 4, dim_f, t)`` float32, as :func:`to_model_input` lays it out.
    config
        The model's settings.
    window
        :func:`model_window` of ``config``.

    Returns
    -------
    torch.Tensor
        ``(b, 2, hop_length * (t - 1))`` float32.
    """
    parts = rearrange(spectrum, "b (c r) f t -> (b c) f t r", r=2).contiguous()
    spec = torch.view_as_complex(parts)
    spec = F.pad(spec, (0, 0, 0, config.bins - spec.shape[1]))  # zero bins above dim_f
    audio = torch.istft(
        spec, n_fft=config.n_fft, hop_length=config.hop_length, window=window, center=True
    )
    return rearrange(audio, "(b c) n -> b c n", c=2)
