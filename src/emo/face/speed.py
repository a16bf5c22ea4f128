"""Head rotation speed per frame, the signal EMO's speed layers are trained on.

The paper defines the speed of frame ``t`` as the head rotation between consecutive
frames, from a per-frame head pose. emo computes it as follows (the paper gives no
details):

1. poses of frames without a face are filled by linear interpolation (held at the ends);
2. each angle is unwrapped (no jump at +-180 degrees), passed through a running median of
   ``outlier_window`` frames (a pose fit that jumps away for a frame or two is an outlier, not
   motion; the median leaves steady motion as it is) and smoothed with a Gaussian of
   ``smoothing`` frames (landmark jitter otherwise reads as motion);
3. the speed of frame ``t`` is half the angle of the rotation from pose ``t - 1`` to pose
   ``t + 1`` (a central difference; one-sided at the ends), so it is the geodesic angle,
   independent of how the rotation splits into yaw, pitch and roll;
4. it is rescaled from the clip's frame rate to ``reference_fps``: degrees per frame of a
   ``reference_fps`` video (30, the paper's training frame rate), so clips at 25 and 60 fps
   give comparable numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emo.errors import InputError
from emo.face.pose import relative_angle
from emo.face.result import FaceTrack

__all__ = ["fill_missing", "head_speed", "running_median", "smooth"]


def fill_missing(values: np.ndarray) -> np.ndarray:
    """Fill NaN rows of ``(f, k)`` values by linear interpolation over frames (held at the ends).

    Rows with any NaN count as missing. All rows missing: returned unchanged (all NaN).
    """
    out: np.ndarray = np.asarray(values, dtype=np.float64).copy()
    good = np.isfinite(out).all(axis=1)
    if good.all() or not good.any():
        return out
    frames = np.arange(len(out))
    for k in range(out.shape[1]):
        out[:, k] = np.interp(frames, frames[good], out[good, k])
    return out


def running_median(values: np.ndarray, window: int) -> np.ndarray:
    """Running median of ``(f, k)`` values over ``window`` frames (odd; the ends repeat the edge values)."""
    out: np.ndarray = np.asarray(values, dtype=np.float64)
    if window <= 1 or len(out) < 3:
        return np.array(out, copy=True)
    radius = window // 2
    padded = np.pad(out, ((radius, radius), (0, 0)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1, axis=0)
    result: np.ndarray = np.median(windows, axis=-1)
    return result


def smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of ``(f, k)`` values along frames; ``sigma`` in frames."""
    out: np.ndarray = np.asarray(values, dtype=np.float64)
    if sigma <= 0 or len(out) < 2:
        return np.array(out, copy=True)
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    # Odd reflection continues a steady motion through the ends (plain reflection would stop it).
    padded = np.pad(out, ((radius, radius), (0, 0)), mode="reflect", reflect_type="odd")
    return np.stack(
        [np.convolve(padded[:, k], kernel, mode="valid") for k in range(out.shape[1])], axis=1
    )


def head_speed(
    poses: FaceTrack | Any,
    *,
    fps: float | None = None,
    reference_fps: float = 30.0,
    smoothing: float = 1.5,
    outlier_window: int = 5,
) -> np.ndarray:
    """Head rotation speed per frame, in degrees per frame at ``reference_fps``.

    Parameters
    ----------
    poses
        A :class:`~emo.face.FaceTrack`, or yaw, pitch, roll in degrees ``(f, 3)`` (NaN
        rows for frames without a face).
    fps
        Frame rate of the clip; taken from the track when it has one.
    reference_fps
        Frame rate the speed is expressed at (degrees per frame of a video at this rate).
    smoothing
        Standard deviation, in frames of the clip, of the Gaussian that smooths the poses
        before differencing; ``0`` switches smoothing off. 1.5 frames removes most landmark
        jitter and keeps motions that last longer than about a tenth of a second (at 30 fps).
    outlier_window
        Frames of the running median applied before smoothing (odd; ``1`` switches it off).
        5 removes fits that jump away for one or two frames.

    Returns
    -------
    numpy.ndarray
        float32 ``(f,)`` degrees per reference frame, >= 0; all NaN if no frame has a pose;
        zeros for a single frame.

    Raises
    ------
    InputError
        If the poses are not ``(f, 3)``, the frame rate is missing or not positive.

    Examples
    --------
    ::

        track = FaceAnalyzer().analyze_video("clip.mp4")
        speed = head_speed(track)          # (f,) degrees per frame at 30 fps
    """
    if isinstance(poses, FaceTrack):
        fps = poses.fps if fps is None else fps
        array = np.asarray(poses.poses, dtype=np.float64)
    else:
        try:
            array = np.asarray(poses, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"poses must be numbers (f, 3) yaw, pitch, roll, got {type(poses).__name__}"
            ) from exc
    if array.ndim != 2 or array.shape[1] != 3:
        raise InputError(
            f"poses must have shape (f, 3) (yaw, pitch, roll in degrees), got {array.shape}"
        )
    if fps is None:
        raise InputError("head_speed needs the clip's frame rate: pass fps=... (frames per second)")
    for label, rate in (("fps", fps), ("reference_fps", reference_fps)):
        if (
            isinstance(rate, bool)
            or not isinstance(rate, (int, float))
            or not np.isfinite(rate)
            or rate <= 0
        ):
            raise InputError(f"{label} must be a positive number, got {rate!r}")
    if (
        isinstance(outlier_window, bool)
        or not isinstance(outlier_window, int)
        or outlier_window < 1
        or outlier_window % 2 == 0
    ):
        raise InputError(f"outlier_window must be an odd int >= 1 (frames), got {outlier_window!r}")
    if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not smoothing >= 0:
        raise InputError(f"smoothing must be a number >= 0 (frames), got {smoothing!r}")
    count = len(array)
    if count == 0:
        return np.zeros(0, dtype=np.float32)
    if not np.isfinite(array).all(axis=1).any():
        return np.full(count, np.nan, dtype=np.float32)
    if count == 1:
        return np.zeros(1, dtype=np.float32)
    filled = fill_missing(array)
    unwrapped = np.unwrap(filled, period=360.0, axis=0)
    smoothed = smooth(running_median(unwrapped, outlier_window), float(smoothing))
    before = np.concatenate([smoothed[:1], smoothed[:-1]])
    after = np.concatenate([smoothed[1:], smoothed[-1:]])
    steps = np.full(count, 2.0)
    steps[0] = steps[-1] = 1.0
    per_frame = relative_angle(before, after) / steps
    speed: np.ndarray = (per_frame * (float(fps) / float(reference_fps))).astype(np.float32)
    return speed
