"""Hallo's face embedding: insightface's detector and ArcFace model on the portrait's largest face.

Hallo (``hallo/datasets/image_processor.py``) builds insightface's
``FaceAnalysis(name="", root=pretrained_models/face_analysis)`` with
``prepare(ctx_id=0, det_size=(640, 640))``, runs it on the portrait, sorts the faces by box
area and feeds the raw 512-value ``embedding`` of the largest one to its face projection;
without a face it uses ``zeros(512)``. :class:`InsightFaceEmbedder` computes the same with
the two models the embedding needs (the other three files of the folder, landmarks and
gender/age, do not change it), run with onnxruntime and emo's own pre- and post-processing
(:mod:`~emo.face.insightface.scrfd`, :mod:`~emo.face.insightface.arcface`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from emo.errors import CheckpointError, EMOWarning
from emo.face.insightface.arcface import ArcFaceRecognizer
from emo.face.insightface.scrfd import FaceDetections, SCRFDDetector, _check_image

__all__ = [
    "HALLO_DETECTOR_FILE",
    "HALLO_FACE_MODELS",
    "HALLO_RECOGNITION_FILE",
    "InsightFace",
    "InsightFaceEmbedder",
]

#: Hallo's face model folder inside ``pretrained_models``.
HALLO_FACE_MODELS = Path("face_analysis") / "models"
HALLO_DETECTOR_FILE = "scrfd_10g_bnkps.onnx"
HALLO_RECOGNITION_FILE = "glintr100.onnx"


@dataclass(frozen=True)
class InsightFace:
    """The face Hallo embeds: the largest detected face and its embedding.

    Attributes
    ----------
    box
        float32 ``(4,)``: ``x1, y1, x2, y2`` in image pixels.
    score
        Detection confidence, 0..1.
    keypoints
        float32 ``(5, 2)``: eyes, nose tip, mouth corners (x, y) in image pixels.
    embedding
        float32 ``(d,)`` (512 for glintr100): the raw recognition output, not L2-normalised.
    """

    box: np.ndarray
    score: float
    keypoints: np.ndarray
    embedding: np.ndarray


class InsightFaceEmbedder:
    """Hallo's identity embedding of a portrait (insightface's SCRFD + ArcFace, via onnxruntime).

    Parameters
    ----------
    detector
        The face detector; it must give keypoints (a ``*_bnkps`` model).
    recognizer
        The recognition model.

    Examples
    --------
    >>> embedder = InsightFaceEmbedder.from_hallo_folder("pretrained_models")  # doctest: +SKIP
    >>> embedder.embed(portrait_rgb).shape  # doctest: +SKIP
    torch.Size([512])
    """

    def __init__(self, detector: SCRFDDetector, recognizer: ArcFaceRecognizer) -> None:
        if not detector.has_keypoints:
            raise CheckpointError(
                "the face detector gives no keypoints, so faces cannot be aligned for the "
                "recognition model; use a keypoint model such as scrfd_10g_bnkps.onnx"
            )
        self.detector = detector
        self.recognizer = recognizer

    @classmethod
    def from_files(
        cls,
        detector: str | os.PathLike[str],
        recognizer: str | os.PathLike[str],
        *,
        det_size: tuple[int, int] = (640, 640),
        providers: Sequence[str] | None = None,
        threads: int | None = None,
    ) -> InsightFaceEmbedder:
        """Open a detector and a recognition model from their ONNX files.

        Parameters
        ----------
        detector, recognizer
            The ``.onnx`` files.
        det_size
            ``(width, height)`` of the detector input (insightface's ``det_size``).
        providers, threads
            onnxruntime execution providers (default: CPU) and threads per operator.

        Raises
        ------
        CheckpointError
            If a file is missing, unreadable or of the wrong kind (names the file).
        PluginLoadError
            Without onnxruntime (``pip install "emo[hallo]"``).
        """
        missing = [os.fspath(p) for p in (detector, recognizer) if not Path(p).is_file()]
        if missing:
            raise CheckpointError(f"missing face model file(s): {', '.join(missing)}")
        return cls(
            SCRFDDetector.from_file(
                detector, providers=providers, threads=threads, det_size=det_size
            ),
            ArcFaceRecognizer.from_file(recognizer, providers=providers, threads=threads),
        )

    @classmethod
    def from_hallo_folder(
        cls,
        directory: str | os.PathLike[str],
        *,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
    ) -> InsightFaceEmbedder:
        """Open the models of Hallo's ``pretrained_models`` folder, as Hallo configures them.

        Parameters
        ----------
        directory
            Hallo's ``pretrained_models`` (holding ``face_analysis/models/``), or the
            ``face_analysis`` folder itself, or its ``models`` folder.
        providers, threads
            onnxruntime execution providers (default: CPU) and threads per operator.

        Raises
        ------
        CheckpointError
            If ``face_analysis/models`` lacks ``scrfd_10g_bnkps.onnx`` or ``glintr100.onnx``
            (the message names the missing files and where they go).
        PluginLoadError
            Without onnxruntime (``pip install "emo[hallo]"``).
        """
        models = hallo_face_models_dir(directory)
        missing = [
            name
            for name in (HALLO_DETECTOR_FILE, HALLO_RECOGNITION_FILE)
            if not (models / name).is_file()
        ]
        if missing:
            raise CheckpointError(
                f"Hallo's face embedding needs {' and '.join(missing)} in {models}; download "
                "Hallo's pretrained_models (face_analysis/models holds insightface's "
                "antelopev2 files), or pass the embedding yourself"
            )
        return cls.from_files(
            models / HALLO_DETECTOR_FILE,
            models / HALLO_RECOGNITION_FILE,
            det_size=(640, 640),
            providers=providers,
            threads=threads,
        )

    def detect(self, image: np.ndarray) -> FaceDetections:
        """All faces in an RGB uint8 image ``(h, w, 3)``, in insightface's order."""
        return self.detector.detect(image)

    def analyze(self, image: np.ndarray) -> InsightFace | None:
        """The largest face of an RGB uint8 image ``(h, w, 3)`` with its embedding, or ``None``."""
        pixels = _check_image(image)
        faces = self.detector.detect(pixels)
        index = faces.largest()
        if index is None or faces.keypoints is None:
            return None
        keypoints = faces.keypoints[index]
        return InsightFace(
            box=faces.boxes[index],
            score=float(faces.scores[index]),
            keypoints=keypoints,
            embedding=self.recognizer.embed(pixels, keypoints),
        )

    def embed(self, image: np.ndarray) -> torch.Tensor:
        """Hallo's face embedding of a portrait: float32 ``(d,)`` (512 for glintr100).

        Parameters
        ----------
        image
            uint8 ``(h, w, 3)``, RGB.

        Returns
        -------
        torch.Tensor
            The raw embedding of the largest face, or zeros with an
            :class:`~emo.errors.EMOWarning` when no face is found (Hallo's fallback).
        """
        face = self.analyze(image)
        if face is None:
            warnings.warn(
                "no face found in the portrait; the face embedding is zeros (Hallo's fallback), "
                "so the video will not keep the identity well: use a portrait with a visible face",
                EMOWarning,
                stacklevel=2,
            )
            return torch.zeros(self.embedding_dim)
        return torch.from_numpy(np.array(face.embedding, dtype=np.float32))

    @property
    def embedding_dim(self) -> int:
        """Length of an embedding (the recognition model's output size; 512 for glintr100)."""
        shape = self.recognizer.session.get_outputs()[0].shape
        size = shape[-1] if shape else None
        return int(size) if isinstance(size, int) else 512


def hallo_face_models_dir(directory: str | os.PathLike[str]) -> Path:
    """The ``face_analysis/models`` folder for Hallo's ``pretrained_models``, ``face_analysis`` or ``models`` folder."""
    root = Path(directory)
    for candidate in (root / HALLO_FACE_MODELS, root / "models", root):
        if (candidate / HALLO_DETECTOR_FILE).is_file() or (
            candidate / HALLO_RECOGNITION_FILE
        ).is_file():
            return candidate
    return root / HALLO_FACE_MODELS
