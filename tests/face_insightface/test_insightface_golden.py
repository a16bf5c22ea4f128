"""emo's face embedding against insightface 0.7.3 itself, run as Hallo runs it.

``tests/fixtures/insightface_golden/golden.npz`` holds what insightface 0.7.3 (with Hallo's
OpenCV 4.9, numpy 1.26, scikit-image 0.22, onnxruntime 1.18) returned for the same small
ONNX models on scikit-image's astronaut in five sizes (``make_golden.py`` beside it says how
it was made). Measured differences, and so the tolerances:

- boxes, keypoints, scores, face count and order: equal (no tolerance);
- the alignment matrix: insightface fits it partly in float32 (scikit-image on float32
  keypoints), emo in float64: at most 9e-6 apart; insightface's own matrix moves by 5e-6
  between numpy 1.26 and 2.4;
- the aligned crop: equal for three of the five images; on the 1024 and 249x158 images
  that matrix difference moves 1 and 6 of the 37,632 values by at most 2 grey levels;
- the embedding of insightface's own crop: equal to float32 rounding; of emo's crop: within
  0.1 % of the largest value.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
data = pytest.importorskip("skimage.data")
from insightface_onnx_models import ASTRONAUT_FACES, build_detector, build_recognizer  # noqa: E402

from emo.face.insightface import InsightFaceEmbedder  # noqa: E402

GOLDEN = Path(__file__).parents[1] / "fixtures" / "insightface_golden" / "golden.npz"

VARIANTS = {
    "plain": (False, ASTRONAUT_FACES),
    "mxnet": (True, ASTRONAUT_FACES),
    "noface": (False, ASTRONAUT_FACES[3:]),
}


def images() -> dict[str, np.ndarray]:
    """The same images as ``make_golden.py`` (slicing and repeating only)."""
    astronaut = np.asarray(data.astronaut())
    return {
        "square": astronaut,
        "tall": np.ascontiguousarray(astronaut[:, 40:440]),
        "wide": np.ascontiguousarray(astronaut[:300]),
        "double": np.repeat(np.repeat(astronaut, 2, axis=0), 2, axis=1),
        "odd": np.ascontiguousarray(astronaut[3:500:2, 7:480:3]),
    }


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN, allow_pickle=False) as archive:
        return dict(archive)


@pytest.fixture(scope="module")
def embedders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, InsightFaceEmbedder]:
    made = {}
    for variant, (mxnet_names, faces) in VARIANTS.items():
        models = tmp_path_factory.mktemp(variant) / "face_analysis" / "models"
        models.mkdir(parents=True)
        build_detector(models / "scrfd_10g_bnkps.onnx", faces)
        build_recognizer(models / "glintr100.onnx", mxnet_names=mxnet_names)
        made[variant] = InsightFaceEmbedder.from_hallo_folder(models.parent.parent)
    return made


CASES = [(v, n) for v in ("plain",) for n in images()] + [
    (v, n) for v in ("mxnet", "noface") for n in ("square", "odd")
]


@pytest.mark.parametrize(("variant", "name"), CASES)
def test_equals_insightface(
    golden: dict[str, np.ndarray],
    embedders: dict[str, InsightFaceEmbedder],
    variant: str,
    name: str,
) -> None:
    key = f"{variant}/{name}"
    image = images()[name]
    assert str(golden[f"{key}/sha256"]) == hashlib.sha256(image.tobytes()).hexdigest(), (
        "scikit-image's astronaut changed; the golden file no longer applies"
    )
    embedder = embedders[variant]
    faces = embedder.detect(image)
    assert len(faces) == int(golden[f"{key}/count"])
    face = embedder.analyze(image)
    if len(faces) == 0:
        assert face is None
        return
    np.testing.assert_array_equal(faces.boxes, golden[f"{key}/boxes"])
    np.testing.assert_array_equal(faces.scores, golden[f"{key}/scores"])
    np.testing.assert_array_equal(faces.keypoints, golden[f"{key}/keypoints"])
    assert face is not None
    np.testing.assert_array_equal(face.box, golden[f"{key}/largest_box"])

    recognizer = embedder.recognizer
    np.testing.assert_allclose(
        recognizer.alignment(face.keypoints), golden[f"{key}/largest_matrix"], atol=2e-5
    )
    crop = recognizer.align(image, face.keypoints)
    difference = np.abs(crop.astype(np.int64) - golden[f"{key}/largest_crop_rgb"])
    assert difference.max() <= 2 and np.count_nonzero(difference) <= 10

    expected = golden[f"{key}/largest_embedding"]
    scale = float(np.abs(expected).max())
    of_their_crop = recognizer.embed_crops(golden[f"{key}/largest_crop_rgb"][None])[0]
    np.testing.assert_allclose(of_their_crop, expected, rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(embedder.embed(image).numpy(), expected, rtol=0, atol=1e-3 * scale)
