"""Measurements of a (generated) talking-head video, for benchmarks.

- **mouth opening per frame** (:func:`emo.face.landmarks.mouth_opening`), to compare with
  the audio's loudness or the ground truth;
- **head velocity**: mean and variance of the per-frame head rotation speed
  (:func:`emo.face.head_speed`, degrees per frame at 30 fps), the numbers of the paper's
  speed-layer ablation;
- **face-box stability**: mean IoU of the face boxes of consecutive frames (1 = the box does
  not move) and box jitter (mean size of the second difference of the box centre, in units
  of the box size: smooth motion gives about 0, flicker a lot);
- **identity similarity** of each frame's face to a reference portrait: cosine similarity of
  dlib's 128-D face descriptors (:mod:`emo.face.identity`), averaged over up to
  ``identity_frames`` frames spread over the clip.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from emo.errors import InputError
from emo.face._frames import as_rgb_frames
from emo.face.analyzer import FaceAnalyzer
from emo.face.identity import FaceEmbedder, cosine_similarity
from emo.face.result import FaceTrack
from emo.face.speed import head_speed

__all__ = ["VideoFaceMetrics", "box_iou", "box_jitter", "measure_video"]


def box_iou(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """IoU of boxes ``(..., 4)`` x0, y0, x1, y1 and ``(..., 4)`` -> ``(...)`` (NaN where a box is NaN)."""
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(inter / union)


def box_jitter(boxes: np.ndarray) -> float:
    """Mean norm of the second difference of the box centre, divided by the box size.

    Constant-velocity motion of the face gives 0; a box that jumps back and forth gives
    values near its jump size. NaN with fewer than three consecutive boxes.
    """
    b = np.asarray(boxes, dtype=np.float64)
    centre = (b[:, :2] + b[:, 2:]) / 2.0
    size = np.sqrt(np.clip((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 0, None))
    if len(b) < 3:
        return float("nan")
    second = centre[2:] - 2 * centre[1:-1] + centre[:-2]
    values = np.linalg.norm(second, axis=1) / size[1:-1]
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


def _nan_to_none(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 5)


@dataclass(frozen=True)
class VideoFaceMetrics:
    """Face measurements of one video (see :mod:`emo.face.metrics`).

    Attributes
    ----------
    track
        The per-frame analysis.
    mouth_opening
        float32 ``(f,)``.
    head_speed
        float32 ``(f,)`` degrees per frame at ``reference_fps``.
    head_velocity_mean, head_velocity_var
        Mean and variance of ``head_speed`` over frames with a face.
    box_iou
        Mean IoU of consecutive face boxes.
    box_jitter
        See :func:`box_jitter`.
    face_ratio
        Fraction of frames with a face.
    identity_similarity
        Mean cosine similarity to the reference (``None`` without a reference).
    identity_distance
        Mean Euclidean descriptor distance to the reference; dlib's rule: < 0.6 is the same person.
    """

    track: FaceTrack
    mouth_opening: np.ndarray
    head_speed: np.ndarray
    head_velocity_mean: float
    head_velocity_var: float
    box_iou: float
    box_jitter: float
    face_ratio: float
    identity_similarity: float | None
    identity_distance: float | None

    def summary(self) -> dict[str, Any]:
        """The scalar measurements as a JSON-ready dict (NaN becomes ``None``)."""
        return {
            "frames": len(self.track),
            "face_ratio": _nan_to_none(self.face_ratio),
            "mouth_opening_mean": _nan_to_none(float(np.nanmean(self.mouth_opening)))
            if np.isfinite(self.mouth_opening).any()
            else None,
            "head_velocity_mean": _nan_to_none(self.head_velocity_mean),
            "head_velocity_var": _nan_to_none(self.head_velocity_var),
            "box_iou": _nan_to_none(self.box_iou),
            "box_jitter": _nan_to_none(self.box_jitter),
            "identity_similarity": None
            if self.identity_similarity is None
            else _nan_to_none(self.identity_similarity),
            "identity_distance": None
            if self.identity_distance is None
            else _nan_to_none(self.identity_distance),
        }


def measure_video(
    video: Any,
    *,
    reference: Any = None,
    fps: float | None = None,
    reference_fps: float = 30.0,
    identity_frames: int = 8,
    analyzer: FaceAnalyzer | None = None,
) -> VideoFaceMetrics:
    """Measure the face in a video: mouth opening, head velocity, box stability, identity.

    Parameters
    ----------
    video
        A video file path, or uint8 frames ``(f, h, w, 3)`` (numpy or torch).
    reference
        The reference portrait (uint8 ``(h, w, 3)`` or a path to an image) for identity
        similarity; ``None`` skips it.
    fps
        Frame rate of ``video`` (read from a file; required for frames).
    reference_fps
        Frame rate the head speed is expressed at (see :func:`emo.face.head_speed`).
    identity_frames
        Frames (evenly spread) compared with the reference; the descriptor costs about
        0.15 s a face on one core.
    analyzer
        The analyzer to use (default: a new one with the best backend installed).

    Returns
    -------
    VideoFaceMetrics

    Raises
    ------
    InputError
        For frames without ``fps``, a bad ``identity_frames``, or a reference without a face.
    """
    analyzer = analyzer if analyzer is not None else FaceAnalyzer()
    frames: np.ndarray | None = None
    if isinstance(video, (str, os.PathLike)):
        track = analyzer.analyze_video(video)
    else:
        if fps is None:
            raise InputError(
                "measure_video needs fps=... when given frames (it is read from a file)"
            )
        frames = as_rgb_frames(video, name="video frames")
        track = analyzer.analyze(frames, fps=fps)
    if (
        isinstance(identity_frames, bool)
        or not isinstance(identity_frames, int)
        or identity_frames < 1
    ):
        raise InputError(f"identity_frames must be a positive int, got {identity_frames!r}")
    rate = fps if fps is not None else track.fps
    speed = head_speed(track, fps=rate, reference_fps=reference_fps)
    with_face = track.found & np.isfinite(speed)
    if with_face.any():
        velocity_mean = float(speed[with_face].mean())
        velocity_var = float(speed[with_face].var())
    else:
        velocity_mean = velocity_var = float("nan")
    ious = box_iou(track.boxes[:-1], track.boxes[1:])
    ious = ious[np.isfinite(ious)]
    similarity = distance = None
    if reference is not None:
        similarity, distance = _identity(reference, video, frames, track, identity_frames, analyzer)
    return VideoFaceMetrics(
        track=track,
        mouth_opening=track.mouth_opening,
        head_speed=speed,
        head_velocity_mean=velocity_mean,
        head_velocity_var=velocity_var,
        box_iou=float(ious.mean()) if len(ious) else float("nan"),
        box_jitter=box_jitter(track.boxes),
        face_ratio=float(track.found.mean()),
        identity_similarity=similarity,
        identity_distance=distance,
    )


def _identity(
    reference: Any,
    video: Any,
    frames: np.ndarray | None,
    track: FaceTrack,
    count: int,
    analyzer: FaceAnalyzer,
) -> tuple[float, float]:
    """Mean cosine similarity and Euclidean distance of sampled frames' faces to the reference's."""
    from emo.io.image import load_image

    embedder = FaceEmbedder(analyzer)
    image = load_image(reference) if isinstance(reference, (str, os.PathLike)) else reference
    anchor = embedder.embed_one(as_rgb_frames(image, name="reference")[0])
    candidates = np.flatnonzero(track.found & np.isfinite(track.landmarks).all(axis=(1, 2)))
    if len(candidates) == 0:
        return float("nan"), float("nan")
    picked = candidates[
        np.unique(
            np.linspace(0, len(candidates) - 1, min(count, len(candidates))).round().astype(int)
        )
    ]
    vectors = []
    for index in picked:
        if frames is not None:
            frame = frames[index]
        else:
            from emo.io.reader import VideoReader

            with VideoReader(video, threads=False) as reader:
                frame = reader.read(int(index), 1)[0].numpy()
        vectors.append(embedder.embed_landmarks(frame, track.landmarks[index].astype(np.float64)))
    stacked = np.stack(vectors)
    similarity = float(cosine_similarity(stacked, anchor[None]).mean())
    distance = float(np.linalg.norm(stacked - anchor[None], axis=1).mean())
    return similarity, distance
