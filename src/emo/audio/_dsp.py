"""Private signal helpers shared by the audio encoders."""

from __future__ import annotations

import math

import torch

__all__ = ["hz_to_mel", "linear_interpolate", "mel_filterbank", "mel_to_hz", "take"]


def take(x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Return ``x[start:stop]`` along the last axis, zero-filled where outside ``[0, len)``."""
    n = x.shape[-1]
    lo, hi = max(start, 0), min(stop, n)
    if lo >= hi:
        return x.new_zeros((*x.shape[:-1], stop - start))
    part = x[..., lo:hi]
    if start < 0 or stop > n:
        part = torch.nn.functional.pad(part, (lo - start, stop - hi))
    return part


def hz_to_mel(freq: torch.Tensor) -> torch.Tensor:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    linear = freq / f_sp
    log = min_log_mel + torch.log(torch.clamp(freq, min=1e-10) / min_log_hz) / logstep
    return torch.where(freq >= min_log_hz, log, linear)


def mel_to_hz(mels: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`."""
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    linear = f_sp * mels
    log = min_log_hz * torch.exp(logstep * (mels - min_log_mel))
    return torch.where(mels >= min_log_mel, log, linear)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Slaney-normalised triangular mel filters.

    Returns
    -------
    torch.Tensor
        ``(n_fft // 2 + 1, n_mels)`` float32 matrix; ``power_spectrum @ filters`` is the
        mel spectrum.
    """
    top = sample_rate / 2 if f_max is None else f_max
    fft_freqs = torch.linspace(
        0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64, device="cpu"
    )
    mel_pts = torch.linspace(
        float(hz_to_mel(torch.tensor(f_min, dtype=torch.float64, device="cpu"))),
        float(hz_to_mel(torch.tensor(top, dtype=torch.float64, device="cpu"))),
        n_mels + 2,
        dtype=torch.float64,
        device="cpu",
    )
    hz_pts = mel_to_hz(mel_pts)
    diff = hz_pts[1:] - hz_pts[:-1]
    slopes = hz_pts[None, :] - fft_freqs[:, None]  # (bins, n_mels + 2)
    down = -slopes[:, :-2] / diff[:-1]
    up = slopes[:, 2:] / diff[1:]
    filters = torch.clamp(torch.minimum(down, up), min=0)
    enorm = 2.0 / (hz_pts[2:] - hz_pts[:-2])
    return (filters * enorm[None, :]).to(torch.float32)


def linear_interpolate(features: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Sample ``features`` at fractional indices, clamped to the valid range.

    Parameters
    ----------
    features
        ``(t, ...)`` features on a regular grid.
    positions
        ``(f,)`` float64 fractional indices into the first axis.

    Returns
    -------
    torch.Tensor
        ``(f, ...)``: ``(1 - w) * features[floor(p)] + w * features[floor(p) + 1]``.
    """
    t = features.shape[0]
    p = positions.clamp(0, t - 1)
    lo = p.floor().long().clamp(max=t - 1)
    hi = (lo + 1).clamp(max=t - 1)
    device = features.device
    w = (p - lo.to(p.dtype)).to(device=device, dtype=features.dtype)
    w = w.reshape(-1, *([1] * (features.dim() - 1)))
    return features[lo.to(device)] * (1 - w) + features[hi.to(device)] * w
