"""Mouth boxes of prepared clips, and the loss weights they give.

A talking-head frame is mostly a still face; the mouth, a small part of it, is all
that the audio has to drive. Hallo weights its loss by lip and face masks from
landmarks for this reason. emo stores one mouth box per frame (``mouth_boxes``,
``(f, 4)`` crop pixels, from the face analysis's lip landmarks) and weighs the
latent pixels inside it (:attr:`emo.training.settings.LossSettings.mouth_weight`).
Unlike a weight on everything that differs from the reference
(``change_weight``), it does not reward turning the head away.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emo.training.data_format import (
    clip_metadata,
    read_clip,
    read_clip_index,
    read_dataset_info,
    write_clip,
)

__all__ = [
    "MOUTH_GROWTH",
    "MouthBoxReport",
    "add_mouth_boxes",
    "fill_gaps",
    "mouth_boxes_from_frames",
    "mouth_weights",
]

MOUTH_GROWTH = 1.5
"""How many times the lip landmarks' box is grown (about its centre) for the loss weight:
the lips' surroundings (chin, cheeks) move with the jaw."""

_LIPS = slice(48, 68)  # iBUG-68 outer and inner lip points


def fill_gaps(values: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Rows of ``values`` ``(f, k)`` where ``known`` ``(f,)`` is false, filled linearly.

    Rows before the first (after the last) known row repeat it. At least one row must
    be known; the unknown rows are never read (they may hold NaN).
    """
    rows = values[known].float()
    if rows.shape[0] == 1:
        return rows.expand(values.shape[0], -1).clone()
    index = torch.arange(values.shape[0], dtype=torch.float32)
    good = index[known]
    pos = torch.searchsorted(good, index).clamp(1, good.numel() - 1)
    x0, x1 = good[pos - 1], good[pos]
    w = ((index - x0) / (x1 - x0)).clamp(0, 1)[:, None]
    return torch.lerp(rows[pos - 1], rows[pos], w)


def mouth_boxes_from_frames(analyzer: Any, frames: torch.Tensor) -> torch.Tensor | None:
    """Per-frame mouth boxes of face crops, from the analysis's lip landmarks.

    Parameters
    ----------
    analyzer
        An :class:`emo.face.FaceAnalyzer`.
    frames
        uint8 ``(f, s, s, 3)`` face crops (as ``emo prepare`` writes them).

    Returns
    -------
    torch.Tensor or None
        float32 ``(f, 4)``: ``x0, y0, x1, y1`` around the lip landmarks in crop pixels
        (frames without landmarks filled linearly from their neighbours); ``None`` when
        fewer than half the frames have landmarks.
    """
    from emo.evaluation.scoring import enlarge_for_analysis

    pixels = frames.numpy()
    seen = enlarge_for_analysis(pixels, 256)
    factor = seen.shape[1] / pixels.shape[1]
    track = analyzer.analyze(seen)
    lips = np.asarray(track.landmarks, dtype=np.float64)[:, _LIPS] / factor
    boxes = torch.as_tensor(
        np.concatenate([lips.min(axis=1), lips.max(axis=1)], axis=1), dtype=torch.float32
    )
    known = torch.isfinite(boxes).all(dim=1) & torch.as_tensor(np.asarray(track.found))
    if int(known.sum()) * 2 < boxes.shape[0]:
        return None
    return fill_gaps(boxes, known)


def mouth_weights(
    boxes: torch.Tensor,
    shape: tuple[int, int],
    resolution: int,
    weight: float,
    *,
    growth: float = MOUTH_GROWTH,
) -> torch.Tensor:
    """Per-element loss weights ``(b, 1, f, h, w)``: ``1 + weight * coverage``.

    ``coverage`` is the share of a latent pixel inside the frame's mouth box (grown
    ``growth`` times about its centre), so the weight is smooth at the box's edges.

    Parameters
    ----------
    boxes
        ``(b, f, 4)`` mouth boxes ``x0, y0, x1, y1`` in pixels of ``resolution``-sized
        frames; a row of NaN (a clip without mouth boxes) weighs 1 everywhere.
    shape
        ``(h, w)`` of the latents.
    resolution
        Side of the frames the boxes are measured on.
    weight
        Extra weight inside the box.
    growth
        How many times the box is grown about its centre.
    """
    h, w = shape
    boxes = boxes.float()
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2
    half = (boxes[..., 2:] - boxes[..., :2]) / 2 * growth
    scale = torch.tensor([w / resolution, h / resolution], device=boxes.device)
    low, high = (centre - half) * scale, (centre + half) * scale

    def overlap(lo: torch.Tensor, hi: torch.Tensor, cells: int) -> torch.Tensor:
        edges = torch.arange(cells, dtype=torch.float32, device=lo.device)
        left = torch.maximum(edges, lo[..., None])
        right = torch.minimum(edges + 1, hi[..., None])
        return (right - left).clamp(0, 1).nan_to_num(0.0)  # (b, f, cells)

    cover_x = overlap(low[..., 0], high[..., 0], w)
    cover_y = overlap(low[..., 1], high[..., 1], h)
    coverage = cover_y[..., :, None] * cover_x[..., None, :]  # (b, f, h, w)
    return (1.0 + weight * coverage)[:, None]


@dataclass(frozen=True)
class MouthBoxReport:
    """What :func:`add_mouth_boxes` did.

    Attributes
    ----------
    added
        Clips that got mouth boxes now.
    present
        Clips that had them already.
    missed
        Ids of clips where fewer than half the frames had lip landmarks (left without).
    """

    added: int
    present: int
    missed: list[str]


def add_mouth_boxes(
    root: str | os.PathLike[str],
    *,
    analyzer: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> MouthBoxReport:
    """Add ``mouth_boxes`` to the clips of a prepared data set that lack them.

    For data sets prepared before emo stored mouth boxes, or without the face extra.
    Each clip file is rewritten atomically with its other tensors unchanged, so an
    interrupted run loses nothing and a second run goes on where it stopped.

    Parameters
    ----------
    root
        The folder ``emo prepare`` wrote.
    analyzer
        An :class:`emo.face.FaceAnalyzer` (default: a new one; needs ``emo[face]``).
    progress
        Called with ``(clips done, clips in all)`` after each clip.

    Raises
    ------
    InputError
        If ``root`` is not a prepared data set.
    PluginLoadError
        Without the face extra.
    """
    from emo.face import FaceAnalyzer

    folder = Path(root)
    read_dataset_info(folder)
    rows = read_clip_index(folder)
    analyzer = analyzer if analyzer is not None else FaceAnalyzer()
    added = present = 0
    missed: list[str] = []
    for done, row in enumerate(rows, start=1):
        path = folder / "clips" / f"{row['id']}.safetensors"
        tensors = read_clip(path)
        if "mouth_boxes" in tensors:
            present += 1
        else:
            boxes = mouth_boxes_from_frames(analyzer, tensors["frames"])
            if boxes is None:
                missed.append(str(row["id"]))
            else:
                write_clip(path, {**tensors, "mouth_boxes": boxes}, clip_metadata(row))
                added += 1
        if progress is not None:
            progress(done, len(rows))
    return MouthBoxReport(added, present, missed)
