"""The face-region mask contract, its base class and box helpers.

EMO's face locator is conditioned on the *face region*: the union of the face
bounding boxes over the frames of a clip. A face-mask plugin turns uint8 frames
``(f, h, w, 3)`` into float masks ``(f, 1, h, w)`` holding 0 and 1.

Boxes are ``(x0, y0, x1, y1)`` in pixels, ``x1`` and ``y1`` exclusive, as float
tensors: a box of the whole ``h x w`` frame is ``(0, 0, w, h)``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from emo.errors import InputError
from emo.face._frames import as_rgb_frames, to_numpy
from emo.plugins.base import PluginBase

__all__ = [
    "FaceMask",
    "FaceMaskBase",
    "as_frames",
    "box_to_mask",
    "pad_box",
    "union_box",
]


@runtime_checkable
class FaceMask(Protocol):
    """The minimum contract of a face-region mask plugin.

    Any callable object with this signature plugs in; :class:`FaceMaskBase` adds
    config, persistence and the box machinery.
    """

    def __call__(self, frames: Any) -> torch.Tensor:
        """Return the face-region masks of ``frames``.

        Parameters
        ----------
        frames
            uint8 frames ``(f, h, w, 3)`` (numpy or torch); a single image ``(h, w, 3)`` is one frame.

        Returns
        -------
        torch.Tensor
            float32 masks ``(f, 1, h, w)`` with values in {0, 1}.
        """
        ...


def as_frames(frames: Any, *, name: str = "frames") -> np.ndarray:
    """Validate RGB frames and return them as a contiguous numpy uint8 array ``(f, h, w, 3)``.

    The checks and conversion of the face analysis' frame reader, for RGB shapes only:
    ``frames`` is a numpy array or torch tensor, ``(f, h, w, 3)`` or one image
    ``(h, w, 3)``, uint8 or float in ``[0, 1]``; ``name`` is what error messages call it.

    Raises
    ------
    InputError
        If the input is not an array of that shape, is empty, or holds NaN/inf.
    """
    array = to_numpy(frames, name)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3:
        raise InputError(
            f"{name} must have shape (f, h, w, 3) or (h, w, 3) (RGB, channels last), "
            f"got {tuple(array.shape)}"
        )
    return as_rgb_frames(array, name=name)  # the strict shape is checked; the rest is shared


def _as_boxes(boxes: Any, name: str = "box") -> torch.Tensor:
    if isinstance(boxes, torch.Tensor):
        tensor = boxes.detach().cpu().to(torch.float32)
    else:
        try:
            tensor = torch.as_tensor(np.asarray(boxes, dtype=np.float64), dtype=torch.float32)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{name} must be numbers (x0, y0, x1, y1), got {boxes!r}") from exc
    if tensor.shape[-1:] != (4,) or tensor.ndim not in (1, 2):
        raise InputError(
            f"{name} must be (x0, y0, x1, y1) or (n, 4), got shape {tuple(tensor.shape)}"
        )
    if not torch.isfinite(tensor).all():
        raise InputError(f"{name} holds NaN or inf values")
    return tensor


def _check_size(height: Any, width: Any) -> None:
    for label, size in (("height", height), ("width", width)):
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
            raise InputError(f"mask {label} must be a positive int (pixels), got {size!r}")


def union_box(boxes: Any) -> torch.Tensor:
    """Return the smallest box that contains every box.

    Parameters
    ----------
    boxes
        ``(n, 4)`` boxes ``x0, y0, x1, y1`` (tensor, array or nested lists).

    Returns
    -------
    torch.Tensor
        float32 ``(4,)``.
    """
    tensor = _as_boxes(boxes, "boxes")
    if tensor.ndim == 1:
        return tensor.clone()
    if tensor.shape[0] == 0:
        raise InputError("union_box needs at least one box")
    return torch.cat([tensor[:, :2].min(dim=0).values, tensor[:, 2:].max(dim=0).values])


def pad_box(box: Any, ratio: float, height: int, width: int) -> torch.Tensor:
    """Grow a box on every side by ``ratio`` times its size, clamped to the image.

    Parameters
    ----------
    box
        ``(4,)`` or ``(n, 4)`` boxes ``x0, y0, x1, y1`` in pixels.
    ratio
        Fraction of the box's width (height) added left and right (top and bottom);
        ``0.25`` makes a box 1.5 times as wide and high. Negative values shrink it.
    height, width
        Image size the result is clamped to.

    Returns
    -------
    torch.Tensor
        float32 boxes of the input's shape ``(4,)`` or ``(n, 4)``.
    """
    tensor = _as_boxes(box)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
        raise InputError(f"padding ratio must be a number, got {ratio!r}")
    _check_size(height, width)
    if not math.isfinite(ratio) or ratio <= -0.5:
        raise InputError(f"padding ratio must be finite and > -0.5, got {ratio!r}")
    x0, y0, x1, y1 = tensor.unbind(-1)
    dx, dy = (x1 - x0) * ratio, (y1 - y0) * ratio
    out = torch.stack([x0 - dx, y0 - dy, x1 + dx, y1 + dy], dim=-1)
    limits = torch.tensor([width, height, width, height], dtype=torch.float32)
    return torch.minimum(out.clamp(min=0.0), limits)


def box_to_mask(box: Any, height: int, width: int) -> torch.Tensor:
    """Rasterise boxes into binary masks.

    A pixel is inside when its area overlaps the box: ``floor(x0) <= x < ceil(x1)``.

    Parameters
    ----------
    box
        ``(4,)`` or ``(f, 4)`` boxes ``x0, y0, x1, y1`` in pixels.
    height, width
        Mask size.

    Returns
    -------
    torch.Tensor
        float32 ``(1, h, w)`` for one box, ``(f, 1, h, w)`` for ``f`` boxes; values in {0, 1}.
    """
    tensor = _as_boxes(box)
    _check_size(height, width)
    single = tensor.ndim == 1
    boxes = tensor[None] if single else tensor
    ys = torch.arange(height, dtype=torch.float32)[None, :, None]
    xs = torch.arange(width, dtype=torch.float32)[None, None, :]
    x0 = boxes[:, 0].floor()[:, None, None]
    y0 = boxes[:, 1].floor()[:, None, None]
    x1 = boxes[:, 2].ceil()[:, None, None]
    y1 = boxes[:, 3].ceil()[:, None, None]
    mask = ((xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)).to(torch.float32)
    mask = mask[:, None]
    return mask[0] if single else mask


class FaceMaskBase(PluginBase, ABC):
    """Base class of face-region mask plugins: subclass it and implement :meth:`boxes`.

    ``__call__`` finds one box per frame, pads it by :attr:`padding`, optionally
    takes the union over the clip, and rasterises the result.

    Parameters
    ----------
    padding
        Ratio each box grows by on every side (see :func:`pad_box`).
    union
        If true (EMO's definition) every frame gets the union of the clip's boxes;
        if false each frame gets its own box.

    Examples
    --------
    A plugin that brings a stronger detector only implements ``boxes``::

        class MyDetectorMask(FaceMaskBase):
            name = "my-detector"

            def boxes(self, frames):
                frames = as_frames(frames)
                return torch.tensor([run_my_detector(f) for f in frames], dtype=torch.float32)
    """

    def __init__(self, padding: float = 0.0, union: bool = True) -> None:
        if not isinstance(padding, (int, float)) or not math.isfinite(padding) or padding <= -0.5:
            raise InputError(f"padding must be a finite number > -0.5, got {padding!r}")
        self.padding = float(padding)
        self.union = bool(union)

    @abstractmethod
    def boxes(self, frames: Any) -> torch.Tensor:
        """Return one face box per frame, before padding.

        Parameters
        ----------
        frames
            uint8 frames ``(f, h, w, 3)`` or one image ``(h, w, 3)`` (numpy or torch).

        Returns
        -------
        torch.Tensor
            float32 ``(f, 4)``: ``x0, y0, x1, y1`` in pixels.
        """

    def face_box(self, frames: Any) -> torch.Tensor:
        """Return the padded union box of the clip, ``(4,)`` ``x0, y0, x1, y1`` in pixels.

        Handy to crop a portrait around the face (see :func:`emo.io.image.crop_and_resize`).
        """
        array = as_frames(frames)
        height, width = array.shape[1:3]
        return union_box(pad_box(self.boxes(array), self.padding, height, width))

    def __call__(self, frames: Any) -> torch.Tensor:
        """Return the face-region masks of ``frames`` (as in :meth:`boxes`), float32
        ``(f, 1, h, w)`` with values in {0, 1}."""
        array = as_frames(frames)
        count, height, width = array.shape[:3]
        boxes = _as_boxes(self.boxes(array), f"{type(self).__name__}.boxes()")
        if boxes.ndim != 2 or boxes.shape[0] != count:
            raise InputError(
                f"{type(self).__name__}.boxes() returned shape {tuple(boxes.shape)} for "
                f"{count} frames; it must return ({count}, 4)"
            )
        padded = pad_box(boxes, self.padding, height, width)
        if self.union:
            padded = union_box(padded)[None].expand(count, 4)
        return box_to_mask(padded, height, width)
