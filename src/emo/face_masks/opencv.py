"""Automatic face masks from OpenCV's bundled frontal-face Haar cascade (the ``face`` extra).

The cascade file ships inside ``opencv-python-headless`` 4.x (``cv2.data.haarcascades``),
so nothing is downloaded. Install it with ``pip install "emo[face]"``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from emo.errors import EMOWarning, FaceNotFoundError, InputError, PluginLoadError
from emo.face_masks.base import FaceMaskBase, as_frames

__all__ = ["AutoFaceMask", "import_cv2"]

_CASCADE = "haarcascade_frontalface_default.xml"


def import_cv2() -> Any:
    """Import and return OpenCV, or raise an emo error that says how to install it.

    Raises
    ------
    PluginLoadError
        If ``cv2`` is not installed, or has no bundled Haar cascades (OpenCV 5).
    """
    try:
        import cv2
    except ImportError as exc:
        raise PluginLoadError(
            "the 'auto' face mask needs OpenCV, which is not installed; run "
            "`pip install \"emo[face]\"` (opencv-python-headless 4.x), or use the 'box' "
            "or 'full' face mask"
        ) from exc
    if getattr(getattr(cv2, "data", None), "haarcascades", None) is None:
        raise PluginLoadError(
            f"the installed OpenCV {getattr(cv2, '__version__', '?')} ships no Haar cascades; "
            'run `pip install "emo[face]"` to get opencv-python-headless 4.x'
        )
    return cv2


class AutoFaceMask(FaceMaskBase):
    """Detect the face in every frame with OpenCV's frontal-face Haar cascade (name ``auto``).

    Frames are scanned in grayscale, downscaled so the longer side is at most
    ``max_side`` pixels. With several faces in a frame the largest wins and an
    :class:`~emo.errors.EMOWarning` says so. Frames of a clip where no face is found
    take the box of the nearest frame that has one.

    Parameters
    ----------
    padding
        Ratio the detected box grows by on every side. The cascade's box spans
        eyebrows to mouth; the default ``0.25`` (1.5x the box) takes in the chin,
        forehead and some head motion, a sensible face region for a talking head.
    union
        See :class:`~emo.face_masks.base.FaceMaskBase`.
    scale_factor
        Cascade pyramid step (``> 1``); smaller is slower and finds more.
    min_neighbors
        Detections a face needs to be kept; larger means fewer false positives.
    min_size
        Smallest face, as a fraction of the frame's shorter side.
    max_side
        Frames are downscaled to at most this many pixels on the longer side.

    Raises
    ------
    PluginLoadError
        On construction, if OpenCV is missing: ``pip install "emo[face]"``.
    """

    name = "auto"
    description = "automatic face box from OpenCV's bundled Haar cascade (extra: emo[face])"

    def __init__(
        self,
        padding: float = 0.25,
        union: bool = True,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: float = 0.08,
        max_side: int = 640,
    ) -> None:
        super().__init__(padding=padding, union=union)
        for label, value in (
            ("scale_factor", scale_factor),
            ("min_neighbors", min_neighbors),
            ("min_size", min_size),
            ("max_side", max_side),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"{label} must be a number, got {value!r}")
        if not scale_factor > 1.0:
            raise InputError(f"scale_factor must be > 1, got {scale_factor!r}")
        if not 0.0 < min_size < 1.0:
            raise InputError(f"min_size is a fraction of the frame in (0, 1), got {min_size!r}")
        if int(min_neighbors) < 0 or int(max_side) < 32:
            raise InputError("min_neighbors must be >= 0 and max_side >= 32")
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = float(min_size)
        self.max_side = int(max_side)
        self._cascade: Any = None
        self._classifier()  # fail now, not at the first frame, if OpenCV is missing

    def _classifier(self) -> Any:
        """The cascade classifier, loaded once per instance (and again after unpickling)."""
        if self._cascade is None:
            cv2 = import_cv2()
            path = cv2.data.haarcascades + _CASCADE
            cascade = cv2.CascadeClassifier(path)
            if cascade.empty():
                raise PluginLoadError(
                    f"OpenCV could not load its Haar cascade {path!r}; reinstall it"
                )
            self._cascade = cascade
        return self._cascade

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the OpenCV classifier (it is reloaded on first use)."""
        state = self.__dict__.copy()
        state["_cascade"] = None
        return state

    def _detect(self, frame: np.ndarray) -> tuple[np.ndarray, int]:
        """Return the largest face ``(4,)`` of one frame (or an empty array) and the face count."""
        cv2 = import_cv2()
        cascade = self._classifier()
        height, width = frame.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        smallest = max(20, int(self.min_size * min(gray.shape[:2])))
        found = cascade.detectMultiScale(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(smallest, smallest),
        )
        faces = np.asarray(found, dtype=np.float64).reshape(-1, 4)
        if len(faces) == 0:
            return np.zeros(0), 0
        x, y, w, h = faces[int(np.argmax(faces[:, 2] * faces[:, 3]))] / scale
        return np.array([x, y, x + w, y + h]), len(faces)

    def boxes(self, frames: Any) -> torch.Tensor:
        """Detect the face in every frame; return ``(f, 4)`` boxes in pixels (unpadded).

        Raises
        ------
        FaceNotFoundError
            If no frame has a face.
        """
        array = as_frames(frames)
        found: list[np.ndarray | None] = []
        crowded = 0
        for frame in array:
            box, count = self._detect(frame)
            found.append(box if count else None)
            crowded = max(crowded, count)
        hits = [i for i, box in enumerate(found) if box is not None]
        if not hits:
            height, width = array.shape[1:3]
            raise FaceNotFoundError(
                f"the 'auto' face mask found no face in the {len(array)} frame(s) of "
                f"{width}x{height}; give the face region yourself with the 'box' face mask, "
                "e.g. face_mask=BoxMask((x0, y0, x1, y1)), or use the 'full' face mask for a close-up"
            )
        if crowded > 1:
            warnings.warn(
                f"the 'auto' face mask found up to {crowded} faces in a frame and uses the "
                "largest; pass the 'box' face mask to pick another one",
                EMOWarning,
                stacklevel=3,
            )
        result = np.empty((len(array), 4))
        for i in range(len(found)):
            nearest = min(hits, key=lambda j: abs(j - i))
            result[i] = found[nearest]
        return torch.from_numpy(result).to(torch.float32)
