"""Small ONNX models with the signatures of Hallo's insightface files, built with onnx's helper API.

- :func:`build_detector`: SCRFD's signature (input ``(1, 3, ?, ?)``, 9 outputs in
  insightface's order: scores, box distances, keypoint distances of strides 8, 16, 32; 2
  anchors per location) whose outputs are constants that encode chosen faces, so decoding,
  thresholding, NMS and the rescale are checked by value.
- :func:`build_recognizer`: ArcFace's signature (``(n, 3, 112, 112)`` -> ``(n, 512)``), a fixed
  linear map (a 14x14 stride-14 convolution to 8 channels, flattened): every output is a
  known weighted sum of the pixels of one 14x14 patch, so the embedding is checked against a
  numpy reference of the aligned crop.

The weights are a formula (no random generator), so any numpy and onnx version builds the
same files (the insightface golden fixture was made from them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

STRIDES = (8, 16, 32)
ANCHORS = 2
OPSET = 13


@dataclass(frozen=True)
class Face:
    """A face to encode in the detector's output, in detector-canvas pixels.

    ``stride``, ``column``, ``row``, ``anchor`` pick the output row; the box and keypoints are
    encoded as distances from that anchor's centre ``(column, row) * stride``.
    """

    score: float
    stride: int
    column: int
    row: int
    anchor: int
    box: tuple[float, float, float, float]
    keypoints: tuple[tuple[float, float], ...]

    def center(self) -> tuple[float, float]:
        return float(self.column * self.stride), float(self.row * self.stride)


def detector_outputs(faces: list[Face], size: int = 640) -> list[np.ndarray]:
    """The 9 constant outputs ``[scores x3, boxes x3, keypoints x3]`` encoding ``faces``."""
    scores, boxes, points = [], [], []
    for stride in STRIDES:
        rows = (size // stride) ** 2 * ANCHORS
        score = np.zeros((rows, 1), np.float32)
        # Background anchors: a low score and a plausible box, so only thresholding removes them.
        score[:, 0] = 0.05
        box = np.ones((rows, 4), np.float32)
        kps = np.zeros((rows, 10), np.float32)
        for face in faces:
            if face.stride != stride:
                continue
            index = (face.row * (size // stride) + face.column) * ANCHORS + face.anchor
            cx, cy = face.center()
            x1, y1, x2, y2 = face.box
            score[index, 0] = face.score
            box[index] = np.array([cx - x1, cy - y1, x2 - cx, y2 - cy], np.float32) / stride
            offsets = np.array(face.keypoints, np.float32) - np.array([cx, cy], np.float32)
            kps[index] = offsets.reshape(-1) / stride
        scores.append(score)
        boxes.append(box)
        points.append(kps)
    return scores + boxes + points


def build_detector(
    path: Path, faces: list[Face], *, size: int = 640, batched: bool = False
) -> list[np.ndarray]:
    """Write a constant SCRFD-shaped model to ``path``; return its 9 outputs (before decoding)."""
    outputs = detector_outputs(faces, size)
    names = [f"{kind}_{stride}" for kind in ("score", "bbox", "kps") for stride in STRIDES]
    nodes, infos = [], []
    for name, value in zip(names, outputs, strict=True):
        array = value[None] if batched else value
        nodes.append(
            helper.make_node(
                "Constant", [], [name], name=f"const_{name}", value=numpy_helper.from_array(array)
            )
        )
        infos.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(array.shape)))
    image = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "?", "?"])
    graph = helper.make_graph(nodes, "scrfd_like", [image], infos)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return outputs


def recognizer_weights() -> np.ndarray:
    """float32 ``(8, 3, 14, 14)``: the convolution of :func:`build_recognizer`."""
    index = np.arange(8 * 3 * 14 * 14, dtype=np.float64)
    return (
        (np.sin(index * 0.7311) * 1e-2 + np.cos(index * 0.0137) * 3e-3)
        .astype(np.float32)
        .reshape(8, 3, 14, 14)
    )


def recognizer_reference(network_input: np.ndarray) -> np.ndarray:
    """float64 ``(512,)``: the model's output for one normalised crop ``(3, 112, 112)``."""
    patches = network_input.astype(np.float64).reshape(3, 8, 14, 8, 14)
    weights = recognizer_weights().astype(np.float64)
    return np.einsum("cyixj,ocij->oyx", patches, weights).reshape(-1)


def build_recognizer(path: Path, *, mxnet_names: bool = False) -> None:
    """Write the linear ArcFace-shaped model to ``path``.

    ``mxnet_names``: start the graph with nodes named ``_minus0`` (Sub 0) and ``_mul0``
    (Mul 1), the names insightface reads as "normalisation inside the graph".
    """
    data = helper.make_tensor_value_info("data", TensorProto.FLOAT, ["None", 3, 112, 112])
    out = helper.make_tensor_value_info("fc1", TensorProto.FLOAT, ["None", 512])
    initializers = [numpy_helper.from_array(recognizer_weights(), "conv_w")]
    nodes = []
    source = "data"
    if mxnet_names:
        initializers += [
            numpy_helper.from_array(np.zeros((1,), np.float32), "zero"),
            numpy_helper.from_array(np.ones((1,), np.float32), "one"),
        ]
        nodes += [
            helper.make_node("Sub", ["data", "zero"], ["centred"], name="_minus0"),
            helper.make_node("Mul", ["centred", "one"], ["scaled"], name="_mul0"),
        ]
        source = "scaled"
    nodes += [
        helper.make_node(
            "Conv",
            [source, "conv_w"],
            ["features"],
            name="Conv_0",
            kernel_shape=[14, 14],
            strides=[14, 14],
        ),
        helper.make_node("Flatten", ["features"], ["fc1"], name="Flatten_1", axis=1),
    ]
    graph = helper.make_graph(nodes, "arcface_like", [data], [out], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.save(model, str(path))


# The astronaut (scikit-image's 512x512 portrait) on the 640x640 canvas (scale 1.25): her face
# (where dlib's landmarks put it) as a stride-16 anchor, a weaker overlapping duplicate that
# NMS removes, a smaller second face with a higher score, and one anchor under the threshold.
ASTRONAUT_FACES = [
    Face(
        0.91,
        16,
        17,
        9,
        1,
        (206.0, 70.0, 356.0, 240.0),
        ((254.0, 127.0), (308.5, 130.0), (281.0, 159.0), (251.0, 175.0), (306.0, 176.25)),
    ),
    Face(
        0.83,
        8,
        35,
        19,
        0,
        (209.0, 73.0, 358.0, 243.0),
        ((256.0, 129.0), (310.5, 132.0), (283.0, 161.0), (253.0, 177.0), (308.0, 178.25)),
    ),
    Face(
        0.97,
        32,
        15,
        14,
        1,
        (440.0, 420.0, 520.0, 520.0),
        ((465.0, 455.0), (495.0, 455.0), (480.0, 475.0), (468.0, 495.0), (492.0, 495.0)),
    ),
    Face(
        0.45,
        8,
        10,
        60,
        1,
        (60.0, 460.0, 120.0, 540.0),
        ((75.0, 490.0), (105.0, 490.0), (90.0, 505.0), (78.0, 520.0), (102.0, 520.0)),
    ),
]
