"""Scene cuts and clip spans: where a talking-head video may be cut into training clips."""

from __future__ import annotations

import itertools
import math

import torch

__all__ = ["THUMB_SIZE", "clip_spans", "scene_cuts", "thumbnail"]

#: Side of the grayscale thumbnails the cut detector compares.
THUMB_SIZE = 32


def thumbnail(frames: torch.Tensor) -> torch.Tensor:
    """Small grayscale versions of frames for cut detection.

    Parameters
    ----------
    frames
        uint8 ``(f, h, w, 3)``.

    Returns
    -------
    torch.Tensor
        float32 ``(f, 32, 32)`` in ``[0, 255]``.
    """
    gray = frames.float().mul(torch.tensor([0.299, 0.587, 0.114])).sum(-1)  # f h w
    small = torch.nn.functional.adaptive_avg_pool2d(gray[:, None], THUMB_SIZE)
    return small[:, 0]


def scene_cuts(thumbs: torch.Tensor, *, threshold: float = 30.0) -> list[int]:
    """Frame indices where a new shot starts.

    A cut is a frame whose mean absolute difference to the previous frame (on
    32x32 grayscale thumbnails, 0-255) exceeds ``threshold`` *and* is more than
    four times the median difference of the video (so fast but continuous motion
    is not a cut).

    Parameters
    ----------
    thumbs
        ``(f, 32, 32)`` from :func:`thumbnail`.
    threshold
        Smallest mean absolute difference that counts as a cut.

    Returns
    -------
    list of int
        Sorted indices ``i`` (``0 < i < f``): frame ``i`` starts a new shot.
    """
    if thumbs.shape[0] < 2:
        return []
    diffs = (thumbs[1:] - thumbs[:-1]).abs().mean(dim=(1, 2))
    floor = 4.0 * float(diffs.median())
    return [i + 1 for i, d in enumerate(diffs.tolist()) if d > threshold and d > floor]


def clip_spans(
    num_frames: int,
    fps: float,
    cuts: list[int],
    *,
    min_seconds: float,
    max_seconds: float,
) -> list[tuple[int, int]]:
    """Cut each shot into clips of ``min_seconds`` .. ``max_seconds``.

    A shot longer than ``max_seconds`` is split into the fewest equal parts that
    each fit; a shot (or part) shorter than ``min_seconds`` is dropped.

    Parameters
    ----------
    num_frames
        Frames in the video.
    fps
        Its frame rate.
    cuts
        Shot starts from :func:`scene_cuts`.
    min_seconds, max_seconds
        Clip length bounds (3 and 12 s in the paper).

    Returns
    -------
    list of (start, stop)
        Frame spans of the source video, ``stop`` exclusive.
    """
    bounds = [0, *sorted(c for c in cuts if 0 < c < num_frames), num_frames]
    min_len = max(1, math.ceil(min_seconds * fps - 1e-6))
    max_len = max(min_len, math.floor(max_seconds * fps + 1e-6))
    spans: list[tuple[int, int]] = []
    for start, stop in itertools.pairwise(bounds):
        length = stop - start
        if length < min_len:
            continue
        parts = math.ceil(length / max_len)
        size = length // parts
        for k in range(parts):
            a = start + k * size
            b = stop if k == parts - 1 else a + size
            if b - a >= min_len:
                spans.append((a, min(b, a + max_len)))
    return spans
