"""emo's numpy version of Pillow's bilinear resize (what torchvision's ``Resize`` does to a PIL image)."""

from __future__ import annotations

import numpy as np
import pytest

from emo.io.resample import resize_bilinear_pil


def test_equal_to_pillow_bytes_for_proportional_and_one_axis_resizes() -> None:
    image_module = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    cases = [
        ((64, 64), (32, 32)),  # Hallo's mask levels
        ((64, 64), (2, 2)),
        ((128, 128), (512, 512)),  # the face box up to the output size
        ((600, 600), (512, 512)),  # a portrait down to Hallo's size
        ((301, 301), (150, 150)),
        ((480, 640), (384, 512)),
        ((100, 37), (100, 64)),  # one axis only
        ((100, 37), (50, 37)),
    ]
    for (height, width), (out_h, out_w) in cases:
        for channels in ((), (3,)):
            image = rng.integers(0, 256, (height, width, *channels)).astype(np.uint8)
            expected = np.asarray(
                image_module.fromarray(image).resize((out_w, out_h), image_module.BILINEAR)
            )
            assert np.array_equal(resize_bilinear_pil(image, (out_h, out_w)), expected), (
                (height, width),
                (out_h, out_w),
                channels,
            )


def test_same_size_is_a_copy_and_bad_input_is_refused() -> None:
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    same = resize_bilinear_pil(image, (3, 4))
    assert np.array_equal(same, image) and same is not image
    assert resize_bilinear_pil(np.full((4, 4), 9, np.uint8), (2, 2)).tolist() == [[9, 9], [9, 9]]
    with pytest.raises(ValueError, match="uint8"):
        resize_bilinear_pil(image.astype(np.float32), (2, 2))
    with pytest.raises(ValueError, match="positive"):
        resize_bilinear_pil(image, (0, 2))
