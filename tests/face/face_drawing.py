"""Test images for the face tests: a real photograph, turned copies and a cartoon face drawn with OpenCV."""

from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("dlib")
data = pytest.importorskip("skimage.data")


def astronaut() -> np.ndarray:
    """scikit-image's astronaut (Eileen Collins, NASA, public domain), uint8 (512, 512, 3)."""
    return np.asarray(data.astronaut())


def turn(image: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate an image counter-clockwise about its centre (same size, black corners)."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return np.asarray(cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR))


def cartoon_face(size: int = 512, mouth: float = 0.5) -> np.ndarray:
    """A flat cartoon head: skin ellipse, hair, white eyes with pupils, brows, a nose stroke, a mouth.

    ``mouth`` in [0, 1] opens the mouth from closed to 30 px half-height (of a 512 px drawing);
    the eye centres are 110 px apart, so the true inner-lip gap / eye distance is about
    ``mouth * 60 / 110`` minus the lip ring.
    """
    image = np.full((512, 512, 3), (70, 110, 160), np.uint8)
    c = 256
    aa = cv2.LINE_AA
    cv2.ellipse(image, (c, c + 10), (130, 170), 0, 0, 360, (235, 190, 160), -1, aa)
    cv2.ellipse(image, (c, c - 120), (140, 90), 0, 180, 360, (60, 40, 30), -1, aa)
    for ex in (-55, 55):
        cv2.ellipse(image, (c + ex, c - 20), (26, 14), 0, 0, 360, (255, 255, 255), -1, aa)
        cv2.circle(image, (c + ex, c - 20), 9, (40, 30, 20), -1, aa)
        cv2.line(image, (c + ex - 28, c - 50), (c + ex + 28, c - 55), (60, 40, 30), 6, aa)
    cv2.line(image, (c, c - 10), (c - 10, c + 45), (180, 130, 110), 4, aa)
    cv2.line(image, (c - 10, c + 45), (c + 8, c + 48), (180, 130, 110), 4, aa)
    half = max(2, round(30 * mouth))
    cv2.ellipse(image, (c, c + 95), (45, half), 0, 0, 360, (120, 30, 40), -1, aa)
    cv2.ellipse(image, (c, c + 95), (45, half), 0, 0, 360, (200, 80, 90), 5, aa)
    if size != 512:
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return image
