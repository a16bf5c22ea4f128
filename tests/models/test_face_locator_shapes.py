"""FaceLocator: shapes, zero init, persistence, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from emo.errors import InputError
from emo.models.face_locator import FaceLocator


def test_video_and_image_shapes_and_zero_init() -> None:
    locator = FaceLocator()
    assert locator.downscale_factor == 8
    video = torch.zeros(2, 1, 3, 64, 48)
    video[..., 16:48, 8:40] = 1
    out = locator(video)
    assert out.shape == (2, 4, 3, 8, 6)
    assert torch.equal(out, torch.zeros_like(out))
    image = locator(video[:, :, 0])
    assert image.shape == (2, 4, 8, 6)
    assert torch.equal(locator.conv_out.weight, torch.zeros_like(locator.conv_out.weight))


def test_trained_locator_is_per_frame_and_accepts_bool_masks() -> None:
    torch.manual_seed(0)
    locator = FaceLocator(block_out_channels=(8, 16))
    torch.nn.init.normal_(locator.conv_out.weight)
    assert locator.downscale_factor == 2
    mask = torch.rand(1, 1, 4, 8, 8) > 0.5
    out = locator(mask)
    assert out.shape == (1, 4, 4, 4, 4) and out.abs().max() > 0
    frame2 = locator(mask[:, :, 2].float())
    torch.testing.assert_close(out[:, :, 2], frame2)


def test_save_and_load(tmp_path: Path) -> None:
    locator = FaceLocator(in_channels=1, out_channels=4, block_out_channels=(8, 16, 32, 32))
    torch.nn.init.normal_(locator.conv_out.weight)
    locator.save_pretrained(tmp_path)
    loaded = FaceLocator.from_pretrained(tmp_path)
    assert loaded.config.block_out_channels == (8, 16, 32, 32)
    mask = torch.rand(1, 1, 16, 16)
    torch.testing.assert_close(loaded(mask), locator(mask))


@pytest.mark.parametrize(
    ("mask", "match"),
    [
        (torch.zeros(1, 64, 64), "got"),
        (torch.zeros(1, 2, 64, 64), "channels"),
        (torch.zeros(1, 1, 2, 60, 64), "multiple of 8"),
        (torch.zeros(1, 1, 64, 0), "multiple of 8"),
    ],
)
def test_bad_masks(mask: torch.Tensor, match: str) -> None:
    with pytest.raises(InputError, match=match):
        FaceLocator()(mask)
