"""Pillow's bilinear resize of uint8 images, in numpy, byte for byte.

Hallo (and torchvision's ``Resize`` on a PIL image) resizes with
``PIL.Image.resize(size, Image.BILINEAR)``: a triangle filter widened by the reduction
factor (so a reduction averages every source pixel under it), weights in fixed point with
22 fraction bits, a horizontal pass rounded to uint8 and then a vertical pass. This module
does the same arithmetic, so emo gets Pillow's bytes without Pillow;
``tests/io/test_resample.py`` compares it with Pillow.
"""

from __future__ import annotations

import numpy as np

__all__ = ["resize_bilinear_pil"]

_PRECISION_BITS = 22  # Pillow's PRECISION_BITS = 32 - 8 - 2


def _taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and fixed-point weights, both int64 ``(out_size, taps)``, of one axis.

    Output ``o`` is centred on source coordinate ``(o + 0.5) * scale``; the triangle filter
    ``1 - |x|`` is widened by the reduction factor, sampled at the source pixel centres,
    normalised to sum 1 and scaled to 22 fraction bits (``floor(0.5 + w * 2**22)``). Unused
    taps have weight 0.
    """
    scale = float(in_size) / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    width = int(np.ceil(support)) * 2 + 1
    index = np.zeros((out_size, width), dtype=np.int64)
    weight = np.zeros((out_size, width), dtype=np.int64)
    for out in range(out_size):
        center = (out + 0.5) * scale
        first = max(int(center - support + 0.5), 0)
        stop = min(int(center + support + 0.5), in_size)
        taps = np.arange(first, stop)
        w = np.maximum(1.0 - np.abs((taps - center + 0.5) * (1.0 / filterscale)), 0.0)
        total = 0.0
        for value in w:  # summed in order, as Pillow does
            total += float(value)
        if total != 0.0:
            w = w / total
        index[out, : taps.size] = taps
        weight[out, : taps.size] = np.floor(0.5 + w * (1 << _PRECISION_BITS)).astype(np.int64)
    return index, weight


def _pass(pixels: np.ndarray, in_size: int, out_size: int) -> np.ndarray:
    """One pass along axis 0: ``(in_size, ...)`` 0..255 -> int64 ``(out_size, ...)`` holding 0..255."""
    index, weight = _taps(in_size, out_size)
    total = np.full((out_size, *pixels.shape[1:]), 1 << (_PRECISION_BITS - 1), dtype=np.int64)
    extra = (1,) * (pixels.ndim - 1)
    for k in range(index.shape[1]):
        total += pixels[index[:, k]].astype(np.int64) * weight[:, k].reshape(out_size, *extra)
    return np.asarray(np.clip(total >> _PRECISION_BITS, 0, 255))


def resize_bilinear_pil(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a uint8 image as ``PIL.Image.fromarray(image).resize((width, height), Image.BILINEAR)``.

    Parameters
    ----------
    image
        uint8 ``(h, w)`` or ``(h, w, c)``; each channel is resized on its own, as Pillow
        does for ``L``, ``RGB`` and ``RGBA``.
    size
        ``(height, width)`` of the result (Pillow's own argument is ``(width, height)``).

    Returns
    -------
    numpy.ndarray
        uint8 ``(height, width)`` or ``(height, width, c)``; a copy when the size is unchanged.

    Raises
    ------
    ValueError
        If ``image`` is not uint8 ``(h, w)`` / ``(h, w, c)`` or ``size`` is not positive.
    """
    src = np.asarray(image)
    if src.dtype != np.uint8 or src.ndim not in (2, 3) or 0 in src.shape:
        raise ValueError(
            f"resize_bilinear_pil takes a non-empty uint8 (h, w) or (h, w, c) image, got {src.dtype} {src.shape}"
        )
    height, width = (int(v) for v in size)
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive (height, width), got {size!r}")
    in_h, in_w = src.shape[:2]
    if (in_h, in_w) == (height, width):
        return np.array(src, dtype=np.uint8, copy=True)
    pixels = src  # cast per tap: a large image is never held as int64
    if in_w != width:  # the horizontal pass first, rounded to uint8
        pixels = np.moveaxis(_pass(np.moveaxis(pixels, 1, 0), in_w, width), 0, 1)
    if in_h != height:
        pixels = _pass(pixels, in_h, height)
    return np.asarray(pixels, dtype=np.uint8)
