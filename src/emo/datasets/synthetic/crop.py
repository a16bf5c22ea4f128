"""Synthetic clips cropped around the face, as a face-crop model sees its training data."""

from __future__ import annotations

import dataclasses

import numpy as np

from emo.datasets.synthetic.clip import SyntheticClip
from emo.errors import InputError

__all__ = ["crop_to_face", "face_crop_box"]


def face_crop_box(clip: SyntheticClip, grow: float) -> tuple[float, float, float, float]:
    """The square crop box around the clip's face region, in pixels of its frames.

    The face region is the union of the per-frame face boxes; the box is its longer
    side grown ``grow`` times around its centre, shifted to stay inside the frame.

    Raises
    ------
    InputError
        If ``grow`` is not positive.
    """
    from emo.io.image import expand_box_to_aspect

    if not grow > 0:
        raise InputError(f"grow must be a positive number, got {grow!r}")
    boxes = np.asarray(clip.face_box, dtype=np.float64)
    x0, y0 = float(boxes[:, 0].min()), float(boxes[:, 1].min())
    x1, y1 = float(boxes[:, 2].max()), float(boxes[:, 3].max())
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * grow / 2
    height, width = clip.frames.shape[1:3]
    box = expand_box_to_aspect((cx - half, cy - half, cx + half, cy + half), 1.0, height, width)
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def crop_to_face(clip: SyntheticClip, resolution: int, grow: float = 1.3) -> SyntheticClip:
    """The clip cropped around its face region and resized to ``resolution`` pixels, square.

    Every frame is cropped with :func:`face_crop_box` and resized with
    :func:`emo.io.image.crop_and_resize`. The returned clip's face boxes are the whole
    frame (the face fills it), so a model trained on such clips uses the ``full``
    face mask; the rest of the truth (mouth, pose, speed, audio) is unchanged.

    Parameters
    ----------
    clip
        A clip from :func:`~emo.datasets.synthetic.make_clip`.
    resolution
        Side of the output frames in pixels.
    grow
        Growth of the face region before cropping (1.0: the head touches the edges).

    Returns
    -------
    SyntheticClip
        Frames ``(f, resolution, resolution, 3)`` uint8.
    """
    from emo.io.image import crop_and_resize

    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 8:
        raise InputError(f"resolution must be an int >= 8 pixels, got {resolution!r}")
    box = face_crop_box(clip, grow)
    frames = np.stack([crop_and_resize(f, box, resolution, resolution) for f in clip.frames])
    full = np.tile(np.array([[0.0, 0.0, resolution, resolution]]), (frames.shape[0], 1))
    return dataclasses.replace(clip, frames=frames, face_box=full)
