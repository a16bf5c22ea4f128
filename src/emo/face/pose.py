"""Head pose (yaw, pitch, roll in degrees) from 2D landmarks and a generic 3D face.

The 3D points of a mean adult face (in millimetres; our own estimate from anthropometric
proportions, 13 points that do not move when the mouth or jaw moves: eyebrows, eye
corners, nose) are fitted to the detected landmarks with OpenCV's ``solvePnP``, with a
pinhole camera whose focal length equals the image's longer side (a 53 degree field of
view, a typical webcam or phone). The rotation is returned as three angles:

- **yaw**: turn about the vertical axis; positive when the face turns towards the image's
  right side (the person's left);
- **pitch**: nod about the horizontal axis; positive when the face looks up;
- **roll**: tilt in the image plane; positive counter-clockwise as the image is viewed
  (the sign of ``cv2.getRotationMatrix2D``'s angle).

All zero is a face looking straight into the camera, upright.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "MODEL_INDICES",
    "MODEL_POINTS",
    "euler_to_matrix",
    "matrix_to_euler",
    "relative_angle",
    "solve_pose",
]

# Landmark indices used for the fit, and their 3D positions: x to the image's right,
# y down, z away from the camera (OpenCV's camera axes for an upright frontal face);
# origin between the eyes.
MODEL_INDICES = np.array([17, 21, 22, 26, 27, 30, 31, 33, 35, 36, 39, 42, 45])
MODEL_POINTS = np.array(
    [
        [-55.0, -22.0, 16.0],  # 17 outer end of the image-left eyebrow
        [-12.0, -25.0, -3.0],  # 21 inner end of the image-left eyebrow
        [12.0, -25.0, -3.0],  # 22 inner end of the image-right eyebrow
        [55.0, -22.0, 16.0],  # 26 outer end of the image-right eyebrow
        [0.0, -2.0, -2.0],  # 27 top of the nose bridge
        [0.0, 36.0, -22.0],  # 30 nose tip
        [-14.0, 44.0, -4.0],  # 31 image-left nostril wing
        [0.0, 47.0, -9.0],  # 33 below the nose tip
        [14.0, 44.0, -4.0],  # 35 image-right nostril wing
        [-45.0, 2.0, 12.0],  # 36 outer corner of the image-left eye
        [-15.0, 2.0, 3.0],  # 39 inner corner of the image-left eye
        [15.0, 2.0, 3.0],  # 42 inner corner of the image-right eye
        [45.0, 2.0, 12.0],  # 45 outer corner of the image-right eye
    ]
)


def _rx(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _ry(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def euler_to_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation matrix ``(3, 3)`` (camera axes: x right, y down, z forward) of a head pose in degrees."""
    y, p, r = np.radians([yaw, pitch, roll])
    # Camera axes turn the other way round from the signs defined in the module docstring.
    matrix: np.ndarray = _rz(-r) @ _ry(-y) @ _rx(-p)
    return matrix


def matrix_to_euler(rotation: np.ndarray) -> tuple[float, float, float]:
    """``(yaw, pitch, roll)`` in degrees of a rotation matrix ``(3, 3)``; inverse of :func:`euler_to_matrix`."""
    m = np.asarray(rotation, dtype=np.float64)
    b = np.arcsin(np.clip(-m[2, 0], -1.0, 1.0))
    a = np.arctan2(m[1, 0], m[0, 0])
    c = np.arctan2(m[2, 1], m[2, 2])
    yaw, pitch, roll = np.degrees([-b, -c, -a])
    return float(yaw), float(pitch), float(roll)


def relative_angle(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Angle in degrees of the rotation that takes pose ``first`` to pose ``second``.

    Parameters
    ----------
    first, second
        ``(..., 3)`` yaw, pitch, roll in degrees.

    Returns
    -------
    numpy.ndarray
        ``(...)`` geodesic angles in ``[0, 180]``; NaN where either pose is NaN.
    """
    a = np.asarray(first, dtype=np.float64).reshape(-1, 3)
    b = np.asarray(second, dtype=np.float64).reshape(-1, 3)
    out = np.full(len(a), np.nan)
    for i, (p, q) in enumerate(zip(a, b, strict=True)):
        if np.isfinite(p).all() and np.isfinite(q).all():
            delta = euler_to_matrix(*q) @ euler_to_matrix(*p).T
            cos = (np.trace(delta) - 1.0) / 2.0
            out[i] = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return out.reshape(np.shape(first)[:-1])


def camera_matrix(height: int, width: int) -> np.ndarray:
    """Pinhole intrinsics ``(3, 3)``: focal length = longer side, principal point = centre."""
    focal = float(max(height, width))
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])


def solve_pose(cv2: Any, landmarks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Fit the 3D face to 68 landmarks; return ``(3,)`` yaw, pitch, roll in degrees.

    Parameters
    ----------
    cv2
        The OpenCV module.
    landmarks
        ``(68, 2)`` points in pixels.
    height, width
        Image size, for the camera model.

    Returns
    -------
    numpy.ndarray
        float32 ``(3,)``; NaN if the fit fails.
    """
    image_points = np.ascontiguousarray(landmarks[MODEL_INDICES], dtype=np.float64)
    camera = camera_matrix(height, width)
    ok, rvec, tvec = cv2.solvePnP(MODEL_POINTS, image_points, camera, None, flags=cv2.SOLVEPNP_EPNP)
    if ok:
        ok, rvec, tvec = cv2.solvePnP(
            MODEL_POINTS,
            image_points,
            camera,
            None,
            rvec=rvec,
            tvec=tvec,
            useExtrinsicGuess=True,
            flags=cv2.SOLVEPNP_ITERATIVE,
        )
    if not ok or float(tvec[2, 0]) <= 0:  # a face behind the camera is a failed fit
        return np.full(3, np.nan, dtype=np.float32)
    rotation, _ = cv2.Rodrigues(rvec)
    return np.array(matrix_to_euler(rotation), dtype=np.float32)
