"""emo's numpy ``warpAffine``/``resize`` against hand-computed cases and against OpenCV's bytes."""

from __future__ import annotations

import numpy as np
import pytest

from emo.face.insightface.warp import resize_linear_rgb, warp_affine_linear_u8


def random_similarity(rng: np.random.Generator) -> np.ndarray:
    scale = rng.uniform(0.1, 3.0)
    angle = rng.uniform(-np.pi, np.pi)
    matrix = np.array(
        [
            [scale * np.cos(angle), -scale * np.sin(angle), rng.uniform(-150, 150)],
            [scale * np.sin(angle), scale * np.cos(angle), rng.uniform(-150, 150)],
        ]
    )
    if rng.random() < 0.3:
        matrix[0, 1] += rng.uniform(-0.3, 0.3)  # a general affine map too
    return matrix


def test_known_cases_without_opencv() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 50, 3)).astype(np.uint8)
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    np.testing.assert_array_equal(warp_affine_linear_u8(image, identity, (40, 50)), image)
    # A whole-pixel shift moves the image and fills with black.
    shifted = warp_affine_linear_u8(image, np.array([[1.0, 0, 3], [0, 1.0, -2]]), (40, 50))
    np.testing.assert_array_equal(shifted[:38, 3:], image[2:, :47])
    assert not shifted[:, :3].any() and not shifted[38:].any()
    # Half a pixel: the fixed-point mean of two neighbours, (a + b + 1) >> 1.
    half = warp_affine_linear_u8(image, np.array([[1.0, 0, -0.5], [0, 1.0, 0]]), (40, 49))
    expected = (image[:, :-1].astype(int) + image[:, 1:] + 1) >> 1
    np.testing.assert_array_equal(half, expected)
    # A quarter pixel: weights 24/32 and 8/32.
    quarter = warp_affine_linear_u8(image, np.array([[1.0, 0, 0], [0, 1.0, -0.25]]), (39, 50))
    expected = (
        image[:-1].astype(int) * 24 * 32 * 32 + image[1:].astype(int) * 8 * 32 * 32 + 16384
    ) >> 15
    np.testing.assert_array_equal(quarter, expected)


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        warp_affine_linear_u8(np.zeros((4, 4, 3), np.float32), np.eye(2, 3), (4, 4))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        warp_affine_linear_u8(np.zeros((4, 4, 3), np.uint8), np.eye(3), (4, 4))
    with pytest.raises(ValueError, match="uint8"):
        resize_linear_rgb(np.zeros((4, 4), np.uint8), (2, 2))


def test_warp_equals_opencv_bytes() -> None:
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(1)
    for _ in range(150):
        height, width = (int(v) for v in rng.integers(8, 260, 2))
        image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
        matrix = random_similarity(rng)
        expected = cv2.warpAffine(image, matrix, (112, 96), borderValue=0.0)
        np.testing.assert_array_equal(warp_affine_linear_u8(image, matrix, (96, 112)), expected)


def test_resize_equals_opencv_bytes() -> None:
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(2)
    # Up (to the 640 canvas), down, exactly 2x (OpenCV's area special case), odd sizes.
    cases = [((512, 512), (640, 640)), ((1280, 1280), (640, 640)), ((300, 512), (375, 640))]
    cases += [((int(a), int(b)), (int(c), int(d))) for a, b, c, d in rng.integers(3, 700, (20, 4))]
    for (height, width), (new_h, new_w) in cases:
        image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
        expected = cv2.resize(image, (new_w, new_h))
        np.testing.assert_array_equal(resize_linear_rgb(image, (new_h, new_w)), expected)
