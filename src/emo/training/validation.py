"""Validation clips: the model being trained generates a short MP4 from held data."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from emo.pipelines.emo_pipeline import EMOPipeline
    from emo.training.dataset import ClipDataset

__all__ = ["write_validation_clip"]


def write_validation_clip(
    pipe: EMOPipeline,
    dataset: ClipDataset,
    path: Path,
    *,
    num_inference_steps: int,
    seconds: float,
    seed: int,
) -> Path:
    """Generate a clip from the first prepared clip's first frame and audio.

    The face region is the clip's union face box (a ``box`` face mask), as in training.

    Parameters
    ----------
    pipe
        The pipeline whose networks are being trained (in eval mode during the call).
    dataset
        The training data.
    path
        The MP4 to write (its folder is created).
    num_inference_steps
        Denoising steps.
    seconds
        Audio length used (at most the clip's).
    seed
        Seed of the generation noise.
    """
    from safetensors import safe_open

    from emo.face_masks.base import union_box
    from emo.face_masks.simple import BoxMask

    with safe_open(str(dataset.clip_path(0)), framework="pt") as f:
        portrait = f.get_slice("frames")[0:1][0].numpy()
        boxes = f.get_tensor("boxes")
        audio = f.get_tensor("audio")
    rate = int(pipe.audio_encoder.sample_rate)
    audio = audio[: max(1, math.ceil(seconds * rate))]
    previous = pipe.face_mask
    pipe.face_mask = BoxMask(box=[float(v) for v in union_box(boxes)], relative=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        pipe.set_progress_bar_config(disable=True)
        pipe(
            portrait,
            audio.numpy(),
            audio_rate=rate,
            num_inference_steps=num_inference_steps,
            generator=torch.Generator().manual_seed(seed),
            output_path=path,
        )
    finally:
        pipe.face_mask = previous
    return path
