"""What face analysis returns: per-frame arrays (:class:`FaceTrack`) and one frame (:class:`FaceFrame`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emo.errors import InputError

__all__ = ["FaceFrame", "FaceTrack"]


def _number(value: Any) -> float | None:
    number = float(value)
    return None if math.isnan(number) else round(number, 4)


@dataclass(frozen=True)
class FaceFrame:
    """The face analysis of one frame.

    Attributes
    ----------
    index
        Frame number in the clip.
    found
        Whether a face was found.
    box
        ``(4,)`` x0, y0, x1, y1 in pixels (NaN if no face): the bounding box of the 68
        landmarks (eyebrows to chin) with dlib, the cascade's box with Haar, or the box given.
    score
        Detector confidence (dlib: SVM margin, > 0 is a detection; Haar: NaN).
    landmarks
        ``(68, 2)`` points in pixels (NaN if no face or no landmark model).
    pose
        ``(3,)`` yaw, pitch, roll in degrees (see :mod:`emo.face.pose`).
    mouth_opening
        Inner-lip gap / eye distance (see :func:`emo.face.landmarks.mouth_opening`).
    num_faces
        Faces seen in the frame; the largest one is analysed.
    note
        Why no face was found, or what else to know (``""`` when all is plain).
    """

    index: int
    found: bool
    box: np.ndarray
    score: float
    landmarks: np.ndarray
    pose: np.ndarray
    mouth_opening: float
    num_faces: int
    note: str

    @property
    def yaw(self) -> float:
        """Yaw in degrees (positive: the face turns towards the image's right)."""
        return float(self.pose[0])

    @property
    def pitch(self) -> float:
        """Pitch in degrees (positive: the face looks up)."""
        return float(self.pose[1])

    @property
    def roll(self) -> float:
        """Roll in degrees (positive: counter-clockwise in the image)."""
        return float(self.pose[2])

    def to_dict(self, *, landmarks: bool = False) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes ``None``); with ``landmarks=True`` the 68 points too."""
        out: dict[str, Any] = {
            "frame": self.index,
            "found": self.found,
            "num_faces": self.num_faces,
            "box": [_number(v) for v in self.box] if self.found else None,
            "score": _number(self.score),
            "yaw": _number(self.pose[0]),
            "pitch": _number(self.pose[1]),
            "roll": _number(self.pose[2]),
            "mouth_opening": _number(self.mouth_opening),
        }
        if self.note:
            out["note"] = self.note
        if landmarks:
            has = bool(np.isfinite(self.landmarks).all())
            out["landmarks"] = np.round(self.landmarks, 2).tolist() if has else None
        return out


@dataclass(frozen=True)
class FaceTrack:
    """The face analysis of a clip (or one image, ``f = 1``), as arrays over frames.

    Attributes
    ----------
    found
        bool ``(f,)``.
    boxes
        float32 ``(f, 4)`` x0, y0, x1, y1 in pixels; NaN where no face.
    scores
        float32 ``(f,)`` detector confidence; NaN where no face (or the Haar backend).
    landmarks
        float32 ``(f, 68, 2)`` in pixels; NaN where no face or no landmark model.
    poses
        float32 ``(f, 3)`` yaw, pitch, roll in degrees; NaN where unknown.
    mouth_opening
        float32 ``(f,)`` inner-lip gap / eye distance; NaN where unknown.
    num_faces
        int ``(f,)`` faces seen per frame (the largest is analysed).
    notes
        ``f`` strings: why no face was found in a frame, or ``""``.
    backend
        ``"dlib"`` (landmarks, pose, mouth) or ``"haar"`` (boxes only).
    size
        ``(h, w)`` of the frames.
    fps
        Frame rate when known (videos), else ``None``.
    """

    found: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray
    poses: np.ndarray
    mouth_opening: np.ndarray
    num_faces: np.ndarray
    notes: tuple[str, ...]
    backend: str
    size: tuple[int, int]
    fps: float | None = field(default=None)

    def __len__(self) -> int:
        """Number of frames."""
        return len(self.found)

    def __getitem__(self, index: int) -> FaceFrame:
        """The analysis of frame ``index`` (negative counts from the end)."""
        count = len(self)
        if not -count <= index < count:
            raise IndexError(f"frame {index} out of range for {count} frame(s)")
        i = index % count
        return FaceFrame(
            index=i,
            found=bool(self.found[i]),
            box=self.boxes[i],
            score=float(self.scores[i]),
            landmarks=self.landmarks[i],
            pose=self.poses[i],
            mouth_opening=float(self.mouth_opening[i]),
            num_faces=int(self.num_faces[i]),
            note=self.notes[i],
        )

    def __iter__(self) -> Any:
        """Iterate over :class:`FaceFrame` objects."""
        return (self[i] for i in range(len(self)))

    @property
    def yaw(self) -> np.ndarray:
        """float32 ``(f,)`` yaw in degrees."""
        return self.poses[:, 0]

    @property
    def pitch(self) -> np.ndarray:
        """float32 ``(f,)`` pitch in degrees."""
        return self.poses[:, 1]

    @property
    def roll(self) -> np.ndarray:
        """float32 ``(f,)`` roll in degrees."""
        return self.poses[:, 2]

    @staticmethod
    def concatenate(tracks: list[FaceTrack]) -> FaceTrack:
        """Join the tracks of consecutive chunks of one clip into one track."""
        if not tracks:
            raise InputError("FaceTrack.concatenate needs at least one track")
        first = tracks[0]
        return FaceTrack(
            found=np.concatenate([t.found for t in tracks]),
            boxes=np.concatenate([t.boxes for t in tracks]),
            scores=np.concatenate([t.scores for t in tracks]),
            landmarks=np.concatenate([t.landmarks for t in tracks]),
            poses=np.concatenate([t.poses for t in tracks]),
            mouth_opening=np.concatenate([t.mouth_opening for t in tracks]),
            num_faces=np.concatenate([t.num_faces for t in tracks]),
            notes=tuple(n for t in tracks for n in t.notes),
            backend=first.backend,
            size=first.size,
            fps=first.fps,
        )

    def to_dict(self, *, landmarks: bool = False) -> dict[str, Any]:
        """A JSON-ready dict: backend, size, fps and one entry per frame (see :meth:`FaceFrame.to_dict`)."""
        return {
            "backend": self.backend,
            "height": self.size[0],
            "width": self.size[1],
            "fps": self.fps,
            "frames": [frame.to_dict(landmarks=landmarks) for frame in self],
        }
