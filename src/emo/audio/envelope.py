"""Loudness per video frame: the envelope lip sync is measured against.

Frame ``i`` owns the audio of ``[i / fps, (i + 1) / fps)``, the convention of
:mod:`emo.audio.alignment`; frames past the end of the audio get 0.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from emo.errors import InputError

__all__ = ["loudness_envelope"]


def loudness_envelope(
    waveform: np.ndarray, sample_rate: int, fps: float | Fraction, num_frames: int
) -> np.ndarray:
    """Root-mean-square amplitude of the audio under each video frame.

    Parameters
    ----------
    waveform
        ``(samples,)`` mono audio (any float dtype).
    sample_rate
        Audio sample rate in Hz.
    fps
        Video frame rate.
    num_frames
        Number of video frames ``f``.

    Returns
    -------
    numpy.ndarray
        ``(f,)`` float64 RMS per frame.

    Raises
    ------
    InputError
        If the waveform is not 1-D or the rates are not positive.
    """
    audio = np.asarray(waveform, dtype=np.float64)
    if audio.ndim != 1:
        raise InputError(f"waveform must be mono (samples,), got shape {audio.shape}")
    if sample_rate <= 0 or float(fps) <= 0 or num_frames < 0:
        raise InputError(
            f"sample_rate and fps must be positive and num_frames >= 0, got "
            f"{sample_rate}, {fps}, {num_frames}"
        )
    step = Fraction(sample_rate) / Fraction(fps).limit_denominator(1_000_000)
    edges = np.array([round(i * step) for i in range(num_frames + 1)], dtype=np.int64)
    edges = np.minimum(edges, audio.shape[0])
    power = np.concatenate([[0.0], np.cumsum(audio * audio)])
    counts = np.maximum(edges[1:] - edges[:-1], 1)
    energy = power[edges[1:]] - power[edges[:-1]]
    rms: np.ndarray = np.sqrt(np.maximum(energy, 0.0) / counts)
    return rms
