"""Three OpenCV uint8 image operations in numpy, with OpenCV's own integer arithmetic.

Hallo's masks are made by ``cv2.resize`` (default ``INTER_LINEAR``), ``cv2.GaussianBlur``
(``sigma=0``) and ``cv2.normalize(NORM_MINMAX)`` on uint8 images. OpenCV computes all three
in fixed point, so a float implementation differs from it by one grey level here and there.
These functions follow the arithmetic OpenCV documents in its source (coefficient
precision, rounding, border rule), so the masks are the same bytes with or without OpenCV
installed; ``tests/face_masks/test_opencv_exact.py`` checks them against ``cv2`` on many
sizes and boxes.

Only single-channel uint8 images are handled: that is all the masks need.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gaussian_blur_u8", "gaussian_kernel_u8", "normalize_minmax_u8", "resize_linear_u8"]

_COEF_BITS = 11  # OpenCV's INTER_RESIZE_COEF_BITS: linear weights are multiples of 1/2048
_COEF_SCALE = 1 << _COEF_BITS
_KERNEL_BITS = 8  # GaussianBlur's uint8 kernel: 8 fraction bits (ufixedpoint16)


def _linear_taps(
    src: int, dst: int, *, clamp_weights: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two source indices and their fixed-point weights, each ``(dst,)``, of a linear resize axis.

    The source coordinate of output ``d`` is ``(d + 0.5) * src / dst - 0.5``, rounded to
    float32; the weights ``1 - frac`` and ``frac`` are rounded to multiples of 1/2048 (round
    half to even). Indices outside the image are clamped to the edge. Horizontally
    (``clamp_weights``) OpenCV also moves an outside coordinate onto the edge pixel with
    weights (1, 0); vertically it keeps the two weights and reads the edge row twice.
    """
    scale = 1.0 / (dst / src)
    pos = ((np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    index = np.floor(pos).astype(np.int64)
    frac = (pos - index.astype(np.float32)).astype(np.float32)
    if clamp_weights:
        frac[(index < 0) | (index >= src - 1)] = 0.0
    w0 = np.rint((np.float32(1.0) - frac) * np.float32(_COEF_SCALE)).astype(np.int64)
    w1 = np.rint(frac * np.float32(_COEF_SCALE)).astype(np.int64)
    return np.clip(index, 0, src - 1), np.clip(index + 1, 0, src - 1), w0, w1


def resize_linear_u8(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``cv2.resize(image, (width, height))`` (``INTER_LINEAR``) of a uint8 image ``(h, w)``.

    Parameters
    ----------
    image
        uint8 ``(h, w)``.
    size
        ``(height, width)`` of the result (note: OpenCV's own argument is ``(width, height)``).

    Returns
    -------
    numpy.ndarray
        uint8 ``(height, width)``.

    Notes
    -----
    OpenCV replaces an exact 2x reduction on both axes by its area average,
    ``(a + b + c + d + 2) >> 2``. Otherwise the horizontal pass keeps
    ``pixel * weight`` sums in 1/2048 units, and the vertical pass combines two rows as
    OpenCV's vector code does: ``((r0 >> 4) * b0 >> 16) + ((r1 >> 4) * b1 >> 16)``, then
    ``(x + 2) >> 2``, saturated to 0..255.
    """
    src = np.asarray(image)
    if src.dtype != np.uint8 or src.ndim != 2:
        raise ValueError(
            f"resize_linear_u8 takes a uint8 (h, w) image, got {src.dtype} {src.shape}"
        )
    height, width = size
    src_h, src_w = src.shape
    if (src_h, src_w) == (height, width):
        return np.array(src, dtype=np.uint8, copy=True)
    if src_h == 2 * height and src_w == 2 * width:
        pixels = src.astype(np.int64)
        quads = pixels[0::2, 0::2] + pixels[0::2, 1::2] + pixels[1::2, 0::2] + pixels[1::2, 1::2]
        return np.asarray((quads + 2) >> 2, dtype=np.uint8)
    xi0, xi1, xw0, xw1 = _linear_taps(src_w, width, clamp_weights=True)
    yi0, yi1, yw0, yw1 = _linear_taps(src_h, height, clamp_weights=False)

    def horizontal(rows: np.ndarray) -> np.ndarray:
        """Rows ``(n, src_w)`` -> ``(n, width)`` in 1/2048 units."""
        return np.asarray(rows[:, xi0].astype(np.int64) * xw0 + rows[:, xi1].astype(np.int64) * xw1)

    # Only the source rows that are read are resampled (a large portrait stays uint8).
    top = ((horizontal(src[yi0]) >> 4) * yw0[:, None]) >> 16
    bottom = ((horizontal(src[yi1]) >> 4) * yw1[:, None]) >> 16
    return np.asarray(np.clip((top + bottom + 2) >> 2, 0, 255), dtype=np.uint8)


def gaussian_kernel_u8(ksize: int) -> np.ndarray:
    """GaussianBlur's integer kernel for uint8 images and ``sigma=0``: int64 ``(ksize,)`` summing to 256.

    ``sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8``; the normalised Gaussian is scaled by 256
    and rounded from the outside in with error diffusion (each tap carries the rounding error
    of the one before), and the centre tap takes what makes the sum exactly 256.
    """
    if ksize < 1 or ksize % 2 == 0:
        raise ValueError(f"ksize must be odd and positive, got {ksize}")
    if ksize <= 7:
        # OpenCV's fixed small kernels for sigma <= 0.
        table = {
            1: [1.0],
            3: [0.25, 0.5, 0.25],
            5: [0.0625, 0.25, 0.375, 0.25, 0.0625],
            7: [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125],
        }
        values = np.array(table[ksize], dtype=np.float64)
    else:
        sigma = ksize * 0.15 + 0.35  # = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8
        scale2 = -0.125 / (sigma * sigma)
        x = np.arange(1 - ksize, 0, 2, dtype=np.float64)  # twice the offsets, -ksize+1 .. -2
        side = np.exp(x * x * scale2)  # exp(-offset**2 / (2 sigma**2)), left half
        total = 0.0
        for t in side:  # summed in order, as OpenCV does
            total += float(t)
        inv = 1.0 / (total * 2.0 + 1.0)
        values = np.concatenate([side * inv, [inv], (side * inv)[::-1]])
    one = 1 << _KERNEL_BITS
    half = ksize // 2
    kernel = np.zeros(ksize, dtype=np.int64)
    error = 0.0
    for i in range(half):
        adjusted = float(values[i]) * one + error
        rounded = round(adjusted)  # half to even, as cvRound
        error = adjusted - rounded
        kernel[i] = kernel[ksize - 1 - i] = rounded
    kernel[half] = one - 2 * int(kernel[:half].sum())
    return kernel


def _reflect101(n: int, radius: int) -> np.ndarray:
    """Indices ``(n + 2 radius,)`` of a padded axis with OpenCV's BORDER_REFLECT_101 (``gfedcb|abcdefgh|gfedcba``)."""
    index = np.arange(-radius, n + radius)
    if n == 1:
        return np.zeros_like(index)
    period = 2 * (n - 1)
    index = np.mod(index, period)
    return np.where(index >= n, period - index, index)


def gaussian_blur_u8(image: np.ndarray, ksize: int) -> np.ndarray:
    """``cv2.GaussianBlur(image, (ksize, ksize), 0)`` of a uint8 image ``(h, w)``.

    The rows are filtered with the integer kernel of :func:`gaussian_kernel_u8` (exact
    sums in 1/256 units), then the columns (1/65536 units), and the result is rounded half
    up. The border is mirrored without repeating the edge (OpenCV's default).

    Parameters
    ----------
    image
        uint8 ``(h, w)``.
    ksize
        Odd kernel side in pixels.

    Returns
    -------
    numpy.ndarray
        uint8 ``(h, w)``.
    """
    src = np.asarray(image)
    if src.dtype != np.uint8 or src.ndim != 2:
        raise ValueError(
            f"gaussian_blur_u8 takes a uint8 (h, w) image, got {src.dtype} {src.shape}"
        )
    kernel = gaussian_kernel_u8(ksize)
    radius = ksize // 2
    height, width = src.shape
    pixels = src.astype(np.int64)
    padded = pixels[:, _reflect101(width, radius)]
    rows = np.zeros((height, width), dtype=np.int64)
    for k, weight in enumerate(kernel):
        rows += padded[:, k : k + width] * weight
    padded = rows[_reflect101(height, radius)]
    out = np.zeros((height, width), dtype=np.int64)
    for k, weight in enumerate(kernel):
        out += padded[k : k + height] * weight
    return np.asarray(np.clip((out + (1 << 15)) >> 16, 0, 255), dtype=np.uint8)


def normalize_minmax_u8(image: np.ndarray) -> np.ndarray:
    """``cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX)`` of a uint8 image.

    ``scale = 255 / (max - min)`` and ``shift = -min * scale`` in double precision, each
    pixel ``x * scale + shift`` computed in float32 with one rounding (as OpenCV's fused
    multiply-add), then rounded half to even. A constant image becomes zeros.

    Parameters
    ----------
    image
        uint8, any shape.

    Returns
    -------
    numpy.ndarray
        uint8, the same shape.
    """
    src = np.asarray(image)
    if src.dtype != np.uint8:
        raise ValueError(f"normalize_minmax_u8 takes a uint8 image, got {src.dtype}")
    low, high = float(src.min()), float(src.max())
    scale = 255.0 * (1.0 / (high - low) if high - low > np.finfo(np.float64).eps else 0.0)
    shift = 0.0 - low * scale
    a, b = float(np.float32(scale)), float(np.float32(shift))
    # x (8 bits) * a (24 bits) + b is exact in float64; one rounding to float32 = an FMA.
    value = (src.astype(np.float64) * a + b).astype(np.float32)
    return np.clip(np.rint(value), 0, 255).astype(np.uint8)
