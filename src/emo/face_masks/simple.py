"""Face masks that need no detector: the whole frame, or a box the user gives."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from emo.errors import InputError
from emo.face_masks.base import FaceMaskBase, as_frames

__all__ = ["BoxMask", "FullFrameMask"]


class FullFrameMask(FaceMaskBase):
    """The whole frame is the face region (registry name ``full``).

    Use it for close-up portraits, or when no detector finds the face.

    Parameters
    ----------
    padding
        Ignored in effect: the box already covers the frame (kept for a uniform config).
    union
        See :class:`~emo.face_masks.base.FaceMaskBase`.
    """

    name = "full"
    description = "the whole frame is the face region"

    def __init__(self, padding: float = 0.0, union: bool = True) -> None:
        super().__init__(padding=padding, union=union)

    def boxes(self, frames: Any) -> torch.Tensor:
        """Return ``(0, 0, w, h)`` for every frame, ``(f, 4)``."""
        array = as_frames(frames)
        count, height, width = array.shape[:3]
        box = torch.tensor([0.0, 0.0, float(width), float(height)])
        return box[None].repeat(count, 1)


class BoxMask(FaceMaskBase):
    """A fixed, user-given face box (registry name ``box``).

    Parameters
    ----------
    box
        ``(x0, y0, x1, y1)``: the top-left and bottom-right (exclusive) corners.
    relative
        If true the coordinates are fractions of the frame width and height
        (``(0.25, 0.1, 0.75, 0.7)``); if false they are pixels. ``None`` (default)
        means relative when every coordinate lies in ``[0, 1]``, pixels otherwise.
    padding
        Ratio the box grows by on every side (see :func:`~emo.face_masks.base.pad_box`).
    union
        See :class:`~emo.face_masks.base.FaceMaskBase`.

    Raises
    ------
    InputError
        If ``box`` is not four finite numbers with ``x0 < x1`` and ``y0 < y1``, or when
        called, if the box lies entirely outside the frame.
    """

    name = "box"
    description = "a fixed face box given in pixels or as fractions of the frame"

    def __init__(
        self,
        box: Sequence[float],
        relative: bool | None = None,
        padding: float = 0.0,
        union: bool = True,
    ) -> None:
        super().__init__(padding=padding, union=union)
        try:
            values = [float(v) for v in box]
        except (TypeError, ValueError):
            raise InputError(f"box must be four numbers (x0, y0, x1, y1), got {box!r}") from None
        if len(values) != 4 or not all(math.isfinite(v) for v in values):
            raise InputError(f"box must be four finite numbers (x0, y0, x1, y1), got {box!r}")
        x0, y0, x1, y1 = values
        if not (x0 < x1 and y0 < y1):
            raise InputError(
                f"box {tuple(values)} is empty: it needs x0 < x1 and y0 < y1 "
                "(top-left corner first, then bottom-right)"
            )
        if relative is None:
            relative = all(0.0 <= v <= 1.0 for v in values)
        self.box = (x0, y0, x1, y1)
        self.relative = bool(relative)

    def pixel_box(self, height: int, width: int) -> torch.Tensor:
        """Return the box in pixels for a frame of ``h x w``, clamped to it, ``(4,)``.

        Raises
        ------
        InputError
            If the box lies entirely outside the frame.
        """
        x0, y0, x1, y1 = self.box
        if self.relative:
            x0, x1, y0, y1 = x0 * width, x1 * width, y0 * height, y1 * height
        box = torch.tensor([x0, y0, x1, y1], dtype=torch.float32)
        limits = torch.tensor([width, height, width, height], dtype=torch.float32)
        box = torch.minimum(box.clamp(min=0.0), limits)
        if not (box[0] < box[2] and box[1] < box[3]):
            raise InputError(
                f"box {self.box} lies outside the {width}x{height} frame; give pixel coordinates "
                "inside the image or fractions in [0, 1] with relative=True"
            )
        return box

    def boxes(self, frames: Any) -> torch.Tensor:
        """Return the configured box for every frame, ``(f, 4)`` in pixels."""
        array = as_frames(frames)
        count, height, width = array.shape[:3]
        return self.pixel_box(height, width)[None].repeat(count, 1)
