"""The 68-point landmark layout (iBUG 300-W, as dlib numbers it) and what is measured on it.

=========  ===========================================
indices    part (left/right as seen in the image)
=========  ===========================================
0-16       jaw line, image-left ear to image-right ear
17-21      image-left eyebrow
22-26      image-right eyebrow
27-30      nose bridge, top to tip
31-35      nostrils, left to right
36-41      image-left eye
42-47      image-right eye
48-59      outer lip contour, from the left corner
60-67      inner lip contour, from the left corner
=========  ===========================================
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "INNER_LIP",
    "LEFT_EYE",
    "NUM_LANDMARKS",
    "RIGHT_EYE",
    "eye_distance",
    "mouth_opening",
]

NUM_LANDMARKS = 68
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)
INNER_LIP = slice(60, 68)
# Upper and lower inner-lip points facing each other: (61, 67), (62, 66), (63, 65).
_UPPER_LIP = [61, 62, 63]
_LOWER_LIP = [67, 66, 65]


def eye_distance(landmarks: np.ndarray) -> np.ndarray:
    """Distance between the two eye centres, in pixels: landmarks ``(..., 68, 2)`` -> ``(...)``."""
    left = landmarks[..., LEFT_EYE, :].mean(axis=-2)
    right = landmarks[..., RIGHT_EYE, :].mean(axis=-2)
    return np.asarray(np.linalg.norm(right - left, axis=-1))


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Mouth-opening ratio: the inner-lip gap divided by the distance between the eye centres.

    The gap is the mean distance of the three facing pairs of inner-lip points. Dividing
    by the eye distance (not the mouth width, which changes when the lips round or stretch)
    makes the ratio independent of the face's size in the image. A closed mouth gives
    about 0, speech about 0.05-0.3, a wide-open mouth (singing) 0.4 and more.

    Parameters
    ----------
    landmarks
        ``(..., 68, 2)`` points in pixels.

    Returns
    -------
    numpy.ndarray
        float32 ``(...)``; NaN where the landmarks are NaN.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    gap = np.linalg.norm(points[..., _UPPER_LIP, :] - points[..., _LOWER_LIP, :], axis=-1)
    distance = eye_distance(points)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = gap.mean(axis=-1) / distance
    return np.where(distance > 0, ratio, np.nan).astype(np.float32)
