"""insightface's face models (Hallo's ``face_analysis/models``) run with onnxruntime.

Hallo conditions its networks on the raw 512-value ArcFace embedding of the portrait's
largest face, computed by insightface from the SCRFD detector ``scrfd_10g_bnkps.onnx`` and
the recognition model ``glintr100.onnx``. emo runs those two ONNX files with onnxruntime
(``pip install "emo[hallo]"``) and does everything around them itself: the detector's
letterbox input, anchor decoding, NMS, the five-point similarity alignment and the OpenCV
bilinear warp (in numpy, with OpenCV's integer arithmetic). Neither insightface nor OpenCV
is needed.

==========================================  ============================================
name                                        what
==========================================  ============================================
:class:`InsightFaceEmbedder`                Hallo's embedding of a portrait (``embed``)
:class:`InsightFace`                        the largest face: box, keypoints, embedding
:class:`SCRFDDetector`                      the detector (``detect`` -> boxes, keypoints)
:class:`FaceDetections`                     what it returns
:class:`ArcFaceRecognizer`                  alignment and the recognition model
:func:`similarity_transform`                the five-point least-squares fit
:func:`warp_affine_linear_u8`               ``cv2.warpAffine`` (bilinear, black border)
==========================================  ============================================

onnxruntime is imported only when a model is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emo._lazy import lazy_getattr

if TYPE_CHECKING:
    from emo.face.insightface.arcface import ArcFaceRecognizer
    from emo.face.insightface.embedder import InsightFace, InsightFaceEmbedder
    from emo.face.insightface.geometry import ARCFACE_TEMPLATE, similarity_transform
    from emo.face.insightface.scrfd import FaceDetections, SCRFDDetector
    from emo.face.insightface.warp import warp_affine_linear_u8

__all__ = [
    "ARCFACE_TEMPLATE",
    "ArcFaceRecognizer",
    "FaceDetections",
    "InsightFace",
    "InsightFaceEmbedder",
    "SCRFDDetector",
    "similarity_transform",
    "warp_affine_linear_u8",
]

_LAZY = {
    "ARCFACE_TEMPLATE": "emo.face.insightface.geometry",
    "ArcFaceRecognizer": "emo.face.insightface.arcface",
    "FaceDetections": "emo.face.insightface.scrfd",
    "InsightFace": "emo.face.insightface.embedder",
    "InsightFaceEmbedder": "emo.face.insightface.embedder",
    "SCRFDDetector": "emo.face.insightface.scrfd",
    "similarity_transform": "emo.face.insightface.geometry",
    "warp_affine_linear_u8": "emo.face.insightface.warp",
}

__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
