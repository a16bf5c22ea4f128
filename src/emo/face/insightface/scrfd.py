"""insightface's SCRFD face detector (an ONNX file) with emo's pre- and post-processing.

What insightface 0.7.3 does around the network (``model_zoo/retinaface.py`` and
``scrfd.py``, which compute the same for Hallo's unbatched ``scrfd_10g_bnkps.onnx``), and so
what :class:`SCRFDDetector` does:

1. **Letterbox.** The image is resized, keeping its aspect ratio, to fit the detector input
   (``det_size``, 640x640 in Hallo; a model with a fixed input size uses its own): the long
   side fills the input and the other is ``int(...)``-truncated; ``cv2.resize`` with
   ``INTER_LINEAR`` (replicated in :mod:`emo.face.insightface.warp`). It is placed at the
   top-left of a black canvas (zero padding at the right and bottom). ``scale`` is
   ``new_height / height``.
2. **Input.** ``(pixel - 127.5) / 128`` in float32, channels in RGB order, ``(1, 3, H, W)``.
   (insightface receives a BGR image and lets ``cv2.dnn.blobFromImage(swapRB=True)`` turn it
   back into RGB; emo's images are RGB already, so the network sees the same numbers.)
3. **Outputs** in the model's output order: the scores of every stride, then the box
   distances of every stride, then (``*_bnkps`` models) the keypoint distances. 9 outputs:
   strides 8, 16, 32 with 2 anchors per location; 15 outputs: strides 8 ... 128 with 1
   anchor; 6 and 10: the same without keypoints. Per stride, rows run over the locations of
   the ``(H / stride, W / stride)`` grid row by row, each location's anchors adjacent; an
   anchor's centre is ``(column, row) * stride``.
4. **Decoding.** Distances are multiplied by the stride; a box is
   ``(cx - l, cy - t, cx + r, cy + b)``, keypoint ``k`` is ``(cx + dx_k, cy + dy_k)``.
   Anchors with score >= 0.5 are kept.
5. **NMS.** Sorted by descending score, boxes divided by ``scale`` (back to image pixels),
   greedy non-maximum suppression with IoU threshold 0.4, with the ``+1`` pixel convention
   (``area = (x2 - x1 + 1) (y2 - y1 + 1)``): a box is dropped when its overlap with a kept
   one is above the threshold.

All arithmetic is float32 as in insightface (numpy's ``argsort`` orders the scores, as it
does there).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emo.errors import CheckpointError, ImageError
from emo.face.insightface.runtime import open_session
from emo.face.insightface.warp import resize_linear_rgb

__all__ = [
    "FaceDetections",
    "SCRFDDetector",
    "anchor_centers",
    "distance_to_boxes",
    "distance_to_keypoints",
    "non_maximum_suppression",
]

_INPUT_MEAN = np.float32(127.5)
_INPUT_SCALE = np.float32(1.0 / 128.0)

# outputs -> (strides, anchors per location, has keypoints)
_LAYOUTS: dict[int, tuple[tuple[int, ...], int, bool]] = {
    6: ((8, 16, 32), 2, False),
    9: ((8, 16, 32), 2, True),
    10: ((8, 16, 32, 64, 128), 1, False),
    15: ((8, 16, 32, 64, 128), 1, True),
}


@dataclass(frozen=True)
class FaceDetections:
    """The faces a detector found in one image, in insightface's order (after NMS).

    Attributes
    ----------
    boxes
        float32 ``(n, 4)``: ``x1, y1, x2, y2`` in image pixels.
    scores
        float32 ``(n,)``: detection confidence, 0..1.
    keypoints
        float32 ``(n, 5, 2)``: left eye, right eye, nose tip, left and right mouth corners
        (x, y) in image pixels; ``None`` for a detector without keypoints.
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray | None

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def areas(self) -> np.ndarray:
        """float32 ``(n,)``: ``(x2 - x1) * (y2 - y1)`` of each box."""
        return np.asarray(
            (self.boxes[:, 2] - self.boxes[:, 0]) * (self.boxes[:, 3] - self.boxes[:, 1])
        )

    def largest(self) -> int | None:
        """Index of the box of largest area (the first of equal ones), or ``None`` if empty.

        Hallo's choice: it sorts insightface's faces by this area, largest first, with a
        stable sort.
        """
        if len(self) == 0:
            return None
        return int(np.argmax(self.areas()))


def anchor_centers(height: int, width: int, stride: int, anchors: int) -> np.ndarray:
    """float32 ``(height * width * anchors, 2)``: ``(column, row) * stride`` of every anchor.

    Rows of the grid first, then columns, then the anchors of one location.
    """
    rows, columns = np.mgrid[:height, :width]
    centers = np.stack([columns, rows], axis=-1).astype(np.float32) * np.float32(stride)
    return np.repeat(centers.reshape(-1, 2), anchors, axis=0)


def distance_to_boxes(centers: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """``(m, 4)`` boxes ``x1, y1, x2, y2`` from centres ``(m, 2)`` and distances ``(m, 4)`` (l, t, r, b)."""
    x, y = centers[:, 0], centers[:, 1]
    return np.stack(
        [x - distances[:, 0], y - distances[:, 1], x + distances[:, 2], y + distances[:, 3]],
        axis=-1,
    )


def distance_to_keypoints(centers: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """``(m, k, 2)`` points from centres ``(m, 2)`` and offsets ``(m, 2 k)`` (dx, dy per point)."""
    offsets = distances.reshape(distances.shape[0], -1, 2)
    return np.asarray(centers[:, None, :] + offsets)


def non_maximum_suppression(detections: np.ndarray, threshold: float) -> list[int]:
    """Rows of ``detections`` kept by greedy NMS, best score first.

    Parameters
    ----------
    detections
        float32 ``(n, 5)``: ``x1, y1, x2, y2, score``.
    threshold
        A box whose IoU with a kept box is above this is dropped.

    Returns
    -------
    list[int]
        Kept row indices in the order they were kept (descending score).

    Notes
    -----
    Areas and intersections use the ``+1`` pixel convention of insightface (and of the
    original R-CNN code): ``(x2 - x1 + 1) * (y2 - y1 + 1)``.
    """
    x1, y1, x2, y2, scores = (detections[:, i] for i in range(5))
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort()[::-1]
    keep: list[int] = []
    while order.size > 0:
        best, rest = int(order[0]), order[1:]
        keep.append(best)
        width = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
        height = np.maximum(
            0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1
        )
        overlap = width * height
        iou = overlap / (areas[best] + areas[rest] - overlap)
        order = rest[iou <= threshold]
    return keep


class SCRFDDetector:
    """insightface's SCRFD detector (e.g. Hallo's ``scrfd_10g_bnkps.onnx``) run with onnxruntime.

    Parameters
    ----------
    session
        An ``onnxruntime.InferenceSession`` of the model (see :meth:`from_file`).
    det_size
        ``(width, height)`` of the detector input when the model's is not fixed
        (insightface's ``det_size``; Hallo: ``(640, 640)``).
    score_threshold
        Anchors scoring below this are dropped (insightface: 0.5).
    nms_threshold
        IoU above which a box is suppressed by a better one (insightface: 0.4).

    Raises
    ------
    CheckpointError
        If the model's outputs are not an SCRFD layout (6, 9, 10 or 15 outputs).
    """

    def __init__(
        self,
        session: Any,
        *,
        det_size: tuple[int, int] = (640, 640),
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
    ) -> None:
        self.session = session
        inputs = session.get_inputs()
        self._input_name = str(inputs[0].name)
        self._output_names = [str(o.name) for o in session.get_outputs()]
        layout = _LAYOUTS.get(len(self._output_names))
        if layout is None:
            raise CheckpointError(
                f"not an SCRFD face detector: {len(self._output_names)} outputs "
                f"({self._output_names}); SCRFD models have 6, 9, 10 or 15"
            )
        self.strides, self.anchors, self.has_keypoints = layout
        shape = list(inputs[0].shape)
        fixed = len(shape) == 4 and all(isinstance(v, int) and v > 0 for v in shape[2:])
        width, height = (int(shape[3]), int(shape[2])) if fixed else det_size
        #: ``(height, width)`` of the detector input.
        self.input_size: tuple[int, int] = (int(height), int(width))
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        **kwargs: Any,
    ) -> SCRFDDetector:
        """Open the ONNX file at ``path`` (``providers``/``threads``: see :func:`~emo.face.insightface.runtime.open_session`)."""
        session = open_session(path, providers=providers, threads=threads)
        try:
            return cls(session, **kwargs)
        except CheckpointError as exc:
            raise CheckpointError(f"{os.fspath(path)}: {exc}") from exc

    def letterbox(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The detector's canvas uint8 ``(H, W, 3)`` and the resize factor ``scale``.

        Parameters
        ----------
        image
            uint8 ``(h, w, 3)``.

        Returns
        -------
        tuple[numpy.ndarray, float]
            The image resized to fit ``input_size`` at the top-left of a zero canvas, and
            ``new_height / h`` (image pixels = canvas pixels / scale).
        """
        height, width = image.shape[:2]
        in_h, in_w = self.input_size
        if height / width > in_h / in_w:
            new_h = in_h
            new_w = int(new_h / (height / width))
        else:
            new_w = in_w
            new_h = int(new_w * (height / width))
        if new_h < 1 or new_w < 1:
            raise ImageError(
                f"a {width}x{height} image is too elongated for the face detector "
                f"({in_w}x{in_h} input); crop it to the face first"
            )
        canvas = np.zeros((in_h, in_w, 3), dtype=np.uint8)
        canvas[:new_h, :new_w] = resize_linear_rgb(image, (new_h, new_w))
        return canvas, new_h / height

    def network_input(self, canvas: np.ndarray) -> np.ndarray:
        """float32 ``(1, 3, H, W)``: ``(canvas - 127.5) / 128`` of the RGB canvas."""
        pixels = (canvas.astype(np.float32) - _INPUT_MEAN) * _INPUT_SCALE
        return np.ascontiguousarray(pixels.transpose(2, 0, 1)[None])

    def decode(
        self, outputs: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Anchors above the score threshold, in canvas pixels, in stride and anchor order.

        Parameters
        ----------
        outputs
            The network's outputs in its output order (a leading batch axis of 1 is
            dropped).

        Returns
        -------
        tuple
            scores float32 ``(m,)``, boxes float32 ``(m, 4)``, keypoints float32
            ``(m, 5, 2)`` or ``None``.
        """
        in_h, in_w = self.input_size
        count = len(self.strides)
        scores, boxes, points = [], [], []
        for level, stride in enumerate(self.strides):
            grid_h, grid_w = in_h // stride, in_w // stride
            rows = grid_h * grid_w * self.anchors
            score = self._rows(outputs[level], rows, 1, level).reshape(-1)
            distance = self._rows(outputs[level + count], rows, 4, level + count) * stride
            centers = anchor_centers(grid_h, grid_w, stride, self.anchors)
            kept = np.nonzero(score >= self.score_threshold)[0]
            scores.append(score[kept])
            boxes.append(distance_to_boxes(centers, distance)[kept])
            if self.has_keypoints:
                offsets = self._rows(outputs[level + 2 * count], rows, 10, level + 2 * count)
                points.append(distance_to_keypoints(centers, offsets * stride)[kept])
        keypoints = np.concatenate(points) if self.has_keypoints else None
        return np.concatenate(scores), np.concatenate(boxes), keypoints

    def _rows(self, output: np.ndarray, rows: int, columns: int, index: int) -> np.ndarray:
        """Output ``index`` as float32 ``(rows, columns)``, or an error naming it."""
        values = np.asarray(output, dtype=np.float32)
        if values.ndim == 3 and values.shape[0] == 1:
            values = values[0]
        if values.shape != (rows, columns):
            raise CheckpointError(
                f"SCRFD output {index} ({self._output_names[index]}) has shape "
                f"{tuple(np.shape(output))}; a {self.input_size[1]}x{self.input_size[0]} input "
                f"needs ({rows}, {columns})"
            )
        return values

    def detect(self, image: np.ndarray) -> FaceDetections:
        """The faces in an RGB image.

        Parameters
        ----------
        image
            uint8 ``(h, w, 3)``, RGB.

        Returns
        -------
        FaceDetections
            Boxes and keypoints in ``image`` pixels, best score first (NMS order).
        """
        pixels = _check_image(image)
        canvas, scale = self.letterbox(pixels)
        outputs = self.session.run(
            self._output_names, {self._input_name: self.network_input(canvas)}
        )
        scores, boxes, keypoints = self.decode(outputs)
        order = scores.argsort()[::-1]
        divisor = np.float32(scale)
        ranked = np.hstack([boxes / divisor, scores[:, None]]).astype(np.float32)[order]
        keep = non_maximum_suppression(ranked, self.nms_threshold)
        return FaceDetections(
            boxes=np.ascontiguousarray(ranked[keep, :4]),
            scores=np.ascontiguousarray(ranked[keep, 4]),
            keypoints=None if keypoints is None else (keypoints / divisor)[order][keep],
        )


def _check_image(image: Any) -> np.ndarray:
    """``image`` as a C-contiguous uint8 ``(h, w, 3)`` array, or an :class:`ImageError`."""
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ImageError(
            f"the face detector takes an RGB uint8 image (h, w, 3), got {pixels.dtype} "
            f"{pixels.shape}"
        )
    if pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise ImageError(f"the face detector got an empty image {pixels.shape}")
    return np.ascontiguousarray(pixels)
