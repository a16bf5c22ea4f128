"""Small ONNX models with the signature of an MDX-Net vocal model, built with onnx's helper API.

An MDX-Net model maps a spectrum ``(batch, 4, dim_f, dim_t)`` to a spectrum of the same
shape. The models here do known things to it, so what a separation returns is known:

- ``identity``: the spectrum passes through (the separation gives back the band-limited mix);
- ``scale``: times a constant (the output scales with it);
- ``mix``: a fixed 4x4 channel mix, a per-frequency gain and ``0.05 * tanh`` of the input
  (times ``factor``), so a mix-up of the channel layout, of the bins or of the peak scaling changes the result
  (used for the golden comparison with audio-separator).

The weights are formulas (no random generator), so any numpy and onnx version builds the same
files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

OPSET = 13


def mix_weights(dim_f: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``mix`` model's ``(4, 4, 1, 1)`` channel mix and ``(1, 1, dim_f, 1)`` frequency gain."""
    o, i = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    mix = 0.25 * np.cos(1.0 + 4 * o + i) + 0.6 * (o == i)
    f = np.arange(dim_f) / dim_f
    gain = 0.55 + 0.45 * np.cos(3 * np.pi * f)
    return mix.astype(np.float32)[:, :, None, None], gain.astype(np.float32)[None, None, :, None]


def mix_reference(spectrum: np.ndarray, factor: float = 1.0) -> np.ndarray:
    """What the ``mix`` model computes, in numpy: ``(b, 4, f, t)`` -> ``(b, 4, f, t)``."""
    mix, gain = mix_weights(spectrum.shape[2])
    mixed = np.einsum("oi,bift->boft", mix[:, :, 0, 0], spectrum)
    return (mixed * gain + np.float32(0.05) * np.tanh(spectrum)) * np.float32(factor)


def build_mdx_model(
    path: Path,
    kind: str,
    *,
    dim_f: int,
    dim_t: int,
    factor: float = 1.0,
    input_shape: Sequence[int | str] | None = None,
    output_shape: Sequence[int | str] | None = None,
) -> Path:
    """Write an MDX-Net-shaped model to ``path``.

    Parameters
    ----------
    kind
        ``identity``, ``scale`` (times ``factor``), ``mix`` (its output times ``factor``) or
        ``crop`` (drops the last frequency bin: an output of the wrong shape).
    input_shape
        The declared input shape (default ``("batch", 4, dim_f, dim_t)``).
    """
    shape = list(input_shape) if input_shape is not None else ["batch", 4, dim_f, dim_t]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)]
    init: list[onnx.TensorProto] = []
    if kind == "identity":
        nodes = [helper.make_node("Identity", ["input"], ["output"])]
    elif kind == "scale":
        init.append(numpy_helper.from_array(np.array(factor, np.float32), "factor"))
        nodes = [helper.make_node("Mul", ["input", "factor"], ["output"])]
    elif kind == "mix":
        mix, gain = mix_weights(dim_f)
        init += [
            numpy_helper.from_array(mix, "mix"),
            numpy_helper.from_array(gain, "gain"),
            numpy_helper.from_array(np.array(0.05, np.float32), "small"),
        ]
        nodes = [
            helper.make_node("Conv", ["input", "mix"], ["mixed"]),
            helper.make_node("Mul", ["mixed", "gain"], ["shaped"]),
            helper.make_node("Tanh", ["input"], ["bent"]),
            helper.make_node("Mul", ["bent", "small"], ["bent_small"]),
            helper.make_node("Add", ["shaped", "bent_small"], ["summed"]),
            helper.make_node("Mul", ["summed", "factor"], ["output"]),
        ]
        init.append(numpy_helper.from_array(np.array(factor, np.float32), "factor"))
    elif kind == "crop":
        init += [
            numpy_helper.from_array(np.array([0], np.int64), "starts"),
            numpy_helper.from_array(np.array([dim_f - 1], np.int64), "ends"),
            numpy_helper.from_array(np.array([2], np.int64), "axes"),
        ]
        nodes = [helper.make_node("Slice", ["input", "starts", "ends", "axes"], ["output"])]
    else:
        raise ValueError(kind)
    out_shape = list(output_shape) if output_shape is not None else shape
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)]
    graph = helper.make_graph(nodes, f"mdx_{kind}", inputs, outputs, init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def golden_mix(samples: int, rate: int = 44100) -> np.ndarray:
    """A deterministic stereo "song": ``(2, samples)`` float32 with a peak of about 1.3.

    Tones across the band (10 Hz and 19 kHz included: below the zeroed bins and above
    ``dim_f``), a chirp panned left, a beat panned right and a gliding "voice" in the centre.
    """
    t = np.arange(samples, dtype=np.float64) / rate
    voice = 0.35 * np.sin(2 * np.pi * (220 * t + 40 * np.sin(2 * np.pi * 0.7 * t)))
    chirp = 0.25 * np.sin(2 * np.pi * (300 * t + 400 * t**2))
    beat = 0.3 * np.sin(2 * np.pi * 90 * t) * (np.sin(2 * np.pi * 2 * t) > 0.6)
    tones = sum(
        a * np.sin(2 * np.pi * f * t + p)
        for a, f, p in (
            (0.1, 10.0, 0.3),
            (0.08, 1234.5, 1.0),
            (0.06, 7000.0, 2.0),
            (0.05, 19000.0, 0.5),
        )
    )
    left = voice + chirp + 0.4 * beat + tones
    right = voice + 0.4 * chirp + beat + 0.7 * tones
    return np.stack([left, right]).astype(np.float32)
