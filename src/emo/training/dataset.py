"""Training samples cut from a prepared data set, deterministically.

A sample is a function of ``(seed, epoch, index)`` only: which frames of a clip
it takes does not depend on the process count or on where a run resumed, so a
resumed or many-process run sees exactly the samples of an uninterrupted
single-process run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from emo._deprecation import warn_renamed
from emo.errors import InputError
from emo.training.data_format import read_clip_index, read_dataset_info

__all__ = ["ClipDataset", "SampleSpec", "mix_seed"]

_MASK64 = (1 << 63) - 1


def mix_seed(*values: int) -> int:
    """A 63-bit seed from several integers (splitmix64-style), for per-item generators."""
    state = 0x9E3779B97F4A7C15
    for value in values:
        state = (state ^ (int(value) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9
        state &= 0xFFFFFFFFFFFFFFFF
        state ^= state >> 31
    return state & _MASK64


@dataclass(frozen=True)
class SampleSpec:
    """What a sample holds.

    Attributes
    ----------
    frames_per_clip
        Target frames ``f``.
    motion_frames
        Frames ``n`` before the target frames (0 in stage 1).
    audio_context
        Audio context frames ``m`` on each side (``None``: no audio, stage 1).
    with_speed
        Include head speed (stage 3).
    speed_context
        Speed frames ``m`` on each side of the target frames (the speed layers' window).
    min_reference_distance
        Fewest frames between the reference and the target frames (when the clip allows).
    zero_motion_probability
        Probability that a sample's motion frames are marked "none" (first clip).
    mouth_boxes
        Include the target frames' mouth boxes (for the loss's mouth weight); NaN rows
        for a clip prepared without them.
    """

    frames_per_clip: int
    motion_frames: int = 0
    audio_context: int | None = None
    with_speed: bool = False
    speed_context: int = 0
    min_reference_distance: int = 1
    zero_motion_probability: float = 0.0
    mouth_boxes: bool = False

    @property
    def num_frames(self) -> int:
        """Deprecated name of :attr:`frames_per_clip`."""
        warn_renamed("num_frames", "frames_per_clip", where="SampleSpec")
        return self.frames_per_clip


class ClipDataset:
    """Samples from a folder written by ``emo prepare``.

    Parameters
    ----------
    root
        The prepared data folder.
    spec
        What each sample holds.
    seed
        Seed of the per-sample choices.
    use_latents
        Return cached VAE latents instead of frames (the data set must have them).

    Raises
    ------
    InputError
        If the folder is not a prepared data set, or no clip is long enough (or has the
        head speed stage 3 needs).
    """

    def __init__(
        self, root: str | os.PathLike[str], spec: SampleSpec, *, seed: int, use_latents: bool
    ) -> None:
        self.root = Path(root)
        self.info = read_dataset_info(self.root)
        self.spec = spec
        self.seed = seed
        self.use_latents = use_latents
        if use_latents and not self.info.get("latents"):
            raise InputError(f"{os.fspath(self.root)!r} has no cached latents")
        need = spec.motion_frames + spec.frames_per_clip
        rows = read_clip_index(self.root)
        self.clips = [
            row
            for row in rows
            if int(row["frames"]) >= max(need, 1) and (row.get("has_speed") or not spec.with_speed)
        ]
        if not self.clips:
            extra = (
                " with head speed (prepare with emo[face] or ground-truth angles)"
                if spec.with_speed
                else ""
            )
            raise InputError(
                f"no clip in {os.fspath(self.root)!r} has {need} frames{extra}; "
                f"{len(rows)} clips in all; use fewer frames per sample or longer clips"
            )

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def fps(self) -> float:
        """Frame rate of the prepared clips."""
        return float(self.info["fps"])

    @property
    def resolution(self) -> int:
        """Side of the prepared frames in pixels."""
        return int(self.info["resolution"])

    def clips_with(self, key: str) -> int:
        """How many of the usable clips hold tensor ``key`` (read from the file headers)."""
        from safetensors import safe_open

        count = 0
        for index in range(len(self.clips)):
            with safe_open(os.fspath(self.clip_path(index)), framework="pt") as f:
                count += key in set(f.keys())
        return count

    def clip_path(self, index: int) -> Path:
        """The safetensors file of clip ``index``."""
        return self.root / "clips" / f"{self.clips[index]['id']}.safetensors"

    def sample(self, index: int, epoch: int) -> dict[str, torch.Tensor]:
        """Sample ``index`` of ``epoch``.

        Returns
        -------
        dict
            ``"target"`` ``(c, f, h, w)``: uint8 frames ``(3, f, H, W)`` or float latents;
            ``"reference"`` ``(c, h, w)``; ``"motion"`` ``(c, n, h, w)`` (stages 2-3);
            ``"mask"`` float ``(1, H, W)``: union of the target frames' face boxes;
            ``"audio"`` ``(f + 2m, layers, dim)`` (stages 2-3); ``"speed"`` ``(f + 2m,)``
            (stage 3, with ``m = speed_context`` real neighbours, edges repeated); ``"zero_motion"`` bool ``()``;
            ``"mouth_boxes"`` ``(f, 4)`` pixels, NaN where the clip has none (with
            :attr:`SampleSpec.mouth_boxes`).
        """
        from safetensors import safe_open

        spec = self.spec
        row = self.clips[index]
        count = int(row["frames"])
        gen = torch.Generator().manual_seed(mix_seed(self.seed, epoch, index))
        span = spec.motion_frames + spec.frames_per_clip
        start = int(torch.randint(0, count - span + 1, (1,), generator=gen))
        first = start + spec.motion_frames
        stop = first + spec.frames_per_clip
        reference = self._reference_index(count, first, stop, gen)
        zero_motion = bool(torch.rand((), generator=gen) < spec.zero_motion_probability)
        key = "latents" if self.use_latents else "frames"
        out: dict[str, torch.Tensor] = {}
        with safe_open(os.fspath(self.clip_path(index)), framework="pt") as f:
            pixels = f.get_slice(key)
            target = pixels[first:stop]
            ref = pixels[reference : reference + 1][0]
            out["target"] = self._layout(target)
            out["reference"] = self._layout(ref[None])[:, 0]
            if spec.motion_frames:
                out["motion"] = self._layout(pixels[start:first])
            boxes = f.get_slice("boxes")[first:stop]
            if spec.audio_context is not None:
                m = spec.audio_context
                positions = torch.arange(first - m, stop + m).clamp(0, count - 1)
                feats = f.get_slice("audio_features")[max(0, first - m) : min(count, stop + m)]
                out["audio"] = feats[positions - max(0, first - m)].float()
            if spec.with_speed:
                m = spec.speed_context
                positions = torch.arange(first - m, stop + m).clamp(0, count - 1)
                out["speed"] = f.get_tensor("speed")[positions].float()
            if spec.mouth_boxes:
                out["mouth_boxes"] = (
                    f.get_slice("mouth_boxes")[first:stop].float()
                    if "mouth_boxes" in set(f.keys())
                    else torch.full((spec.frames_per_clip, 4), float("nan"))
                )
        out["mask"] = self._mask(boxes)
        out["zero_motion"] = torch.tensor(zero_motion)
        return out

    def _reference_index(self, count: int, first: int, stop: int, gen: torch.Generator) -> int:
        """A frame of the clip outside the target frames (at least ``min_reference_distance`` away)."""
        gap = self.spec.min_reference_distance
        allowed = [i for i in range(count) if i <= first - gap or i >= stop - 1 + gap]
        if not allowed:
            allowed = [i for i in range(count) if not first <= i < stop] or list(range(count))
        return allowed[int(torch.randint(0, len(allowed), (1,), generator=gen))]

    def _layout(self, values: torch.Tensor) -> torch.Tensor:
        # frames: uint8 f h w 3 -> 3 f h w ; latents: f c h w -> c f h w
        if self.use_latents:
            return values.float().permute(1, 0, 2, 3).contiguous()
        return values.permute(3, 0, 1, 2).contiguous()

    def _mask(self, boxes: torch.Tensor) -> torch.Tensor:
        from emo.face_masks.base import box_to_mask, union_box

        size = self.resolution
        return box_to_mask(union_box(boxes), size, size)

    def batch(self, indices: list[int], epoch: int) -> dict[str, Any]:
        """Stack the samples of ``indices`` into a batch (leading dimension ``b``)."""
        samples = [self.sample(i, epoch) for i in indices]
        return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}
