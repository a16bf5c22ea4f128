"""insightface's ArcFace recognition model (an ONNX file) with emo's alignment and input.

What insightface 0.7.3 does (``model_zoo/arcface_onnx.py``, ``utils/face_align.py``) and so
what :class:`ArcFaceRecognizer` does:

1. **Alignment.** The similarity transform that maps the detector's five keypoints onto the
   ArcFace template (:mod:`emo.face.insightface.geometry`) warps the image to the model's
   square input (112x112 for Hallo's ``glintr100.onnx``) with ``cv2.warpAffine``, bilinear,
   black outside the image (:func:`~emo.face.insightface.warp.warp_affine_linear_u8`).
2. **Input.** ``(pixel - mean) / std`` in float32 (computed as OpenCV's ``blobFromImage``
   does: ``(pixel - mean) * float32(1 / std)``), RGB, ``(1, 3, S, S)``. The normalisation is
   read from the model: a model converted from MXNet normalises inside its graph, which
   insightface recognises by a node named ``Sub...``/``_minus...`` *and* one named
   ``Mul...``/``_mul...`` among the first eight nodes; it then feeds raw pixels (mean 0,
   std 1). Any other model gets mean 127.5, std 127.5 (``glintr100.onnx`` among them).
3. **Output.** The model's single output, flattened: the raw embedding (512 values for
   glintr100), not L2-normalised (insightface's ``face.embedding``, what Hallo feeds).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from emo.errors import CheckpointError
from emo.face.insightface.geometry import arcface_template, similarity_transform
from emo.face.insightface.onnx_nodes import first_node_names
from emo.face.insightface.runtime import open_session
from emo.face.insightface.warp import warp_affine_linear_u8

__all__ = ["ArcFaceRecognizer", "input_normalisation"]


def input_normalisation(node_names: Sequence[str]) -> tuple[float, float]:
    """``(mean, std)`` of a recognition model's input, from its first node names (insightface's rule).

    Parameters
    ----------
    node_names
        The names of the graph's nodes in order; only the first eight are looked at.

    Returns
    -------
    tuple[float, float]
        ``(0.0, 1.0)`` when those hold a name starting with ``Sub`` or ``_minus`` and one
        starting with ``Mul`` or ``_mul`` (an MXNet export that normalises inside the graph),
        else ``(127.5, 127.5)``.
    """
    first = list(node_names)[:8]
    has_sub = any(name.startswith(("Sub", "_minus")) for name in first)
    has_mul = any(name.startswith(("Mul", "_mul")) for name in first)
    return (0.0, 1.0) if has_sub and has_mul else (127.5, 127.5)


class ArcFaceRecognizer:
    """insightface's ArcFace recognition model (e.g. Hallo's ``glintr100.onnx``) run with onnxruntime.

    Parameters
    ----------
    session
        An ``onnxruntime.InferenceSession`` of the model (see :meth:`from_file`).
    input_mean, input_std
        The input normalisation ``(pixel - mean) / std`` (:func:`input_normalisation`
        reads it from the model file in :meth:`from_file`).

    Raises
    ------
    CheckpointError
        If the model's input is not ``(n, 3, S, S)`` with a fixed ``S`` (a multiple of 112
        or 128) or it has more than one output.
    """

    def __init__(self, session: Any, *, input_mean: float, input_std: float) -> None:
        self.session = session
        inputs, outputs = session.get_inputs(), session.get_outputs()
        shape = list(inputs[0].shape)
        size = shape[2] if len(shape) == 4 else None
        if (
            len(shape) != 4
            or shape[1] != 3
            or not isinstance(size, int)
            or size != shape[3]
            or (size % 112 and size % 128)
        ):
            raise CheckpointError(
                f"not an ArcFace recognition model: input shape {shape}; expected "
                "(n, 3, S, S) with S a multiple of 112 or 128"
            )
        if len(outputs) != 1:
            raise CheckpointError(
                f"not an ArcFace recognition model: {len(outputs)} outputs; expected one embedding"
            )
        self._input_name = str(inputs[0].name)
        self._output_name = str(outputs[0].name)
        #: Side of the aligned square crop the model reads.
        self.crop_size: int = int(size)
        self.input_mean = float(input_mean)
        self.input_std = float(input_std)
        self._template = arcface_template(self.crop_size)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        input_mean: float | None = None,
        input_std: float | None = None,
    ) -> ArcFaceRecognizer:
        """Open the ONNX file at ``path``; the normalisation is read from it unless given."""
        session = open_session(path, providers=providers, threads=threads)
        if input_mean is None or input_std is None:
            try:
                mean, std = input_normalisation(first_node_names(path))
            except ValueError as exc:
                raise CheckpointError(
                    f"{os.fspath(path)} is not a readable ONNX model: {exc}"
                ) from exc
            input_mean = mean if input_mean is None else input_mean
            input_std = std if input_std is None else input_std
        try:
            return cls(session, input_mean=input_mean, input_std=input_std)
        except CheckpointError as exc:
            raise CheckpointError(f"{os.fspath(path)}: {exc}") from exc

    def alignment(self, keypoints: np.ndarray) -> np.ndarray:
        """float64 ``(2, 3)``: the map from image pixels to the crop for these five keypoints ``(5, 2)``."""
        return similarity_transform(keypoints, self._template)

    def align(self, image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        """The aligned crop uint8 ``(S, S, 3)`` of the face with ``keypoints`` ``(5, 2)`` in ``image`` ``(h, w, 3)``."""
        size = self.crop_size
        return warp_affine_linear_u8(image, self.alignment(keypoints), (size, size))

    def network_input(self, crops: np.ndarray) -> np.ndarray:
        """float32 ``(n, 3, S, S)`` from uint8 crops ``(n, S, S, 3)``: ``(crop - mean) / std``."""
        pixels = (crops.astype(np.float32) - np.float32(self.input_mean)) * np.float32(
            1.0 / self.input_std
        )
        return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """float32 ``(n, d)``: the raw embeddings of aligned crops uint8 ``(n, S, S, 3)``."""
        (out,) = self.session.run(
            [self._output_name], {self._input_name: self.network_input(crops)}
        )
        values = np.asarray(out, dtype=np.float32)
        return values.reshape(values.shape[0], -1)

    def embed(self, image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        """float32 ``(d,)``: the raw embedding of the face with ``keypoints`` ``(5, 2)`` in RGB ``image`` ``(h, w, 3)``."""
        return np.asarray(self.embed_crops(self.align(image, keypoints)[None])[0])
