"""Hallo's face embedding from a Hallo-layout folder of small SCRFD/ArcFace-shaped ONNX models.

The recognition model is a fixed linear map, so the embedding is checked against a numpy
reference: the keypoints' similarity fit (complex least squares), OpenCV's warp of the crop,
the input normalisation and the map itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
from insightface_onnx_models import (
    ASTRONAUT_FACES,
    build_detector,
    build_recognizer,
    recognizer_reference,
)
from test_insightface_geometry import closed_form

from emo.errors import CheckpointError, EMOWarning, PluginLoadError
from emo.face.insightface import ARCFACE_TEMPLATE, InsightFaceEmbedder


def hallo_folder(root: Path, *, faces: list = ASTRONAUT_FACES, mxnet_names: bool = False) -> Path:
    models = root / "face_analysis" / "models"
    models.mkdir(parents=True)
    build_detector(models / "scrfd_10g_bnkps.onnx", faces)
    build_recognizer(models / "glintr100.onnx", mxnet_names=mxnet_names)
    for other in (
        "1k3d68.onnx",
        "2d106det.onnx",
        "genderage.onnx",
    ):  # present in Hallo's folder, unused
        (models / other).write_bytes(b"")
    return root


def portrait() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return np.asarray(data.astronaut())


def reference_embedding(
    image: np.ndarray, keypoints: np.ndarray, mean: float, std: float
) -> np.ndarray:
    cv2 = pytest.importorskip("cv2")
    matrix = closed_form(keypoints, ARCFACE_TEMPLATE)
    crop = cv2.warpAffine(image, matrix, (112, 112), borderValue=0.0)
    normalised = (crop.astype(np.float64) - mean) / std
    return recognizer_reference(normalised.transpose(2, 0, 1))


@pytest.mark.parametrize(("mxnet_names", "mean", "std"), [(False, 127.5, 127.5), (True, 0.0, 1.0)])
def test_embedding_of_the_largest_face_by_value(
    tmp_path: Path, mxnet_names: bool, mean: float, std: float
) -> None:
    embedder = InsightFaceEmbedder.from_hallo_folder(
        hallo_folder(tmp_path, mxnet_names=mxnet_names)
    )
    assert (embedder.recognizer.input_mean, embedder.recognizer.input_std) == (mean, std)
    image = portrait()
    face = embedder.analyze(image)
    assert face is not None
    # The astronaut's face (0.91), not the higher-scoring small face: Hallo takes the largest box.
    np.testing.assert_allclose(face.box, np.array(ASTRONAUT_FACES[0].box) / 1.25, rtol=1e-6)
    assert face.score == pytest.approx(0.91)
    np.testing.assert_allclose(
        face.keypoints, np.array(ASTRONAUT_FACES[0].keypoints) / 1.25, rtol=1e-6
    )

    embedding = embedder.embed(image)
    assert isinstance(embedding, torch.Tensor) and embedding.dtype == torch.float32
    assert embedding.shape == (512,) == (embedder.embedding_dim,)
    reference = reference_embedding(image, face.keypoints, mean, std)
    np.testing.assert_allclose(
        embedding.numpy(), reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max()
    )
    # Raw, not L2-normalised.
    assert abs(float(embedding.norm()) - 1.0) > 0.1


def test_no_face_gives_zeros_with_a_warning(tmp_path: Path) -> None:
    embedder = InsightFaceEmbedder.from_hallo_folder(
        hallo_folder(tmp_path, faces=ASTRONAUT_FACES[3:])
    )
    assert embedder.analyze(portrait()) is None
    with pytest.warns(EMOWarning, match="no face"):
        embedding = embedder.embed(portrait())
    assert torch.equal(embedding, torch.zeros(512))


def test_folder_forms_and_missing_files(tmp_path: Path) -> None:
    root = hallo_folder(tmp_path / "pretrained_models")
    for folder in (root, root / "face_analysis", root / "face_analysis" / "models"):
        assert InsightFaceEmbedder.from_hallo_folder(folder).recognizer.crop_size == 112
    with pytest.raises(CheckpointError) as missing_both:
        InsightFaceEmbedder.from_hallo_folder(tmp_path / "empty")
    message = str(missing_both.value)
    assert "scrfd_10g_bnkps.onnx" in message and "glintr100.onnx" in message
    assert str(Path("face_analysis") / "models") in message
    (root / "face_analysis" / "models" / "glintr100.onnx").unlink()
    with pytest.raises(CheckpointError, match="glintr100.onnx") as missing_one:
        InsightFaceEmbedder.from_hallo_folder(root)
    assert "scrfd_10g_bnkps.onnx" not in str(missing_one.value)


def test_wrong_model_kinds(tmp_path: Path) -> None:
    build_detector(tmp_path / "det.onnx", ASTRONAUT_FACES)
    build_recognizer(tmp_path / "rec.onnx")
    with pytest.raises(CheckpointError, match=r"rec.onnx: not an SCRFD face detector"):
        InsightFaceEmbedder.from_files(tmp_path / "rec.onnx", tmp_path / "rec.onnx")
    with pytest.raises(CheckpointError, match=r"det.onnx: not an ArcFace recognition model"):
        InsightFaceEmbedder.from_files(tmp_path / "det.onnx", tmp_path / "det.onnx")


def test_without_onnxruntime_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = hallo_folder(tmp_path)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(PluginLoadError, match=r'pip install "emo\[hallo\]"'):
        InsightFaceEmbedder.from_hallo_folder(root)


def test_importing_does_not_import_onnxruntime() -> None:
    code = (
        "import sys, emo, emo.face.insightface as m\n"
        "from emo.face.insightface import InsightFaceEmbedder\n"
        "assert 'onnxruntime' not in sys.modules and 'onnx' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
