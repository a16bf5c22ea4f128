"""The `auto` face mask on real photographs (scikit-image's astronaut and rocket)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import emo.plugins
from emo.errors import EMOWarning, FaceNotFoundError, PluginLoadError

pytest.importorskip("cv2")
data = pytest.importorskip("skimage.data")

from emo.face_masks.opencv import AutoFaceMask  # noqa: E402


@pytest.fixture(scope="module")
def auto() -> AutoFaceMask:
    mask = emo.plugins.create("face_mask", "auto")
    assert isinstance(mask, AutoFaceMask)
    return mask


def test_finds_the_astronauts_face(auto: AutoFaceMask) -> None:
    image = data.astronaut()  # Eileen Collins, NASA, public domain
    box = auto.boxes(image)[0]
    x0, y0, x1, y1 = box.tolist()
    # Her face is around (225, 115) in the 512x512 photograph, roughly 90 px wide.
    assert x0 < 215 < 235 < x1 and y0 < 105 < 125 < y1
    assert 60 < x1 - x0 < 160
    mask = auto(image)
    assert mask.shape == (1, 1, 512, 512) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    # Default padding 0.25: the region is 1.5x the detected box on each axis.
    area = float(mask.sum())
    assert area == pytest.approx(((x1 - x0) * 1.5) * ((y1 - y0) * 1.5), rel=0.05)
    assert mask[0, 0, 115, 225] == 1 and mask[0, 0, 450, 450] == 0


def test_no_face_raises_the_documented_error(auto: AutoFaceMask) -> None:
    with pytest.raises(FaceNotFoundError, match="'box' face mask") as info:
        auto(data.rocket())
    assert "full" in str(info.value)


@pytest.mark.parametrize("detector", ["auto", "haar"])
def test_several_faces_pick_the_largest_and_warn(detector: str) -> None:
    import cv2

    head = np.asarray(data.astronaut())[20:320, 80:370]  # her head, the face about 90 px wide
    smaller = cv2.resize(head, None, fx=0.9, fy=0.9, interpolation=cv2.INTER_AREA)
    canvas = np.full((300, 290 + smaller.shape[1], 3), 255, np.uint8)
    canvas[:, :290] = head
    canvas[: smaller.shape[0], 290:] = smaller
    with pytest.warns(EMOWarning, match="largest"):
        box = AutoFaceMask(detector=detector).boxes(canvas)[0]
    assert box[2] < 290  # the larger face, on the left


def test_clip_union_and_frames_without_face(auto: AutoFaceMask) -> None:
    image = data.astronaut()
    shifted = np.roll(image, 40, axis=1)
    blank = np.zeros_like(image)
    clip = np.stack([image, shifted, blank])
    boxes = auto.boxes(clip)
    assert boxes[1, 0] == pytest.approx(boxes[0, 0] + 40, abs=6)
    assert torch.equal(boxes[2], boxes[1])  # no face: nearest frame's box
    masks = auto(torch.from_numpy(clip))
    assert masks.shape == (3, 1, 512, 512)
    assert torch.equal(masks[0], masks[2])
    union = auto.face_box(clip)
    assert union[0] <= boxes[0, 0] and union[2] >= boxes[1, 2]


def test_missing_opencv_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes `import cv2` fail
    with pytest.raises(PluginLoadError, match=r'pip install "emo\[face\]"'):
        AutoFaceMask()
