"""emo's protobuf walk for node names, against the onnx package's own parser."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from insightface_onnx_models import build_detector, build_recognizer  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from emo.face.insightface.arcface import input_normalisation  # noqa: E402
from emo.face.insightface.onnx_nodes import first_node_names  # noqa: E402


def onnx_names(path: Path, count: int = 8) -> list[str]:
    return [node.name for node in onnx.load(str(path)).graph.node[:count]]


def chain_model(path: Path, names: list[str]) -> None:
    """A chain of Identity nodes with these names, a weight initializer and a doc string."""
    nodes, source = [], "x"
    for index, name in enumerate(names):
        nodes.append(helper.make_node("Identity", [source], [f"t{index}"], name=name))
        source = f"t{index}"
    nodes.append(helper.make_node("Add", [source, "w"], ["y"], name="final_add"))
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        initializer=[numpy_helper.from_array(np.arange(4, dtype=np.float32), "w")],
        doc_string="a model with a graph doc string",
    )
    model = helper.make_model(graph, producer_name="emo-tests", doc_string="top-level doc")
    onnx.save(model, str(path))


def test_names_equal_onnx_parser(tmp_path: Path) -> None:
    names = ["Sub_0", "", "_mul3", "Conv_12", "ü-unicode", "x" * 300, "n6", "n7", "n8", "n9"]
    chain_model(tmp_path / "chain.onnx", names)
    assert first_node_names(tmp_path / "chain.onnx") == onnx_names(tmp_path / "chain.onnx")
    assert first_node_names(tmp_path / "chain.onnx", count=20) == onnx_names(
        tmp_path / "chain.onnx", 20
    )
    build_recognizer(tmp_path / "rec.onnx", mxnet_names=True)
    assert first_node_names(tmp_path / "rec.onnx") == ["_minus0", "_mul0", "Conv_0", "Flatten_1"]
    build_detector(tmp_path / "det.onnx", [])
    assert first_node_names(tmp_path / "det.onnx") == onnx_names(tmp_path / "det.onnx")


def test_insightface_normalisation_rule() -> None:
    assert input_normalisation(["_minus0", "_mul0", "conv"]) == (0.0, 1.0)
    assert input_normalisation(["Sub_1", "x", "Mul_2"]) == (0.0, 1.0)
    assert input_normalisation(["Sub_1", "Conv_2"]) == (127.5, 127.5)  # both are needed
    assert input_normalisation(["Mul_1", "Conv_2"]) == (127.5, 127.5)
    # Only the first eight nodes count.
    assert input_normalisation([f"n{i}" for i in range(8)] + ["Sub", "Mul"]) == (127.5, 127.5)


def test_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match="no ONNX graph"):
        first_node_names(tmp_path / "empty.onnx")
    chain_model(tmp_path / "chain.onnx", ["a", "b"])
    data = (tmp_path / "chain.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) - 7])
    with pytest.raises(ValueError):
        first_node_names(tmp_path / "cut.onnx")
