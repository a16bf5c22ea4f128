"""OpenCV's frontal-face Haar cascade: the fallback detector (boxes only, no landmarks).

The cascade file ships inside ``opencv-python-headless`` 4.x (``cv2.data.haarcascades``),
so nothing is downloaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emo.errors import PluginLoadError

__all__ = ["HaarDetector", "import_cv2"]

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
            "face detection needs OpenCV, which is not installed; run "
            "`pip install \"emo[face]\"` (opencv-python-headless 4.x), or use the 'box' "
            "or 'full' face mask"
        ) from exc
    if getattr(getattr(cv2, "data", None), "haarcascades", None) is None:
        raise PluginLoadError(
            f"the installed OpenCV {getattr(cv2, '__version__', '?')} ships no Haar cascades; "
            'run `pip install "emo[face]"` to get opencv-python-headless 4.x'
        )
    return cv2


class HaarDetector:
    """The frontal-face Haar cascade with its scan settings.

    Parameters
    ----------
    scale_factor
        Cascade pyramid step (``> 1``); smaller is slower and finds more.
    min_neighbors
        Detections a face needs to be kept; larger means fewer false positives.
    min_size
        Smallest face, as a fraction of the frame's shorter side.
    max_side
        Frames are downscaled to at most this many pixels on the longer side.
    """

    def __init__(
        self,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: float = 0.08,
        max_side: int = 640,
    ) -> None:
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = float(min_size)
        self.max_side = int(max_side)
        self._cascade: Any = None
        self.classifier()  # fail now, not at the first frame, if OpenCV is missing

    def classifier(self) -> Any:
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

    def detect(self, frame: np.ndarray) -> np.ndarray:
        """Return every face of one uint8 RGB frame ``(h, w, 3)`` as ``(n, 4)`` boxes x0, y0, x1, y1."""
        cv2 = import_cv2()
        cascade = self.classifier()
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
        faces: np.ndarray = np.asarray(found, dtype=np.float64).reshape(-1, 4) / scale
        faces[:, 2:] += faces[:, :2]
        return faces
