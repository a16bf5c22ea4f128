"""Exact alignment between audio samples and video frames.

The convention used by every emo audio encoder:

* video frame ``i`` (counting from 0) **is** audio time ``i / fps`` seconds, i.e. audio
  sample position ``i * sample_rate / fps``;
* a clip of ``n`` samples gets ``num_frames = ceil(n * fps / sample_rate)`` frames, so the
  last frame's time ``(num_frames - 1) / fps`` lies inside the audio and its features
  come from the last audio;
* frame rates are handled as exact fractions (``29.97`` is read as ``30000/1001``), so
  frame counts never suffer from float rounding.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch

from emo.errors import InputError

__all__ = [
    "as_fraction",
    "frame_sample_positions",
    "frame_to_sample",
    "num_video_frames",
    "rounded_frame_samples",
]


def as_fraction(fps: float | int | Fraction) -> Fraction:
    """Return ``fps`` as an exact fraction (floats snap to the nearest ratio with denominator <= 1001).

    Parameters
    ----------
    fps
        Frames per second, positive and finite.

    Raises
    ------
    InputError
        If ``fps`` is not a positive finite number.
    """
    if isinstance(fps, bool) or not isinstance(fps, (int, float, Fraction)):
        raise InputError(f"fps must be a positive number, got {fps!r}")
    if isinstance(fps, float) and not math.isfinite(fps):
        raise InputError(f"fps must be finite, got {fps!r}")
    value = Fraction(fps).limit_denominator(1001) if isinstance(fps, float) else Fraction(fps)
    if value <= 0:
        raise InputError(f"fps must be positive, got {fps!r}")
    return value


def _check_rate(sample_rate: int) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise InputError(f"sample_rate must be a positive int (Hz), got {sample_rate!r}")
    return sample_rate


def num_video_frames(num_samples: int, sample_rate: int, fps: float | Fraction) -> int:
    """Number of video frames for an audio clip: ``ceil(num_samples * fps / sample_rate)``.

    Parameters
    ----------
    num_samples
        Length of the audio in samples (``0`` gives ``0``).
    sample_rate
        Its sample rate in Hz.
    fps
        Video frame rate.

    Returns
    -------
    int
        The frame count; frame ``i`` is audio time ``i / fps``.

    Examples
    --------
    >>> num_video_frames(16000, 16000, 25)
    25
    >>> num_video_frames(16001, 16000, 25)
    26
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 0:
        raise InputError(f"num_samples must be a non-negative int, got {num_samples!r}")
    rate = _check_rate(sample_rate)
    return math.ceil(Fraction(num_samples) * as_fraction(fps) / rate)


def frame_to_sample(frame: int, sample_rate: int, fps: float | Fraction) -> int:
    """First sample at or after the time of video frame ``frame``: ``ceil(frame * sample_rate / fps)``.

    Slicing audio at ``frame_to_sample(a)`` .. ``frame_to_sample(b)`` gives the samples
    of frames ``a .. b-1``; when ``a * sample_rate / fps`` is a whole number the slice
    starts exactly at frame ``a``'s time.

    Parameters
    ----------
    frame
        Video frame index (non-negative).
    sample_rate
        Audio sample rate in Hz.
    fps
        Video frame rate.
    """
    if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
        raise InputError(f"frame must be a non-negative int, got {frame!r}")
    return math.ceil(Fraction(frame) * _check_rate(sample_rate) / as_fraction(fps))


def frame_sample_positions(
    num_frames: int, sample_rate: int, fps: float | Fraction, sub_frames: int = 1
) -> torch.Tensor:
    """Sample positions (float64, fractional) of video frames, optionally subdivided.

    Parameters
    ----------
    num_frames
        Number of video frames ``f``.
    sample_rate
        Audio sample rate in Hz.
    fps
        Video frame rate.
    sub_frames
        ``s`` evenly spaced positions per frame: frame ``i``, step ``j`` is time
        ``(i + j / s) / fps``.

    Returns
    -------
    torch.Tensor
        ``(f, s)`` float64 sample positions, ``position = time * sample_rate``.
    """
    fr = as_fraction(fps)
    rate = _check_rate(sample_rate)
    steps = torch.arange(num_frames * sub_frames, dtype=torch.float64, device="cpu")
    scale = float(Fraction(rate) / (fr * sub_frames))
    return (steps * scale).reshape(num_frames, sub_frames)


def rounded_frame_samples(
    num_frames: int, sample_rate: int, fps: float | Fraction, sub_frames: int = 1
) -> torch.Tensor:
    """Integer sample positions ``round((i + j / s) * sample_rate / fps)`` (ties round up).

    Computed with exact integer arithmetic, so shifting the audio by a whole number
    of samples ``a * sample_rate / fps`` shifts these positions by exactly that much.

    Returns
    -------
    torch.Tensor
        ``(f, s)`` int64 sample positions.
    """
    fr = as_fraction(fps)
    rate = _check_rate(sample_rate)
    steps = torch.arange(num_frames * sub_frames, dtype=torch.int64, device="cpu")
    num = steps * (rate * fr.denominator)
    den = fr.numerator * sub_frames
    return torch.div(2 * num + den, 2 * den, rounding_mode="floor").reshape(num_frames, sub_frames)
