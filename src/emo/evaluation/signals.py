"""The arithmetic of the benchmark, on plain arrays: correlation, offset, seam jumps.

Every function takes per-frame signals, ignores frames marked NaN (no face found)
and never raises on a degenerate signal: a constant signal correlates 0 with
anything (it cannot follow the audio), too few frames give NaN.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from emo._deprecation import renamed_arguments
from emo.errors import InputError

__all__ = [
    "LipSync",
    "SeamJump",
    "frame_differences",
    "lag_correlations",
    "lip_sync",
    "pearson",
    "seam_jump",
]

_MIN_FRAMES = 8  # fewer overlapping valid frames than this: no correlation (NaN)


def _signal(values: np.ndarray, name: str) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64)
    if out.ndim != 1:
        raise InputError(f"{name} must be one value per frame (f,), got shape {out.shape}")
    return out


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two ``(f,)`` signals over the frames where both are finite.

    Returns 0 when either is constant there, NaN with fewer than 8 such frames.
    """
    x, y = _signal(a, "a"), _signal(b, "b")
    if x.shape != y.shape:
        raise InputError(f"signals differ in length: {x.shape[0]} and {y.shape[0]} frames")
    valid = np.isfinite(x) & np.isfinite(y)
    if valid.sum() < _MIN_FRAMES:
        return float("nan")
    x, y = x[valid] - x[valid].mean(), y[valid] - y[valid].mean()
    norm = float(np.sqrt((x * x).sum() * (y * y).sum()))
    if norm < 1e-12:
        return 0.0
    return float((x * y).sum() / norm)


def lag_correlations(
    measured: np.ndarray, reference: np.ndarray, max_offset: int
) -> tuple[np.ndarray, np.ndarray]:
    """Correlation of ``measured[t]`` with ``reference[t + k]`` for ``k`` in ``[-max_offset, max_offset]``.

    Returns
    -------
    tuple of numpy.ndarray
        ``offsets`` ``(2 m + 1,)`` int and ``correlations`` ``(2 m + 1,)`` float (NaN where
        the overlap is too short).
    """
    m, r = _signal(measured, "measured"), _signal(reference, "reference")
    if m.shape != r.shape:
        raise InputError(f"signals differ in length: {m.shape[0]} and {r.shape[0]} frames")
    if isinstance(max_offset, bool) or not isinstance(max_offset, int) or max_offset < 0:
        raise InputError(f"max_offset must be an int >= 0 frames, got {max_offset!r}")
    offsets = np.arange(-max_offset, max_offset + 1)
    f = m.shape[0]
    corrs = np.full(offsets.shape, np.nan)
    for i, k in enumerate(offsets):
        if abs(k) >= f:
            continue
        if k >= 0:
            corrs[i] = pearson(m[: f - k], r[k:])
        else:
            corrs[i] = pearson(m[-k:], r[: f + k])
    return offsets, corrs


@dataclasses.dataclass(frozen=True)
class LipSync:
    """Lip sync of one video against one reference signal.

    Attributes
    ----------
    correlation
        Pearson correlation at zero offset (1: the mouth follows the reference exactly).
    offset
        Frames ``k`` where the correlation of ``measured[t]`` with ``reference[t + k]``
        peaks: ``k > 0`` means the sound comes ``k`` frames after the mouth (audio late),
        ``k < 0`` the mouth moves after the sound (video late). 0 when in sync.
    peak_correlation
        The correlation at that offset.
    """

    correlation: float
    offset: int
    peak_correlation: float


def lip_sync(measured: np.ndarray, reference: np.ndarray, *, max_offset: int = 10) -> LipSync:
    """Score a measured mouth opening against a reference (truth or loudness), both ``(f,)``.

    Ties in the peak go to the offset nearest 0.
    """
    offsets, corrs = lag_correlations(measured, reference, max_offset)
    zero = float(corrs[max_offset]) if corrs.size else float("nan")
    if not np.isfinite(corrs).any():
        return LipSync(zero, 0, float("nan"))
    scores = np.where(np.isfinite(corrs), corrs, -np.inf)
    best = float(scores.max())
    candidates = offsets[scores >= best - 1e-12]
    offset = int(candidates[np.argmin(np.abs(candidates))])
    return LipSync(zero, offset, best)


def frame_differences(frames: np.ndarray) -> np.ndarray:
    """Mean absolute change per pixel from each frame to the next, ``(f - 1,)``, in [0, 255] units."""
    video = np.asarray(frames)
    if video.ndim != 4 or video.shape[0] < 2:
        raise InputError(f"frames must be (f >= 2, h, w, c), got shape {video.shape}")
    out = np.empty(video.shape[0] - 1)
    for t in range(video.shape[0] - 1):  # one pair at a time: no (f, h, w, c) float copy
        out[t] = np.abs(video[t + 1].astype(np.float32) - video[t].astype(np.float32)).mean()
    return out


@dataclasses.dataclass(frozen=True)
class SeamJump:
    """Frame-to-frame change at clip seams against the change inside clips.

    Attributes
    ----------
    seam
        Mean change across the seams (frame ``k L - 1`` to ``k L``).
    within
        Mean change between frames of the same clip.
    ratio
        ``seam / within``: about 1 for seamless video, well above 1 when clips jump.
    """

    seam: float
    within: float
    ratio: float


@renamed_arguments(clip_length="frames_per_clip")
def seam_jump(frames: np.ndarray, frames_per_clip: int) -> SeamJump:
    """Compare frame differences at the seams of ``frames_per_clip``-frame clips with the rest.

    NaN fields when the video has no seam (one clip) or no change inside clips.
    """
    if (
        isinstance(frames_per_clip, bool)
        or not isinstance(frames_per_clip, int)
        or frames_per_clip < 2
    ):
        raise InputError(f"frames_per_clip must be an int >= 2 frames, got {frames_per_clip!r}")
    diffs = frame_differences(frames)
    at_seam = (np.arange(diffs.shape[0]) + 1) % frames_per_clip == 0
    if not at_seam.any() or at_seam.all():
        return SeamJump(float("nan"), float(diffs.mean()), float("nan"))
    seam, within = float(diffs[at_seam].mean()), float(diffs[~at_seam].mean())
    return SeamJump(seam, within, seam / within if within > 0 else float("nan"))
