"""The SCRFD detector's pre- and post-processing on constant-output models of SCRFD's signature.

The models' outputs encode chosen faces (see ``insightface_onnx_models.py``), so what the
detector returns is known in advance: the letterbox scale, the decoded boxes and keypoints,
the anchors dropped by the 0.5 threshold and the duplicate removed by NMS.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
from insightface_onnx_models import ASTRONAUT_FACES, Face, build_detector

from emo.errors import CheckpointError, ImageError
from emo.face.insightface.scrfd import (
    SCRFDDetector,
    anchor_centers,
    non_maximum_suppression,
)


def expected(faces: list[Face], scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes, keypoints, scores in image pixels of the faces that survive, best score first."""
    kept = [f for f in faces if f.score >= 0.5 and f is not ASTRONAUT_FACES[1]]
    kept.sort(key=lambda f: -f.score)
    boxes = np.array([f.box for f in kept], np.float32) / np.float32(scale)
    points = np.array([f.keypoints for f in kept], np.float32) / np.float32(scale)
    return boxes, points, np.array([f.score for f in kept], np.float32)


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize(
    ("height", "width", "scale"),
    [(512, 512, 1.25), (640, 640, 1.0), (1280, 960, 0.5), (300, 512, 1.25), (500, 200, 1.28)],
)
def test_decodes_thresholds_suppresses_and_rescales(
    tmp_path: Path, batched: bool, height: int, width: int, scale: float
) -> None:
    build_detector(tmp_path / "det.onnx", ASTRONAUT_FACES, batched=batched)
    detector = SCRFDDetector.from_file(tmp_path / "det.onnx")
    assert detector.input_size == (640, 640) and detector.has_keypoints
    image = np.full((height, width, 3), 90, np.uint8)
    canvas, factor = detector.letterbox(image)
    assert factor == pytest.approx(scale)
    # The resized image sits top-left; the rest of the canvas is black.
    new_h, new_w = round(height * factor), int(width * factor)
    assert (canvas[: new_h - 1, : new_w - 1] == 90).all()
    assert not canvas[new_h:].any() and not canvas[:, new_w:].any()

    faces = detector.detect(image)
    boxes, points, scores = expected(ASTRONAUT_FACES, factor)
    np.testing.assert_array_equal(faces.scores, scores)
    np.testing.assert_allclose(faces.boxes, boxes, rtol=1e-6)
    assert faces.keypoints is not None
    np.testing.assert_allclose(faces.keypoints, points, rtol=1e-6)
    # The astronaut's face is the largest box although the small face scores higher.
    assert faces.largest() == 1


def test_network_input_is_opencv_blob_of_the_bgr_image(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    build_detector(tmp_path / "det.onnx", [])
    detector = SCRFDDetector.from_file(tmp_path / "det.onnx")
    rng = np.random.default_rng(0)
    canvas = rng.integers(0, 256, (640, 640, 3)).astype(np.uint8)
    # insightface: cv2.dnn.blobFromImage(bgr, 1/128, (640, 640), 127.5, swapRB=True).
    bgr = np.ascontiguousarray(canvas[..., ::-1])
    blob = cv2.dnn.blobFromImage(bgr, 1.0 / 128, (640, 640), (127.5, 127.5, 127.5), swapRB=True)
    np.testing.assert_array_equal(detector.network_input(canvas), blob)


def test_no_face_above_the_threshold(tmp_path: Path) -> None:
    build_detector(tmp_path / "det.onnx", ASTRONAUT_FACES[3:])  # one face scoring 0.45
    faces = SCRFDDetector.from_file(tmp_path / "det.onnx").detect(np.zeros((64, 64, 3), np.uint8))
    assert len(faces) == 0 and faces.largest() is None
    assert (
        faces.boxes.shape == (0, 4)
        and faces.keypoints is not None
        and faces.keypoints.shape == (0, 5, 2)
    )


def test_anchor_centres_run_over_rows_then_columns_then_anchors() -> None:
    centers = anchor_centers(2, 3, 16, 2)
    expected = [[0, 0], [0, 0], [16, 0], [16, 0], [32, 0], [32, 0]]
    expected += [[0, 16], [0, 16], [16, 16], [16, 16], [32, 16], [32, 16]]
    np.testing.assert_array_equal(centers, np.array(expected, np.float32))


def iou_plus_one(a: np.ndarray, b: np.ndarray) -> float:
    """IoU with the +1 pixel convention, computed directly."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = width * height
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return float(inter / (area(a) + area(b) - inter))


def test_nms_equals_a_brute_force_greedy_pass() -> None:
    rng = np.random.default_rng(3)
    for _ in range(30):
        corners = rng.uniform(0, 200, (40, 2))
        sizes = rng.uniform(5, 80, (40, 2))
        scores = rng.permutation(np.linspace(0.5, 0.99, 40))
        dets = np.hstack([corners, corners + sizes, scores[:, None]]).astype(np.float32)
        keep: list[int] = []
        for index in np.argsort(-scores):
            if all(iou_plus_one(dets[index], dets[k]) <= 0.4 for k in keep):
                keep.append(int(index))
        assert non_maximum_suppression(dets, 0.4) == keep


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        SCRFDDetector.from_file(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="junk.onnx"):
        SCRFDDetector.from_file(tmp_path / "junk.onnx")
    build_detector(tmp_path / "det.onnx", [])
    detector = SCRFDDetector.from_file(tmp_path / "det.onnx")
    with pytest.raises(ImageError, match="RGB uint8"):
        detector.detect(np.zeros((8, 8), np.uint8))
    with pytest.raises(ImageError, match="elongated"):
        detector.detect(np.zeros((4000, 1, 3), np.uint8))
    small = SCRFDDetector.from_file(tmp_path / "det.onnx", det_size=(320, 320))
    with pytest.raises(CheckpointError, match=r"needs \(3200, 1\)"):
        small.detect(np.zeros((8, 8, 3), np.uint8))
