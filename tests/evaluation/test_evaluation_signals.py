"""Benchmark arithmetic on arrays: correlation, offsets, seams, loudness."""

from __future__ import annotations

import numpy as np
import pytest

from emo.audio.envelope import loudness_envelope
from emo.errors import InputError
from emo.evaluation import lip_sync, pearson, seam_jump


def _smooth_noise(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.convolve(rng.standard_normal(n + 8), np.ones(5) / 5, mode="valid")[:n]


def test_pearson_values_nan_frames_and_degenerate_signals() -> None:
    a = _smooth_noise(100, 0)
    assert pearson(a, 3 * a + 1) == pytest.approx(1.0)
    assert pearson(a, -a) == pytest.approx(-1.0)
    assert pearson(a, np.full(100, 0.4)) == 0.0  # a frozen mouth follows nothing
    holes = a.copy()
    holes[::3] = np.nan
    assert pearson(holes, 2 * a) == pytest.approx(1.0)
    assert np.isnan(pearson(a[:5], a[:5]))
    assert abs(pearson(a, _smooth_noise(100, 1))) < 0.3
    with pytest.raises(InputError, match="length"):
        pearson(a, a[:50])


@pytest.mark.parametrize("k", [-4, -1, 0, 2, 5])
def test_offset_is_the_shift_of_the_reference(k: int) -> None:
    signal = _smooth_noise(140, 2)
    reference = signal[10:130]
    measured = signal[10 + k : 130 + k]  # measured[t] = reference[t + k]: the sound comes k late
    sync = lip_sync(measured, reference, max_offset=8)
    assert sync.offset == k
    assert sync.peak_correlation == pytest.approx(1.0)
    if k != 0:
        assert sync.correlation < 0.95


def test_seam_jump_finds_jumps_at_clip_boundaries() -> None:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 150, (1, 16, 16, 3))
    drift = np.arange(48)[:, None, None, None] * 2
    smooth = np.clip(base + drift, 0, 255).astype(np.uint8)
    jumps = smooth.copy()
    for start in range(12, 48, 12):
        jumps[start:] = np.clip(jumps[start:].astype(int) + 10, 0, 255).astype(np.uint8)
    assert seam_jump(jumps, 12).ratio > 5
    assert seam_jump(smooth, 12).ratio == pytest.approx(1.0, abs=0.3)
    assert np.isnan(seam_jump(smooth[:10], 12).ratio)  # one clip: no seam
    with pytest.raises(InputError, match="frames_per_clip"):
        seam_jump(smooth, 1)


def test_loudness_envelope_is_rms_per_frame_window() -> None:
    sr, fps = 16000, 25
    t = np.arange(sr) / sr
    audio = np.where(t < 0.5, 0.6 * np.sin(2 * np.pi * 200 * t), 0.0)
    loud = loudness_envelope(audio, sr, fps, 30)
    assert loud.shape == (30,)
    np.testing.assert_allclose(loud[:12], 0.6 / np.sqrt(2), rtol=1e-3)
    np.testing.assert_allclose(loud[13:25], 0.0, atol=1e-12)
    np.testing.assert_allclose(loud[25:], 0.0)  # past the end of the audio
    with pytest.raises(InputError, match="mono"):
        loudness_envelope(np.zeros((2, 10)), sr, fps, 3)
