"""Head motion and blinks with known speed: the truth behind EMO's speed layers.

The head turns with an angular velocity whose size is the requested speed
(degrees per frame) and whose direction drifts smoothly, bouncing off pose
limits; the head also translates in step with the rotation. Speed is measured
back as the norm of the per-frame change of (yaw, pitch, roll).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from emo.errors import InputError

__all__ = ["POSE_LIMITS", "HeadMotion", "blinks", "head_motion", "head_offset"]

POSE_LIMITS = (28.0, 12.0, 10.0)  # |yaw|, |pitch|, |roll| in degrees
_TRANSLATION = 0.004  # frame half-widths of translation per degree of yaw/pitch


@dataclasses.dataclass(frozen=True)
class HeadMotion:
    """Per-frame head pose.

    Attributes
    ----------
    pose
        ``(f, 3)`` yaw, pitch, roll in degrees (yaw > 0 turns the nose to image
        right, pitch > 0 lifts it, roll > 0 tilts the head counter-clockwise).
    offset
        ``(f, 2)`` head-centre shift ``(x right, y up)`` in frame half-widths.
    speed
        ``(f,)`` degrees per frame: norm of ``pose[i] - pose[i - 1]`` (frame 0 copies frame 1).
    """

    pose: np.ndarray
    offset: np.ndarray
    speed: np.ndarray


def head_motion(
    seed: int, num_frames: int, speed: float | np.ndarray, *, start: np.ndarray | None = None
) -> HeadMotion:
    """Draw a head trajectory that moves at ``speed`` degrees per frame.

    Parameters
    ----------
    seed
        Non-negative integer; same arguments, same trajectory.
    num_frames
        ``f`` >= 1.
    speed
        Degrees per frame, a number or ``(f,)`` per frame (0 holds the head still).
    start
        ``(3,)`` starting pose in degrees (default: a random pose within half the limits).

    Raises
    ------
    InputError
        On a negative or non-finite speed or a bad frame count.
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise InputError(f"num_frames must be a positive int, got {num_frames!r}")
    speeds = np.broadcast_to(np.asarray(speed, dtype=np.float64), (num_frames,)).copy()
    if not np.isfinite(speeds).all() or (speeds < 0).any():
        raise InputError("speed must be finite and >= 0 degrees per frame")
    rng = np.random.default_rng([seed, 3])
    limits = np.array(POSE_LIMITS)
    pose = np.empty((num_frames, 3))
    current = (
        rng.uniform(-0.5, 0.5, 3) * limits if start is None else np.asarray(start, dtype=np.float64)
    )
    direction = rng.standard_normal(3) * np.array([1.0, 0.7, 0.4])
    direction /= np.linalg.norm(direction)
    for i in range(num_frames):
        if i > 0:
            direction = direction + rng.standard_normal(3) * np.array([0.15, 0.12, 0.06])
            # Bounce off the limits: point the component back inside.
            outside = np.abs(current + direction * speeds[i] * 3) > limits
            direction[outside] = -np.sign(current[outside]) * np.abs(direction[outside])
            direction /= np.linalg.norm(direction)
            step = direction * speeds[i]
            current = np.clip(current + step, -limits, limits)
        pose[i] = current
    diffs = np.linalg.norm(np.diff(pose, axis=0), axis=1)
    measured = np.concatenate([diffs[:1], diffs]) if num_frames > 1 else np.zeros(1)
    return HeadMotion(pose=pose, offset=head_offset(pose), speed=measured)


def head_offset(pose: np.ndarray) -> np.ndarray:
    """Head-centre shift ``(f, 2)`` (frame half-widths) that goes with poses ``(f, 3)``.

    The head translates in step with its yaw and pitch, so translation speed follows
    rotation speed.
    """
    out: np.ndarray = np.asarray(pose, dtype=np.float64)[:, :2] * _TRANSLATION
    return out


def blinks(seed: int, num_frames: int, fps: float) -> np.ndarray:
    """Eyelid closure per frame (0 open, 1 closed): a blink every 2-6 s, about 0.2 s long."""
    rng = np.random.default_rng([seed, 5])
    out = np.zeros(num_frames)
    profile = np.array([0.5, 1.0, 1.0, 0.6, 0.25])
    t = float(rng.uniform(0.5, 3.0)) * fps
    while t < num_frames:
        i = int(t)
        k = min(profile.size, num_frames - i)
        out[i : i + k] = np.maximum(out[i : i + k], profile[:k])
        t += float(rng.uniform(2.0, 6.0)) * fps
    return out
