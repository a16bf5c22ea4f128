"""Face-mask contract, box helpers and the detector-free masks (full, box)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import emo.plugins
from emo.errors import InputError
from emo.face_masks import (
    BoxMask,
    FaceMask,
    FaceMaskBase,
    FullFrameMask,
    as_frames,
    box_to_mask,
    pad_box,
    union_box,
)


def frames(count: int = 2, height: int = 10, width: int = 16) -> np.ndarray:
    return np.zeros((count, height, width, 3), dtype=np.uint8)


def test_union_box_of_clip() -> None:
    boxes = torch.tensor([[2.0, 3.0, 6.0, 8.0], [1.0, 4.0, 5.0, 9.0], [3.0, 2.0, 7.0, 5.0]])
    assert union_box(boxes).tolist() == [1.0, 2.0, 7.0, 9.0]
    assert union_box([[0, 0, 1, 1]]).tolist() == [0.0, 0.0, 1.0, 1.0]


def test_pad_box_grows_by_ratio_and_clamps() -> None:
    assert pad_box([10, 20, 30, 60], 0.25, 100, 100).tolist() == [5.0, 10.0, 35.0, 70.0]
    assert pad_box([0, 0, 10, 10], 0.5, 12, 12).tolist() == [0.0, 0.0, 12.0, 12.0]
    batch = pad_box(torch.tensor([[10.0, 10, 20, 20], [0, 0, 4, 4]]), 0.0, 30, 30)
    assert batch.shape == (2, 4)
    with pytest.raises(InputError, match="padding ratio"):
        pad_box([0, 0, 1, 1], float("nan"), 4, 4)


def test_box_to_mask_single_and_batch() -> None:
    mask = box_to_mask([1, 2, 3, 4], 5, 6)
    assert mask.shape == (1, 5, 6) and mask.dtype == torch.float32
    expected = torch.zeros(5, 6)
    expected[2:4, 1:3] = 1
    assert torch.equal(mask[0], expected)
    # Fractional boxes cover every pixel they touch.
    assert box_to_mask([0.5, 0.5, 1.5, 1.5], 3, 3)[0].sum() == 4
    batch = box_to_mask(torch.tensor([[0.0, 0, 2, 2], [1, 1, 3, 3]]), 4, 4)
    assert batch.shape == (2, 1, 4, 4)
    assert set(batch.unique().tolist()) == {0.0, 1.0}
    with pytest.raises(InputError, match=r"\(n, 4\)"):
        box_to_mask([1, 2, 3], 4, 4)


def test_as_frames_accepts_numpy_torch_float_and_single_image() -> None:
    assert as_frames(torch.zeros(3, 4, 5, 3, dtype=torch.uint8)).shape == (3, 4, 5, 3)
    assert as_frames(np.zeros((4, 5, 3), np.uint8)).shape == (1, 4, 5, 3)
    floats = as_frames(np.full((1, 2, 2, 3), 1.0, np.float32))
    assert floats.dtype == np.uint8 and floats.max() == 255
    with pytest.raises(InputError, match=r"\(f, h, w, 3\)"):
        as_frames(np.zeros((2, 3, 4, 4), np.uint8))
    with pytest.raises(InputError, match="empty"):
        as_frames(np.zeros((0, 3, 4, 3), np.uint8))
    with pytest.raises(InputError, match="numpy array or torch tensor"):
        as_frames([[1, 2, 3]])


def test_full_frame_mask() -> None:
    mask = FullFrameMask()(torch.zeros(3, 6, 8, 3, dtype=torch.uint8))
    assert mask.shape == (3, 1, 6, 8) and mask.dtype == torch.float32
    assert bool((mask == 1).all())


def test_box_mask_pixels_and_relative() -> None:
    pixels = BoxMask((4, 2, 12, 8))(frames())
    relative = BoxMask((0.25, 0.2, 0.75, 0.8))(frames())
    assert torch.equal(pixels, relative)
    assert pixels.shape == (2, 1, 10, 16)
    assert pixels[0, 0].sum() == 8 * 6
    assert pixels[0, 0, 2, 4] == 1 and pixels[0, 0, 1, 4] == 0
    # relative=False forces pixels even for small values.
    tiny = BoxMask((0, 0, 1, 1), relative=False)(frames())
    assert tiny[0, 0].sum() == 1
    padded = BoxMask((4, 2, 12, 8), padding=0.25)(frames())
    # x: 4-2=2 .. 12+2=14 -> 12 columns; y: 2-1.5=0.5 .. 8+1.5=9.5 -> rows 0..9 (every touched row)
    assert padded[0, 0].sum() == 12 * 10


def test_box_mask_errors() -> None:
    with pytest.raises(InputError, match="empty"):
        BoxMask((5, 5, 2, 8))
    with pytest.raises(InputError, match="four"):
        BoxMask((1, 2, 3))
    with pytest.raises(InputError, match="outside"):
        BoxMask((100, 100, 200, 200))(frames())


def test_builtins_through_the_registry() -> None:
    assert {"full", "box", "auto"} <= set(emo.plugins.available("face_mask"))
    full = emo.plugins.create("face_mask", "full")
    assert isinstance(full, FullFrameMask) and isinstance(full, FaceMask)
    box = emo.plugins.create("face_mask", "box", box=[1, 1, 3, 3])
    assert box(frames())[0, 0].sum() == 4
    statuses = {s.info.name: s for s in emo.plugins.check("face_mask")}
    assert statuses["full"].loads and statuses["box"].loads and statuses["auto"].loads


def test_config_round_trip(tmp_path: Any) -> None:
    mask = BoxMask((0.1, 0.2, 0.6, 0.9), padding=0.1, union=False)
    mask.save_pretrained(tmp_path)
    again = BoxMask.from_pretrained(tmp_path)
    assert again.config.public() == mask.config.public()
    assert torch.equal(again(frames()), mask(frames()))


class MovingBoxMask(FaceMaskBase):
    """A third-party style plugin: a 'detector' whose box moves 2 px per frame."""

    name = "moving-test"

    def __init__(self, padding: float = 0.0, union: bool = True) -> None:
        super().__init__(padding=padding, union=union)

    def boxes(self, frames: Any) -> torch.Tensor:
        count = as_frames(frames).shape[0]
        return torch.tensor([[2.0 * i, 0.0, 2.0 * i + 4, 4.0] for i in range(count)])


def test_plugin_subclass_union_and_per_frame() -> None:
    emo.plugins.register("face_mask", "moving-test", MovingBoxMask)
    try:
        union = emo.plugins.create("face_mask", "moving-test")(frames(3))
        assert all(torch.equal(union[0], union[i]) for i in range(3))
        assert union[0, 0, 0].tolist() == [1.0] * 8 + [0.0] * 8
        per_frame = emo.plugins.create("face_mask", "moving-test", union=False)(frames(3))
        assert per_frame[2, 0, 0].tolist() == [0.0] * 4 + [1.0] * 4 + [0.0] * 8
    finally:
        emo.plugins.unregister("face_mask", "moving-test")


def test_bad_boxes_output_is_reported() -> None:
    class Broken(FaceMaskBase):
        def __init__(self) -> None:
            super().__init__()

        def boxes(self, frames: Any) -> torch.Tensor:
            return torch.zeros(1, 4)

    with pytest.raises(InputError, match=r"must return \(2, 4\)"):
        Broken()(frames(2))
