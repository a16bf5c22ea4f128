"""Five-point face alignment geometry: the ArcFace template and the similarity fit to it.

insightface aligns a face for its recognition models by the similarity transform (rotation,
uniform scale, translation; no reflection, no shear) that maps the detector's five keypoints
(left eye, right eye, nose tip, left and right mouth corners, in image pixels) closest, in
the least-squares sense, to five fixed points of a 112x112 crop (``arcface_dst`` of
``insightface/utils/face_align.py``). The fit is Umeyama's (Umeyama 1991, "Least-squares
estimation of transformation parameters between two point patterns", eqs. 34-43), which
insightface takes from scikit-image's ``SimilarityTransform.estimate``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ARCFACE_TEMPLATE", "arcface_template", "similarity_transform"]

#: The five ArcFace reference points ``(5, 2)`` (x, y) in a 112x112 crop: left eye, right
#: eye, nose tip, left and right mouth corners (insightface's ``arcface_dst``, float32).
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
ARCFACE_TEMPLATE.setflags(write=False)


def arcface_template(size: int) -> np.ndarray:
    """The five reference points ``(5, 2)`` float32 for a ``size`` x ``size`` crop.

    A multiple of 112 scales the 112-pixel template; a multiple of 128 scales it by
    ``size / 128`` and shifts it right by ``8 * size / 128`` (the 112 template centred in a
    128 crop), as insightface's ``estimate_norm`` does.

    Raises
    ------
    ValueError
        If ``size`` is a multiple of neither 112 nor 128.
    """
    if size > 0 and size % 112 == 0:
        return np.asarray(ARCFACE_TEMPLATE * np.float32(size / 112.0), dtype=np.float32)
    if size > 0 and size % 128 == 0:
        ratio = size / 128.0
        points = ARCFACE_TEMPLATE * np.float32(ratio)
        points[:, 0] += np.float32(8.0 * ratio)
        return np.asarray(points, dtype=np.float32)
    raise ValueError(f"an ArcFace crop is 112*k or 128*k pixels wide, got {size}")


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The least-squares similarity transform ``(2, 3)`` that maps ``source`` onto ``target``.

    Parameters
    ----------
    source, target
        Corresponding points ``(n, 2)`` (x, y), ``n >= 2``.

    Returns
    -------
    numpy.ndarray
        float64 ``(2, 3)`` matrix ``[s R | t]`` with ``R`` a rotation (``det R = +1``) and
        ``s >= 0``, minimising ``sum_i |target_i - (s R source_i + t)|^2``; apply it as
        ``target ~ M[:, :2] @ p + M[:, 2]``.

    Notes
    -----
    Umeyama's solution, in float64: with the centred point sets ``x`` (source) and ``y``
    (target) and ``A = y^T x / n = U S V^T``, the rotation is ``U D V^T`` with
    ``D = diag(1, sign(det U det V))`` (so ``R`` is never a reflection), the scale
    ``trace(S D) / var(x)`` and the translation ``mean(y) - s R mean(x)``. For full-rank ``A``
    the sign equals that of ``det A``, Umeyama's own rule; for collinear points it picks the
    proper rotation as scikit-image does. insightface calls scikit-image with the float32
    keypoints, so its matrix is computed partly in float32 and differs from this one in the
    seventh significant digit.

    Raises
    ------
    ValueError
        If the shapes differ, there are fewer than 2 points, or ``source`` has no spread
        (all points equal).
    """
    x = np.asarray(source, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2 or x.shape != y.shape or x.shape[0] < 2:
        raise ValueError(
            f"similarity_transform takes two (n, 2) point sets with n >= 2, got {x.shape} and {y.shape}"
        )
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - x_mean, y - y_mean
    variance = float((xc**2).sum(axis=1).mean())
    if variance == 0.0:
        raise ValueError("similarity_transform: the source points are all equal")
    cross = yc.T @ xc / x.shape[0]
    u, singular, vt = np.linalg.svd(cross)
    signs = np.array([1.0, 1.0 if np.linalg.det(u) * np.linalg.det(vt) > 0 else -1.0])
    rotation = u @ np.diag(signs) @ vt
    scale = float(singular @ signs) / variance
    matrix = np.empty((2, 3), dtype=np.float64)
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = y_mean - scale * (rotation @ x_mean)
    return matrix
