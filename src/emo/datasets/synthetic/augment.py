"""Audio augmentation for training speech: EQ, reverberation, resampling, noise and gain.

:func:`augment_audio` applies a random chain to a mono track and returns a track of the
same length and sample rate, so the phone timing (and the mouth truth made from it) stays
valid; the same seed always gives the same samples. Every step is numpy (resampling goes
through :func:`emo.audio.resampling.resample`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from emo.errors import InputError

__all__ = ["AugmentSettings", "augment_audio"]


@dataclasses.dataclass(frozen=True)
class AugmentSettings:
    """How likely each step is and how strong it may be.

    Attributes
    ----------
    eq, reverb, resample, noise
        Probability of each step.
    eq_db
        The EQ curve's largest boost or cut, dB.
    rt60
        Reverberation time range, seconds.
    resample_rates
        Rates a track may be resampled through (down, then back up), Hz.
    snr_db
        Noise level range: signal-to-noise ratio of the speech's RMS, dB.
    gain_db
        Gain range, dB (the peak is then limited to 0.99).
    """

    eq: float = 0.5
    reverb: float = 0.4
    resample: float = 0.3
    noise: float = 0.5
    eq_db: float = 9.0
    rt60: tuple[float, float] = (0.15, 0.7)
    resample_rates: tuple[int, ...] = (8000, 11025, 12000)
    snr_db: tuple[float, float] = (8.0, 35.0)
    gain_db: tuple[float, float] = (-14.0, 4.0)


def _eq(x: np.ndarray, sr: int, rng: np.random.Generator, top_db: float) -> dict[str, Any]:
    """A smooth random gain curve over log frequency (a few bands, interpolated)."""
    bands = np.geomspace(80.0, sr / 2, 6)
    gains = rng.uniform(-top_db, top_db, bands.size)
    spec = np.fft.rfft(x)
    freqs = np.maximum(np.fft.rfftfreq(x.size, 1.0 / sr), 1.0)
    curve = np.interp(np.log(freqs), np.log(bands), gains)
    x[:] = np.fft.irfft(spec * 10.0 ** (curve / 20.0), x.size)
    return {"eq_db": np.round(gains, 2).tolist()}


def _reverb(
    x: np.ndarray, sr: int, rng: np.random.Generator, rt60: tuple[float, float]
) -> dict[str, Any]:
    """Convolution with a synthetic room: direct path plus exponentially decaying noise."""
    t60 = float(rng.uniform(*rt60))
    wet = float(rng.uniform(0.15, 0.6))
    length = int(t60 * sr)
    t = np.arange(length) / sr
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / t60)
    tail[: int(0.004 * sr)] = 0.0  # the first reflections arrive after a few ms
    tail *= wet / max(float(np.sqrt(np.sum(tail**2))), 1e-9)
    ir = np.concatenate([[1.0], tail[1:]])
    size = 1 << int(np.ceil(np.log2(x.size + length)))
    out = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(ir, size), size)[: x.size]
    x[:] = out
    return {"rt60": round(t60, 3), "wet": round(wet, 3)}


def _resample(
    x: np.ndarray, sr: int, rng: np.random.Generator, rates: tuple[int, ...]
) -> dict[str, Any]:
    """Down to a lower rate and back: the band limit of a cheap recording."""
    import torch

    from emo.audio.resampling import resample

    low = int(rng.choice(np.array(rates)))
    if low >= sr:
        return {}
    down = resample(torch.from_numpy(x.astype(np.float32)), sr, low)
    up = resample(down, low, sr).numpy().astype(np.float64)
    n = min(up.size, x.size)
    x[:n] = up[:n]
    x[n:] = 0.0
    return {"through_rate": low}


def _noise(x: np.ndarray, rng: np.random.Generator, snr_db: tuple[float, float]) -> dict[str, Any]:
    """White, pink or brown noise at a signal-to-noise ratio of the speech's loud part."""
    colour = str(rng.choice(["white", "pink", "brown"]))
    noise = rng.standard_normal(x.size)
    if colour != "white":
        spec = np.fft.rfft(noise)
        f = np.maximum(np.arange(spec.size), 1.0)
        spec /= f ** (0.5 if colour == "pink" else 1.0)
        noise = np.fft.irfft(spec, x.size)
    loud = np.abs(x) > 0.05 * max(float(np.abs(x).max()), 1e-9)
    signal_rms = float(np.sqrt(np.mean(x[loud] ** 2))) if loud.any() else 0.0
    snr = float(rng.uniform(*snr_db))
    noise *= signal_rms / 10.0 ** (snr / 20.0) / max(float(np.sqrt(np.mean(noise**2))), 1e-12)
    x += noise
    return {"noise": colour, "snr_db": round(snr, 1)}


def augment_audio(
    waveform: np.ndarray,
    sample_rate: int,
    seed: int,
    settings: AugmentSettings | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """A randomly degraded copy of ``waveform``: same length, same rate.

    The steps run in a fixed order, each with its probability: EQ, reverberation (the
    tail is cut at the track's end), resampling through a lower rate, noise, then a gain
    (always) and a peak limit at 0.99.

    Parameters
    ----------
    waveform
        ``(samples,)`` float mono.
    sample_rate
        Hz.
    seed
        Non-negative int; the same seed gives the same samples.
    settings
        Probabilities and ranges (:class:`AugmentSettings` by default).

    Returns
    -------
    tuple
        float32 ``(samples,)`` and a JSON-ready record of the steps taken.

    Raises
    ------
    InputError
        On a waveform that is not 1-D or a bad seed.
    """
    x = np.asarray(waveform, dtype=np.float64)
    if x.ndim != 1:
        raise InputError(f"augment_audio needs a (samples,) waveform, got shape {x.shape}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"augmentation seed must be a non-negative int, got {seed!r}")
    s = settings or AugmentSettings()
    rng = np.random.default_rng([seed, 31])
    x = x.copy()
    record: dict[str, Any] = {}
    if x.size and rng.uniform() < s.eq:
        record.update(_eq(x, sample_rate, rng, s.eq_db))
    if x.size and rng.uniform() < s.reverb:
        record.update(_reverb(x, sample_rate, rng, s.rt60))
    if x.size and rng.uniform() < s.resample:
        record.update(_resample(x, sample_rate, rng, s.resample_rates))
    if x.size and rng.uniform() < s.noise:
        record.update(_noise(x, rng, s.snr_db))
    gain = float(rng.uniform(*s.gain_db))
    x *= 10.0 ** (gain / 20.0)
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > 0.99:
        x *= 0.99 / peak
    record["gain_db"] = round(gain, 2)
    return x.astype(np.float32), record
