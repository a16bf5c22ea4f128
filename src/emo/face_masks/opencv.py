"""Automatic face masks from a face detector (the ``face`` extra).

With ``emo[face]`` installed the detector is dlib's trained HOG face detector with a search
over scales and in-plane rotations (see :class:`emo.face.FaceAnalyzer`): it finds drawn,
painted, tilted and upside-down faces. Without dlib, OpenCV's frontal-face Haar cascade
(shipped inside ``opencv-python-headless`` 4.x) is the fallback. Nothing is downloaded.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from emo.errors import EMOWarning, FaceNotFoundError, InputError
from emo.face.haar import HaarDetector, import_cv2
from emo.face_masks.base import FaceMaskBase, as_frames

__all__ = ["AutoFaceMask", "import_cv2"]

_DETECTORS = ("auto", "dlib", "haar")


class AutoFaceMask(FaceMaskBase):
    """Detect the face in every frame (name ``auto``).

    With several faces in a frame the largest wins (with dlib, in a clip: the one that
    overlaps the previous frame's face, so the region follows one person) and an
    :class:`~emo.errors.EMOWarning` says so. Frames of a clip where no face is found take
    the box of the nearest frame that has one.

    Parameters
    ----------
    padding
        Ratio the detected box grows by on every side. The detector's box spans
        eyebrows to chin (dlib) or eyebrows to mouth (Haar); the default ``0.25`` (1.5x the
        box) takes in the forehead and some head motion, a sensible face region for a
        talking head.
    union
        See :class:`~emo.face_masks.base.FaceMaskBase`.
    detector
        ``"dlib"`` (trained detector of ``emo[face]``, with scale and rotation search),
        ``"haar"`` (OpenCV's cascade: upright frontal faces only), or ``"auto"``
        (default): dlib when installed, else Haar.
    scale_factor, min_neighbors, min_size, max_side
        The Haar cascade's settings, as in :class:`emo.face.haar.HaarDetector`
        (Haar only; the dlib detector has its own search).

    Raises
    ------
    PluginLoadError
        On construction, if OpenCV is missing: ``pip install "emo[face]"``.
    """

    name = "auto"
    description = "automatic face box from a trained face detector (extra: emo[face])"

    def __init__(
        self,
        padding: float = 0.25,
        union: bool = True,
        detector: str = "auto",
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
        if detector not in _DETECTORS:
            raise InputError(f"detector must be one of {', '.join(_DETECTORS)}, got {detector!r}")
        self.detector = detector
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = float(min_size)
        self.max_side = int(max_side)
        self._analyzer: Any = None
        self._haar: HaarDetector | None = None
        self._backend()  # fail now, not at the first frame, if the packages are missing

    def _backend(self) -> Any:
        """The detector (built once per instance, and again after unpickling)."""
        if self._analyzer is None and self._haar is None:
            from emo.face.analyzer import FaceAnalyzer, available_backend

            backend = available_backend() if self.detector == "auto" else self.detector
            if backend == "dlib":
                self._analyzer = FaceAnalyzer("dlib")
            else:
                self._haar = HaarDetector(
                    self.scale_factor, self.min_neighbors, self.min_size, self.max_side
                )
        return self._analyzer if self._analyzer is not None else self._haar

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the detector (it is rebuilt on first use)."""
        state = self.__dict__.copy()
        state["_analyzer"] = None
        state["_haar"] = None
        return state

    def _detect(
        self, frame: np.ndarray, previous: np.ndarray | None = None
    ) -> tuple[np.ndarray, int]:
        """Return the face ``(4,)`` of one frame (or an empty array) and the face count.

        The largest face; with dlib, in a clip, the one overlapping ``previous`` (the face
        box of the frame before) when there is one, so the region follows one person.
        """
        backend = self._backend()
        if isinstance(backend, HaarDetector):
            faces = backend.detect(frame)
            if len(faces) == 0:
                return np.zeros(0), 0
            areas = (faces[:, 2] - faces[:, 0]) * (faces[:, 3] - faces[:, 1])
            return faces[int(np.argmax(areas))], len(faces)
        face, count, _ = backend.analyze_frame(frame, previous=previous)
        if face is None:
            return np.zeros(0), 0
        return np.asarray(face.box, dtype=np.float64), count

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
        previous: np.ndarray | None = None
        for frame in array:
            box, count = self._detect(frame, previous)
            found.append(box if count else None)
            previous = box if count else previous
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
