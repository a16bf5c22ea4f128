"""The `auto` face mask with the trained detector finds faces the Haar cascade misses."""

from __future__ import annotations

import numpy as np
import pytest
from face_drawing import astronaut, cartoon_face, turn

import emo.plugins
from emo.errors import FaceNotFoundError
from emo.face_masks.opencv import AutoFaceMask


@pytest.fixture(scope="module")
def auto() -> AutoFaceMask:
    mask = emo.plugins.create("face_mask", "auto")
    assert isinstance(mask, AutoFaceMask) and mask.detector == "auto"
    return mask


def _centre(box: np.ndarray) -> tuple[float, float]:
    return float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2


@pytest.mark.parametrize(
    ("name", "image", "centre"),
    [
        ("quarter turn", np.rot90(astronaut()), (122, 287)),
        ("upside down", astronaut()[::-1], (225, 392)),
        ("cartoon tilted 35 degrees", turn(cartoon_face(), 35), (256, 290)),
    ],
)
def test_finds_faces_haar_misses(
    auto: AutoFaceMask, name: str, image: np.ndarray, centre: tuple[float, float]
) -> None:
    with pytest.raises(FaceNotFoundError):
        AutoFaceMask(detector="haar").boxes(image)
    box = auto.boxes(image)[0].numpy()
    x, y = _centre(box)
    assert abs(x - centre[0]) < 40 and abs(y - centre[1]) < 40, (name, box)
    mask = auto(image)
    assert mask[0, 0, round(y), round(x)] == 1 and mask[0, 0, 0, 0] == 0 and mask.mean() < 0.7


@pytest.mark.parametrize("variant", ["mirrored", "scaled 0.5", "turned -20"])
def test_finds_the_astronaut_in_copies(auto: AutoFaceMask, variant: str) -> None:
    import cv2

    image = astronaut()
    expected = (225.0, 125.0)
    if variant == "mirrored":
        image, expected = image[:, ::-1], (512 - 225.0, 125.0)
    elif variant == "scaled 0.5":
        image, expected = cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA), (112.0, 62.0)
    else:
        image = turn(image, -20)
        angle = np.radians(-20)  # where her face centre goes under the rotation about (256, 256)
        dx, dy = expected[0] - 256, expected[1] - 256
        expected = (
            256 + dx * np.cos(angle) + dy * np.sin(angle),
            256 - dx * np.sin(angle) + dy * np.cos(angle),
        )
    x, y = _centre(auto.boxes(image)[0].numpy())
    tolerance = 0.12 * image.shape[0]
    assert abs(x - expected[0]) < tolerance and abs(y - expected[1]) < tolerance, (x, y, expected)
