"""Identity embedding of a face: dlib's ResNet face descriptor.

The network (``dlib_face_recognition_resnet_model_v1``, shipped in ``face-recognition-models``)
is a 29-layer ResNet that maps a face, aligned on its landmarks to a 150x150 chip, to a 128-D
vector; dlib trained it on about 3 million faces of 7,485 people so that faces of one person
lie within Euclidean distance 0.6 of each other (99.38% accuracy on the LFW benchmark, as
dlib reports). emo compares two faces by the cosine similarity of their vectors (1 = same
direction) and reports the Euclidean distance with dlib's 0.6 rule beside it.
"""

from __future__ import annotations

import numpy as np

from emo.errors import FaceNotFoundError
from emo.face import _models
from emo.face.analyzer import FaceAnalyzer
from emo.face.result import FaceTrack

__all__ = ["SAME_PERSON_DISTANCE", "FaceEmbedder", "cosine_similarity"]

SAME_PERSON_DISTANCE = 0.6


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of vectors ``(..., d)`` and ``(..., d)`` -> ``(...)``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return np.asarray((a * b).sum(axis=-1) / np.maximum(norms, 1e-12))


class FaceEmbedder:
    """128-D identity vectors of the faces in frames (dlib's ResNet face descriptor).

    Parameters
    ----------
    analyzer
        The analyzer that finds the faces and their landmarks (default: a new dlib one).

    Raises
    ------
    PluginLoadError
        If dlib or its models are missing (``pip install "emo[face]"``).
    """

    def __init__(self, analyzer: FaceAnalyzer | None = None) -> None:
        self.analyzer = analyzer if analyzer is not None else FaceAnalyzer("dlib")
        if self.analyzer.backend != "dlib":
            self.analyzer = FaceAnalyzer("dlib")
        self._net = _models.load_descriptor()

    def embed_landmarks(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The vector ``(128,)`` of the face with these 68 landmarks in uint8 RGB ``image`` ``(h, w, 3)``."""
        dlib = _models.import_dlib()
        points = [dlib.point(round(float(x)), round(float(y))) for x, y in landmarks]
        xs, ys = landmarks[:, 0], landmarks[:, 1]
        rect = dlib.rectangle(
            round(float(xs.min())),
            round(float(ys.min())),
            round(float(xs.max())),
            round(float(ys.max())),
        )
        shape = dlib.full_object_detection(rect, points)
        return np.asarray(
            self._net.compute_face_descriptor(np.ascontiguousarray(image), shape), dtype=np.float32
        )

    def embed(self, frames: np.ndarray, track: FaceTrack | None = None) -> np.ndarray:
        """Vectors ``(f, 128)`` of the face in each frame; NaN rows where no face is found.

        Parameters
        ----------
        frames
            uint8 ``(f, h, w, 3)`` or one image (see :meth:`FaceAnalyzer.analyze`).
        track
            The frames' analysis when already done (saves detecting again).
        """
        from emo.face._frames import as_rgb_frames

        array = as_rgb_frames(frames)
        if track is None:
            track = self.analyzer.analyze(array)
        out = np.full((len(array), 128), np.nan, dtype=np.float32)
        for i, frame in enumerate(array):
            if track.found[i] and np.isfinite(track.landmarks[i]).all():
                out[i] = self.embed_landmarks(frame, track.landmarks[i].astype(np.float64))
        return out

    def embed_one(self, image: np.ndarray) -> np.ndarray:
        """The vector ``(128,)`` of the (largest) face of one image.

        Raises
        ------
        FaceNotFoundError
            If the image has no face.
        """
        vector: np.ndarray = self.embed(image)[0]
        if not np.isfinite(vector).all():
            raise FaceNotFoundError(
                "no face found in the reference image; give a portrait with a visible face "
                "at least about 40 px wide"
            )
        return vector
