"""The face mask a pipeline gets when none is named: ``auto`` if it can run here, else ``full``."""

from __future__ import annotations

import warnings

from emo import plugins
from emo.errors import EMOWarning, PluginLoadError
from emo.face_masks.base import FaceMaskBase

__all__ = ["default_face_mask"]


def default_face_mask() -> FaceMaskBase:
    """The ``auto`` face mask, or the ``full`` one (with an :class:`~emo.errors.EMOWarning`).

    ``auto`` needs a face detector from the ``face`` extra (dlib or OpenCV). On a plain
    install the whole portrait becomes the face region instead, so
    ``EMOPipeline.from_preset("tiny")`` works everywhere; install ``emo[face]`` for
    automatic face boxes. Naming ``face_mask="auto"`` explicitly still fails with the
    install hint.

    Returns
    -------
    FaceMaskBase
        A face-mask plugin instance.
    """
    try:
        mask: FaceMaskBase = plugins.create("face_mask", "auto")
    except PluginLoadError as exc:
        warnings.warn(
            f"no face detector is installed ({exc}); the default face mask falls back to "
            "'full' (the whole portrait is the face region). Install emo[face] for automatic "
            "face boxes, or pass face_mask='full' or a BoxMask to silence this warning",
            EMOWarning,
            stacklevel=3,
        )
        mask = plugins.create("face_mask", "full")
    return mask
