"""``cv2.warpAffine`` (bilinear, constant border) and ``cv2.resize`` of uint8 colour images in numpy.

insightface crops a face with ``cv2.warpAffine(image, M, (112, 112), borderValue=0)`` and
resizes the detector input with ``cv2.resize`` (``INTER_LINEAR``). OpenCV computes both in
fixed point, so a float bilinear sampler differs from it by a grey level here and there. These
functions follow OpenCV's documented integer arithmetic (coordinates in 1/32 pixel, weights
in 1/32768, round half to even where OpenCV's ``saturate_cast`` rounds), so the crops are
OpenCV's bytes with or without OpenCV installed; ``tests/face_insightface/test_warp.py``
compares them with ``cv2`` itself.
"""

from __future__ import annotations

import numpy as np

from emo.face_masks._opencv_exact import resize_linear_u8

__all__ = ["resize_linear_rgb", "warp_affine_linear_u8"]

_INTER_BITS = 5  # OpenCV's INTER_BITS: sub-pixel positions are multiples of 1/32
_TAB = 1 << _INTER_BITS
_AB_BITS = 10  # warpAffine computes source coordinates in 1/1024 pixel first
_AB_SCALE = 1 << _AB_BITS
_ROUND_DELTA = _AB_SCALE // _TAB // 2  # rounds 1/1024 to the nearest 1/32
_COEF_BITS = 15  # INTER_REMAP_COEF_BITS: bilinear weights are multiples of 1/32768


def _invert_affine(matrix: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """The inverse of a forward ``(2, 3)`` map, with OpenCV's order of float64 operations."""
    m0, m1, m2 = (float(v) for v in matrix[0])
    m3, m4, m5 = (float(v) for v in matrix[1])
    det = m0 * m4 - m1 * m3
    det = 1.0 / det if det != 0 else 0.0
    a11, a22 = m4 * det, m0 * det
    m0, m1, m3, m4 = a11, m1 * -det, m3 * -det, a22
    b1 = -m0 * m2 - m1 * m5
    b2 = -m3 * m2 - m4 * m5
    return m0, m1, b1, m3, m4, b2


def warp_affine_linear_u8(
    image: np.ndarray, matrix: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """``cv2.warpAffine(image, matrix, (width, height), borderValue=0)`` of a uint8 image.

    Parameters
    ----------
    image
        uint8 ``(h, w, c)`` (any channel count and order: channels are independent).
    matrix
        ``(2, 3)`` forward map: output pixel ``(u, v)`` shows source point
        ``M^-1 (u, v)``, as OpenCV without ``WARP_INVERSE_MAP``.
    size
        ``(height, width)`` of the result (OpenCV's own argument is ``(width, height)``).

    Returns
    -------
    numpy.ndarray
        uint8 ``(height, width, c)``.

    Notes
    -----
    OpenCV inverts the matrix in float64, steps the source coordinate in units of 1/1024
    pixel (``round(M'[0] x * 1024)`` per column plus ``round((M'[1] y + M'[2]) * 1024) + 16``
    per row, round half to even), keeps 1/32 of a pixel (an arithmetic shift by 5) and blends
    the 2x2 neighbours with weights ``(32 - fx)(32 - fy) * 32`` ... that sum to 32768, adding
    16384 before the final shift by 15. Neighbours outside the image count as 0 (the
    constant border), so a pixel whose four neighbours are all outside is 0.
    """
    src = np.asarray(image)
    if src.dtype != np.uint8 or src.ndim != 3:
        raise ValueError(
            f"warp_affine_linear_u8 takes a uint8 (h, w, c) image, got {src.dtype} {src.shape}"
        )
    forward = np.asarray(matrix, dtype=np.float64)
    if forward.shape != (2, 3):
        raise ValueError(f"warp_affine_linear_u8 takes a (2, 3) matrix, got {forward.shape}")
    height, width = size
    m0, m1, m2, m3, m4, m5 = _invert_affine(forward)
    columns = np.arange(width, dtype=np.float64)
    rows = np.arange(height, dtype=np.float64)
    x_step = np.rint(m0 * columns * _AB_SCALE).astype(np.int64)
    y_step = np.rint(m3 * columns * _AB_SCALE).astype(np.int64)
    x_row = np.rint((m1 * rows + m2) * _AB_SCALE).astype(np.int64) + _ROUND_DELTA
    y_row = np.rint((m4 * rows + m5) * _AB_SCALE).astype(np.int64) + _ROUND_DELTA
    x = (x_row[:, None] + x_step[None, :]) >> (_AB_BITS - _INTER_BITS)
    y = (y_row[:, None] + y_step[None, :]) >> (_AB_BITS - _INTER_BITS)
    x0, fx = x >> _INTER_BITS, x & (_TAB - 1)
    y0, fy = y >> _INTER_BITS, y & (_TAB - 1)

    src_h, src_w = src.shape[:2]
    # The weights are exact products of the 1/32 fractions: (32 - f) * (32 - g) * 32 etc.
    scale = (1 << _COEF_BITS) // (_TAB * _TAB)
    total = np.zeros((height, width, src.shape[2]), dtype=np.int64)
    for dy, wy in ((0, _TAB - fy), (1, fy)):
        for dx, wx in ((0, _TAB - fx), (1, fx)):
            xs, ys = x0 + dx, y0 + dy
            inside = (xs >= 0) & (xs < src_w) & (ys >= 0) & (ys < src_h)
            taps = src[np.clip(ys, 0, src_h - 1), np.clip(xs, 0, src_w - 1)].astype(np.int64)
            total += taps * np.where(inside, wx * wy * scale, 0)[..., None]
    out = (total + (1 << (_COEF_BITS - 1))) >> _COEF_BITS
    return np.asarray(np.clip(out, 0, 255), dtype=np.uint8)


def resize_linear_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``cv2.resize(image, (width, height))`` (``INTER_LINEAR``) of a uint8 ``(h, w, c)`` image.

    OpenCV resizes each channel with the same integer arithmetic, so this applies the
    single-channel replica :func:`emo.face_masks._opencv_exact.resize_linear_u8` channel by
    channel. ``size`` is ``(height, width)``; the result is uint8 ``(height, width, c)``.
    """
    src = np.asarray(image)
    if src.dtype != np.uint8 or src.ndim != 3:
        raise ValueError(
            f"resize_linear_rgb takes a uint8 (h, w, c) image, got {src.dtype} {src.shape}"
        )
    channels = [
        resize_linear_u8(np.ascontiguousarray(src[..., c]), size) for c in range(src.shape[2])
    ]
    return np.stack(channels, axis=-1)
