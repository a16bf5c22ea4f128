"""Hallo's face and lip boxes from face landmarks: the landmark subsets and the box rule.

Hallo (``hallo/utils/util.py``) takes two subsets of MediaPipe's 478-point face mesh: the
36-point face oval (``silhouette_ids``) and the 20-point outer lip contour (``lip_ids``).
Each box is the bounding box of its subset, corners rounded to whole pixels, grown about
its centre (x1.2 for the face, x2.0 for the lips) and shifted back inside the image.

emo's own landmarks are dlib's 68 points (:mod:`emo.face`). Their equivalents:

=================  ==========================  =======================================
Hallo (MediaPipe)  dlib 68                     how close (measured, see the guide)
=================  ==========================  =======================================
lip_ids            48-59 (outer lip contour)   the same contour
silhouette_ids     jaw 0-16 + brows 17-26 +    jaw = the oval's sides and chin; dlib has
                   the brows raised by 0.16 x  no forehead points, so the oval's top is
                   (brow centre - chin)        estimated (``forehead``)
=================  ==========================  =======================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from emo.errors import FaceNotFoundError, InputError

__all__ = [
    "DLIB_68",
    "MEDIAPIPE_478",
    "Box",
    "LandmarkSubsets",
    "expand_box",
    "hallo_boxes",
    "landmark_box",
]

Box = tuple[int, int, int, int]
"""``(x0, y0, x1, y1)`` in whole pixels, ``x1`` and ``y1`` exclusive."""

# MediaPipe face-mesh indices, as Hallo lists them (hallo/utils/util.py).
_MEDIAPIPE_SILHOUETTE = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288,
    397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136,
    172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
_MEDIAPIPE_LIPS = (
    61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291,
    146, 91, 181, 84, 17, 314, 405, 321, 375,
)  # fmt: skip


@dataclass(frozen=True)
class LandmarkSubsets:
    """Which landmarks outline the face and the lips in one landmark layout.

    Parameters
    ----------
    name
        The layout's name, for messages.
    num_points
        Points per face in this layout.
    silhouette
        Indices whose bounding box is the face (before expansion).
    lips
        Indices whose bounding box is the lips (before expansion).
    brows, chin, forehead
        For layouts without forehead points (dlib): the ``brows`` are also added raised
        towards the top of the head by ``forehead`` times the distance from the chin point
        ``chin`` to the brows' centre. ``forehead = 0`` adds nothing.
    """

    name: str
    num_points: int
    silhouette: tuple[int, ...]
    lips: tuple[int, ...]
    brows: tuple[int, ...] = ()
    chin: int | None = None
    forehead: float = 0.0

    def face_points(self, landmarks: np.ndarray) -> np.ndarray:
        """The points whose box is the face: float64 ``(n, 2)`` from landmarks ``(num_points, 2)``."""
        points = landmarks[list(self.silhouette)]
        if self.forehead and self.brows and self.chin is not None:
            brows = landmarks[list(self.brows)]
            up = brows.mean(axis=0) - landmarks[self.chin]
            points = np.concatenate([points, brows + self.forehead * up])
        return np.asarray(points, dtype=np.float64)

    def lip_points(self, landmarks: np.ndarray) -> np.ndarray:
        """The points whose box is the lips: float64 ``(n, 2)``."""
        return np.asarray(landmarks[list(self.lips)], dtype=np.float64)


MEDIAPIPE_478 = LandmarkSubsets(
    name="MediaPipe 478-point face mesh",
    num_points=478,
    silhouette=_MEDIAPIPE_SILHOUETTE,
    lips=_MEDIAPIPE_LIPS,
)
"""Hallo's own subsets of the MediaPipe face mesh (468 points or 478 with the irises)."""

DLIB_68 = LandmarkSubsets(
    name="dlib 68-point layout",
    num_points=68,
    silhouette=tuple(range(0, 27)),
    lips=tuple(range(48, 60)),
    brows=tuple(range(17, 27)),
    chin=8,
    forehead=0.16,
)
"""emo's mapping for dlib's 68 points: jaw and brows plus an estimated forehead; outer lips."""


def _as_landmarks(landmarks: Any, subsets: LandmarkSubsets) -> np.ndarray:
    """Validate landmarks ``(n, 2)`` in pixels -> float64 ``(n, 2)``."""
    try:
        points = np.asarray(
            landmarks.detach().cpu().numpy() if hasattr(landmarks, "detach") else landmarks,
            dtype=np.float64,
        )
    except (TypeError, ValueError) as exc:
        raise InputError(f"landmarks must be numbers (x, y) in pixels: {exc}") from exc
    if points.ndim != 2 or points.shape[1] != 2:
        raise InputError(f"landmarks must have shape (points, 2) as (x, y), got {points.shape}")
    if points.shape[0] < subsets.num_points:
        raise InputError(
            f"the {subsets.name} needs {subsets.num_points} landmarks, got {points.shape[0]}; "
            "pass subsets= for another layout"
        )
    used = [*subsets.silhouette, *subsets.lips, *subsets.brows]
    if subsets.chin is not None:
        used.append(subsets.chin)
    if not np.isfinite(points[used]).all():
        raise FaceNotFoundError(
            "the landmarks hold NaN or infinite values (no face was found in that frame); "
            "give the landmarks of a frame with a face, or pass the boxes yourself"
        )
    return points


def landmark_box(points: np.ndarray) -> tuple[float, float, float, float]:
    """Bounding box of points ``(n, 2)``, corners rounded half to even: ``(x0, x1, y0, y1)`` floats."""
    low = np.round(points.min(axis=0))
    high = np.round(points.max(axis=0))
    return float(low[0]), float(high[0]), float(low[1]), float(high[1])


def expand_box(
    region: tuple[float, float, float, float], width: int, height: int, ratio: float
) -> Box:
    """Grow a box about its centre by ``ratio`` and shift it back inside the image.

    Hallo's rule: centre ``(lo + hi) // 2`` and half side ``(hi - lo) * ratio // 2`` (floor
    divisions), then a box sticking out on one side is shifted inwards; corners are
    rounded half to even.

    Parameters
    ----------
    region
        ``(x0, x1, y0, y1)`` in pixels (note the order, Hallo's).
    width, height
        The image size in pixels.
    ratio
        Growth factor of each side.

    Returns
    -------
    Box
        ``(x0, y0, x1, y1)``, clipped to the image. Hallo does not clip: where the grown box
        is larger than the image its corner goes negative and its mask, made by slicing,
        wraps around to the far side (a bug); emo keeps the part inside the image.
    """
    x0, x1, y0, y1 = region

    def axis(lo: float, hi: float, size: int) -> tuple[float, float]:
        mid = (hi + lo) // 2
        half = ((hi - lo) * ratio) // 2
        lo, hi = mid - half, mid + half
        if lo < 0:
            hi -= lo
            lo = 0
        if hi > size:
            lo -= hi - size
            hi = size
        return lo, hi

    x0, x1 = axis(x0, x1, width)
    y0, y1 = axis(y0, y1, height)
    corners = [round(x0), round(y0), round(x1), round(y1)]
    return (
        min(max(corners[0], 0), width),
        min(max(corners[1], 0), height),
        min(max(corners[2], 0), width),
        min(max(corners[3], 0), height),
    )


def hallo_boxes(
    landmarks: Any,
    image_size: tuple[int, int],
    *,
    subsets: LandmarkSubsets = MEDIAPIPE_478,
    face_expand_ratio: float = 1.2,
    lip_expand_ratio: float = 2.0,
) -> tuple[Box, Box]:
    """Hallo's face box and lip box from one face's landmarks.

    Parameters
    ----------
    landmarks
        ``(n, 2)`` points ``(x, y)`` in pixels of the image (numpy or torch).
    image_size
        ``(height, width)`` of the image the landmarks belong to.
    subsets
        The landmark layout: :data:`MEDIAPIPE_478` (Hallo's, exact) or :data:`DLIB_68`.
    face_expand_ratio, lip_expand_ratio
        Growth of each box's sides (Hallo: 1.2, its ``face_expand_ratio`` setting, and 2.0).

    Returns
    -------
    tuple[Box, Box]
        ``(face_box, lip_box)``, each ``(x0, y0, x1, y1)`` in whole pixels, end exclusive.

    Raises
    ------
    InputError
        For a wrong shape, too few points, or a box that misses the image (landmarks in
        another image's pixels, or normalised to ``[0, 1]``).
    FaceNotFoundError
        When the landmarks used are NaN (no face).
    """
    height, width = (int(v) for v in image_size)
    if height < 1 or width < 1:
        raise InputError(f"image_size must be positive (height, width), got {image_size!r}")
    for name, ratio in (
        ("face_expand_ratio", face_expand_ratio),
        ("lip_expand_ratio", lip_expand_ratio),
    ):
        if not np.isfinite(ratio) or ratio <= 0:
            raise InputError(f"{name} must be a positive number, got {ratio!r}")
    points = _as_landmarks(landmarks, subsets)
    boxes = []
    for part, chosen, ratio in (
        ("face", subsets.face_points(points), face_expand_ratio),
        ("lip", subsets.lip_points(points), lip_expand_ratio),
    ):
        region = landmark_box(chosen)
        x0, x1, y0, y1 = region
        if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
            raise InputError(
                f"the {part} landmarks span x {x0:g}..{x1:g}, y {y0:g}..{y1:g}, outside the "
                f"{width}x{height} image; landmarks must be pixels of this image"
            )
        box = expand_box(region, width, height, ratio)
        if box[2] <= box[0] or box[3] <= box[1]:
            raise InputError(
                f"the {part} landmarks span x {x0:g}..{x1:g}, y {y0:g}..{y1:g}: an empty box "
                f"in the {width}x{height} image; landmarks must be in pixels (not normalised "
                "to [0, 1]) of one face"
            )
        boxes.append(box)
    return boxes[0], boxes[1]
