"""The portrait crop: grown around the face, never past the image only to honour the scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from emo.face_masks.simple import BoxMask, FullFrameMask
from emo.io.image import crop_and_resize, grow_box_within, load_image
from emo.pipelines.conditioning import prepare_portrait
from emo.pipelines.emo_pipeline import EMOPipeline
from emo.pipelines.settings import PipelineSettings

DEFAULT_SCALE = PipelineSettings().face_crop_scale


def _pattern(height: int, width: int) -> np.ndarray:
    """An image whose every pixel differs from its neighbours and whose borders are distinct."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_full_mask_with_the_default_scale_keeps_the_whole_image() -> None:
    image = _pattern(64, 64)
    portrait = prepare_portrait(
        image, FullFrameMask(), height=64, width=64, crop_scale=DEFAULT_SCALE
    )
    assert DEFAULT_SCALE > 1.0
    assert portrait.crop_box == (0, 0, 64, 64)
    np.testing.assert_array_equal(portrait.image, image)  # no shrink, no smeared border
    assert bool(portrait.mask.bool().all())  # the face region is the whole frame


def test_full_mask_resized_equals_the_whole_image_resized() -> None:
    image = _pattern(96, 96)
    portrait = prepare_portrait(image, FullFrameMask(), height=32, width=32, crop_scale=3.0)
    np.testing.assert_array_equal(portrait.image, crop_and_resize(image, (0, 0, 96, 96), 32, 32))


def test_full_mask_on_another_aspect_keeps_every_pixel_of_the_image() -> None:
    image = _pattern(48, 96)  # landscape into a square: the image is kept and padded
    portrait = prepare_portrait(
        image, FullFrameMask(), height=96, width=96, crop_scale=DEFAULT_SCALE
    )
    assert portrait.crop_box == (0, -24, 96, 72)
    np.testing.assert_array_equal(portrait.image[24:72], image)


def test_a_face_box_is_grown_by_the_scale_where_the_image_allows() -> None:
    image = _pattern(100, 100)
    small = prepare_portrait(
        image, BoxMask(box=(40, 40, 60, 60)), height=40, width=40, crop_scale=2.0
    )
    assert small.crop_box == (30, 30, 70, 70)  # 2x the 20 px box, around its centre
    np.testing.assert_array_equal(small.image, image[30:70, 30:70])
    large = prepare_portrait(
        image, BoxMask(box=(10, 20, 80, 90)), height=100, width=100, crop_scale=2.0
    )
    assert large.crop_box == (0, 0, 100, 100)  # 140 px wanted: limited to the image
    np.testing.assert_array_equal(large.image, image)


@pytest.mark.parametrize(
    ("box", "scale", "aspect", "size", "expected"),
    [
        ((0, 0, 64, 64), 2.0, 1.0, (64, 64), (0.0, 0.0, 64.0, 64.0)),
        ((0, 0, 80, 40), 2.0, 1.0, (40, 80), (0.0, -20.0, 80.0, 60.0)),
        ((10, 10, 30, 20), 1.0, 1.0, (100, 100), (10.0, 5.0, 30.0, 25.0)),
        ((40, 40, 60, 60), 5.0, 0.5, (100, 100), (25.0, 0.0, 75.0, 100.0)),  # long side cut
        ((0, 0, 100, 50), 1.0, 0.5, (100, 100), (0.0, -50.0, 100.0, 150.0)),  # face too wide
        ((90, 90, 100, 100), 3.0, 1.0, (100, 100), (70.0, 70.0, 100.0, 100.0)),
    ],
)
def test_grow_box_within(
    box: tuple[float, float, float, float],
    scale: float,
    aspect: float,
    size: tuple[int, int],
    expected: tuple[float, float, float, float],
) -> None:
    got = grow_box_within(box, scale, aspect, *size)
    assert got == pytest.approx(expected)
    assert (got[2] - got[0]) / (got[3] - got[1]) == pytest.approx(aspect)


def test_generation_with_the_full_mask_shows_the_whole_portrait(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray
) -> None:
    out = tiny_pipe(
        portrait_path,
        short_speech[:1600],
        audio_rate=16000,
        output_type="latent",
        num_inference_steps=1,
        generator=torch.Generator().manual_seed(0),
    )
    assert isinstance(tiny_pipe.face_mask, FullFrameMask)
    assert tiny_pipe.settings.face_crop_scale == DEFAULT_SCALE
    whole = crop_and_resize(load_image(portrait_path), (0, 0, 512, 512), 32, 32)
    np.testing.assert_array_equal(out.portrait, whole)
