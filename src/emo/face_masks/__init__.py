"""Face-region masks: where the face is in each frame, as a binary mask.

================  =======================================================
name              class
================  =======================================================
``full``          :class:`~emo.face_masks.simple.FullFrameMask`
``box``           :class:`~emo.face_masks.simple.BoxMask`
``auto``          :class:`~emo.face_masks.opencv.AutoFaceMask` (extra ``face``)
================  =======================================================

Build one by name with ``emo.plugins.create("face_mask", "auto")``. OpenCV is
imported only when an :class:`~emo.face_masks.opencv.AutoFaceMask` is built.

Hallo's face region and soft full/face/lip masks: :mod:`emo.face_masks.hallo`
(:func:`hallo_masks_from_landmarks`, :func:`hallo_masks_from_image`, ...).
"""

from emo.face_masks.base import (
    FaceMask,
    FaceMaskBase,
    as_frames,
    box_to_mask,
    pad_box,
    union_box,
)
from emo.face_masks.hallo import (
    HalloMaskImages,
    HalloMasks,
    hallo_masks,
    hallo_masks_from_boxes,
    hallo_masks_from_image,
    hallo_masks_from_landmarks,
)
from emo.face_masks.opencv import AutoFaceMask
from emo.face_masks.simple import BoxMask, FullFrameMask

__all__ = [
    "AutoFaceMask",
    "BoxMask",
    "FaceMask",
    "FaceMaskBase",
    "FullFrameMask",
    "HalloMaskImages",
    "HalloMasks",
    "as_frames",
    "box_to_mask",
    "hallo_masks",
    "hallo_masks_from_boxes",
    "hallo_masks_from_image",
    "hallo_masks_from_landmarks",
    "pad_box",
    "union_box",
]
