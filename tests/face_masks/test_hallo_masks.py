"""Hallo's masks: byte for byte from the golden landmarks, from Hallo's PNGs, and from dlib.

The golden set (``tests/fixtures/hallo_golden``) holds a 478-point landmark array and the
masks Hallo's own ``get_mask`` and ``ImageProcessor`` made from it: PNGs (uint8) and the
tensors fed to the UNet. Tolerance: none (``torch.equal`` / ``numpy.array_equal``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from emo.errors import FaceNotFoundError, ImageError, InputError
from emo.face_masks.hallo import (
    HalloMaskImages,
    hallo_mask_images,
    hallo_masks,
    hallo_masks_from_boxes,
    hallo_masks_from_image,
    hallo_masks_from_landmarks,
)
from emo.face_masks.hallo_landmarks import DLIB_68, MEDIAPIPE_478, expand_box, hallo_boxes
from emo.io.image import load_image

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GOLDEN = FIXTURES / "hallo_golden" / "inputs"
PNGS = GOLDEN / "mask_pngs"
SIZE = (128, 128)  # the golden portrait
LATENT = 16


@pytest.fixture(scope="module")
def golden() -> dict[str, torch.Tensor]:
    return load_file(str(GOLDEN / "inputs.safetensors"))


def png(name: str) -> np.ndarray:
    return load_image(PNGS / f"reference_{name}.png")[..., 0]


def assert_golden_tensors(masks: object, golden: dict[str, torch.Tensor]) -> None:
    for name in ("full", "face", "lip"):
        levels = getattr(masks, name)
        assert len(levels) == 4
        for level, tensor in enumerate(levels):
            expected = golden[f"{name}_mask.{level}"]
            assert tensor.dtype == torch.float32
            assert tensor.shape == ((LATENT >> level) ** 2,)
            # Hallo repeats the one mask over the clip's frames.
            assert torch.equal(expected, tensor.expand_as(expected)), (name, level)
    region = masks.face_region  # type: ignore[attr-defined]
    assert region.shape == (3, *SIZE) and region.dtype == torch.float32
    assert torch.equal(region, golden["face_region"])


def test_golden_landmarks_give_hallos_masks_exactly(golden: dict[str, torch.Tensor]) -> None:
    masks = hallo_masks_from_landmarks(golden["landmarks"], SIZE, LATENT)
    images = masks.images
    assert np.array_equal(images.face_mask, png("face_mask"))
    assert images.lip_mask is not None and np.array_equal(images.lip_mask, png("lip_mask"))
    assert np.array_equal(images.sep_background, png("sep_background"))
    assert np.array_equal(images.sep_face, png("sep_face"))
    assert np.array_equal(images.sep_lip, png("sep_lip"))
    assert_golden_tensors(masks, golden)
    # The boxes are where the golden PNGs are 255.
    for box, name in ((masks.face_box, "face_mask"), (masks.lip_box, "lip_mask")):
        ys, xs = np.nonzero(png(name))
        assert box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_hallos_pngs_and_user_arrays_give_the_same_tensors(
    golden: dict[str, torch.Tensor],
) -> None:
    assert_golden_tensors(hallo_masks(HalloMaskImages.load(PNGS, "reference"), LATENT), golden)
    arrays = HalloMaskImages(
        face_mask=png("face_mask")[..., None].repeat(3, axis=-1),  # RGB is read as gray
        sep_background=torch.from_numpy(png("sep_background")),
        sep_face=png("sep_face").astype(np.float32) / 255.0,
        sep_lip=png("sep_lip").astype(np.int64),
    )
    assert_golden_tensors(hallo_masks(arrays, (LATENT, LATENT)), golden)


def test_boxes_given_directly_match_the_landmark_path(golden: dict[str, torch.Tensor]) -> None:
    from_landmarks = hallo_masks_from_landmarks(golden["landmarks"], SIZE, LATENT)
    assert from_landmarks.face_box is not None and from_landmarks.lip_box is not None
    assert_golden_tensors(
        hallo_masks_from_boxes(from_landmarks.face_box, from_landmarks.lip_box, SIZE, LATENT),
        golden,
    )


def test_a_wrong_expansion_or_subset_changes_the_masks(golden: dict[str, torch.Tensor]) -> None:
    """The golden comparison can fail: Hallo's settings matter."""
    exact = hallo_masks_from_landmarks(golden["landmarks"], SIZE, LATENT)
    for changed in (
        hallo_masks_from_landmarks(golden["landmarks"], SIZE, LATENT, face_expand_ratio=1.3),
        hallo_masks_from_landmarks(golden["landmarks"], SIZE, LATENT, lip_expand_ratio=1.8),
        hallo_masks_from_landmarks(
            golden["landmarks"],
            SIZE,
            LATENT,
            subsets=replace(MEDIAPIPE_478, silhouette=MEDIAPIPE_478.silhouette[1:]),
        ),
    ):
        assert not all(
            torch.equal(a, b)
            for name in ("full", "face", "lip")
            for a, b in zip(getattr(exact, name), getattr(changed, name), strict=True)
        )


def test_levels_and_face_region_at_hallos_512_pixels(golden: dict[str, torch.Tensor]) -> None:
    # The golden landmarks scaled to a 512 px portrait, output 512 px, latents 64.
    masks = hallo_masks_from_landmarks(golden["landmarks"] * 4, (512, 512), 64)
    assert [m.shape for m in masks.full] == [(4096,), (1024,), (256,), (64,)]
    assert masks.face_region.shape == (3, 512, 512)
    assert set(masks.face_region.unique().tolist()) == {0.0, 1.0}
    # Level 0 at 64 is the 64x64 mask itself.
    assert torch.equal(
        masks.lip[0], torch.from_numpy(masks.images.sep_lip.astype(np.float32)).flatten() / 255
    )
    # The soft masks keep their meaning: the lips are inside the face, the face is not background.
    assert float(masks.lip[0].max()) == 1.0
    assert masks.face[0][masks.lip[0].argmax()] < masks.face[0].max()
    assert float(masks.full[0][masks.face[0].argmax()]) < 0.5
    rows = masks.audio_masks(weights=(1.0, 0.5, 2.0))
    assert rows.level(3)[0].shape == (1, 64) and rows.weights == (1.0, 0.5, 2.0)


def test_output_size_differs_from_the_portrait(golden: dict[str, torch.Tensor]) -> None:
    masks = hallo_masks_from_landmarks(golden["landmarks"], SIZE, 8, output_size=(64, 64))
    assert masks.face_region.shape == (3, 64, 64)
    assert [m.shape for m in masks.face] == [(64,), (16,), (4,), (1,)]
    # 128 -> 64 is a Pillow bilinear reduction: the box edges at odd pixels become 0.5.
    assert 0.0 < masks.face_region[0].mean() < 1.0


def test_expand_box_follows_hallo_and_clips_where_hallo_wraps() -> None:
    # Centre (10 + 30) // 2 = 20, half side (20 * 1.2) // 2 = 12.
    assert expand_box((10.0, 30.0, 10.0, 30.0), 100, 100, 1.2) == (8, 8, 32, 32)
    # Sticking out on the left: shifted right, size kept.
    assert expand_box((0.0, 20.0, 40.0, 60.0), 100, 100, 2.0) == (0, 30, 40, 70)
    # Larger than the image: Hallo's corner would be -20 (a wrapped slice); emo keeps the image.
    assert expand_box((0.0, 100.0, 0.0, 100.0), 100, 100, 1.4) == (0, 0, 100, 100)


def test_bad_landmarks_raise_clear_errors(golden: dict[str, torch.Tensor]) -> None:
    landmarks = golden["landmarks"].numpy()
    with pytest.raises(InputError, match="478 landmarks"):
        hallo_boxes(landmarks[:68], SIZE)
    with pytest.raises(InputError, match=r"shape \(points, 2\)"):
        hallo_boxes(landmarks[:, :1], SIZE)
    with pytest.raises(InputError, match="not normalised"):
        hallo_boxes(landmarks / 128.0, SIZE)  # MediaPipe's normalised coordinates
    with pytest.raises(InputError, match="outside the 128x128 image"):
        hallo_boxes(landmarks + 500.0, SIZE)
    nan = landmarks.copy()
    nan[10] = np.nan
    with pytest.raises(FaceNotFoundError, match="no face"):
        hallo_masks_from_landmarks(nan, SIZE, LATENT)
    with pytest.raises(InputError, match="latent_size"):
        hallo_masks_from_landmarks(landmarks, SIZE, 4)
    with pytest.raises(InputError, match="face_expand_ratio"):
        hallo_boxes(landmarks, SIZE, face_expand_ratio=0.0)


def test_bad_boxes_and_mask_images_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="holds no pixel"):
        hallo_masks_from_boxes((200, 200, 300, 300), (40, 40, 60, 60), SIZE, LATENT)
    with pytest.raises(InputError, match="x0, y0, x1, y1"):
        hallo_masks_from_boxes((1, 2), (40, 40, 60, 60), SIZE, LATENT)  # type: ignore[arg-type]
    with pytest.raises(ImageError, match="reference_face_mask.png.*does not exist"):
        HalloMaskImages.load(tmp_path, "reference")
    with pytest.raises(InputError, match="uint8 0..255"):
        HalloMaskImages(
            face_mask=np.zeros(SIZE, np.uint8),
            sep_background=np.full((64, 64), 300),
            sep_face=np.zeros((64, 64), np.uint8),
            sep_lip=np.zeros((64, 64), np.uint8),
        )


def test_mask_images_from_boxes_have_hallos_structure() -> None:
    images = hallo_mask_images((20, 10, 100, 120), (45, 80, 85, 100), SIZE)
    assert images.face_mask.shape == SIZE and images.sep_lip.shape == (64, 64)
    blur_face = 255 - images.sep_background.astype(int)  # truncation: off by at most 1
    assert images.sep_lip.max() == 255 and images.sep_lip.min() == 0
    assert np.all(images.sep_face <= np.clip(blur_face + 1, 0, 255))


# -- emo's own landmarks (dlib) against MediaPipe's on a real photograph --------------------


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    pytest.importorskip("dlib")
    data = pytest.importorskip("skimage.data")
    return np.asarray(data.astronaut())


def test_dlib_boxes_match_mediapipes_on_the_astronaut(astronaut: np.ndarray) -> None:
    """Measured: face-box IoU 0.967, lip-box IoU 0.977; without the forehead estimate 0.84."""
    reference = json.loads((FIXTURES / "hallo_masks" / "astronaut_mediapipe478.json").read_text())
    mediapipe = hallo_masks_from_landmarks(np.array(reference["points"]), (512, 512), 64)
    ours = hallo_masks_from_image(astronaut, 64)
    assert mediapipe.face_box is not None and ours.face_box is not None
    assert mediapipe.lip_box is not None and ours.lip_box is not None
    assert _iou(ours.face_box, mediapipe.face_box) > 0.95
    assert _iou(ours.lip_box, mediapipe.lip_box) > 0.95
    for name in ("full", "face", "lip"):
        difference = (getattr(ours, name)[0] - getattr(mediapipe, name)[0]).abs()
        assert float(difference.mean()) < 0.01, name
    # The forehead estimate is what makes the face box match.
    from emo.face import FaceAnalyzer

    landmarks = FaceAnalyzer("dlib").analyze(astronaut).landmarks[0]
    no_forehead, _ = hallo_boxes(landmarks, (512, 512), subsets=replace(DLIB_68, forehead=0.0))
    assert _iou(no_forehead, mediapipe.face_box) < 0.9


def test_no_face_in_the_portrait_raises(astronaut: np.ndarray) -> None:
    with pytest.raises(FaceNotFoundError, match="hallo_masks_from_boxes"):
        hallo_masks_from_image(np.full((256, 256, 3), 128, np.uint8), 32)
