"""emo's numpy versions of OpenCV's uint8 resize, Gaussian blur and min-max normalisation.

Compared with ``cv2`` itself (the ``face`` extra) on boxes and random images of many sizes:
equal bytes, no tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

from emo.face_masks._opencv_exact import (
    gaussian_blur_u8,
    gaussian_kernel_u8,
    normalize_minmax_u8,
    resize_linear_u8,
)

# Downscales (2x is OpenCV's area special case, 8x a linear one), odd sizes, upscales.
SIZES = [(128, 128), (512, 512), (720, 1280), (100, 100), (129, 131), (65, 70), (17, 9), (64, 64)]


def images(rng: np.random.Generator, height: int, width: int) -> list[np.ndarray]:
    box = np.zeros((height, width), np.uint8)
    x0, x1 = sorted(rng.integers(0, width + 1, 2))
    y0, y1 = sorted(rng.integers(0, height + 1, 2))
    box[y0:y1, x0:x1] = 255
    return [box, rng.integers(0, 256, (height, width)).astype(np.uint8)]


def test_the_gaussian_kernel_is_symmetric_and_sums_to_one() -> None:
    for ksize in (3, 31, 51):
        kernel = gaussian_kernel_u8(ksize)
        assert kernel.sum() == 256 and np.array_equal(kernel, kernel[::-1])
        # Rounding with error diffusion leaves the centre within one step of the peak.
        assert kernel.max() - kernel[ksize // 2] <= 1
    with pytest.raises(ValueError, match="odd"):
        gaussian_kernel_u8(4)


def test_without_opencv_the_known_cases_hold() -> None:
    image = np.zeros((8, 8), np.uint8)
    image[2:6, 2:6] = 255
    assert np.array_equal(resize_linear_u8(image, (8, 8)), image)
    assert np.array_equal(resize_linear_u8(image, (4, 4))[1:3, 1:3], np.full((2, 2), 255))
    assert resize_linear_u8(image, (4, 4))[0, 0] == 0
    flat = np.full((5, 5), 7, np.uint8)
    assert np.array_equal(gaussian_blur_u8(flat, 3), flat)
    assert np.array_equal(normalize_minmax_u8(flat), np.zeros_like(flat))
    assert normalize_minmax_u8(np.array([[10, 20, 30]], np.uint8)).tolist() == [[0, 128, 255]]


def test_equal_to_opencv_bytes() -> None:
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    for height, width in SIZES:
        for image in images(rng, height, width):
            small = cv2.resize(image, (64, 64))
            assert np.array_equal(resize_linear_u8(image, (64, 64)), small), (height, width)
            for ksize in (3, 7, 31, 51):
                blurred = cv2.GaussianBlur(small, (ksize, ksize), 0)
                assert np.array_equal(gaussian_blur_u8(small, ksize), blurred), ksize
                assert np.array_equal(
                    normalize_minmax_u8(blurred),
                    cv2.normalize(blurred, None, 0, 255, cv2.NORM_MINMAX),
                )
