"""Samples: deterministic per (seed, epoch, index); the windows the networks need."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from emo.training.dataset import ClipDataset, SampleSpec


def test_samples_are_deterministic_and_carry_their_windows(prepared: Path) -> None:
    spec = SampleSpec(
        frames_per_clip=4, motion_frames=2, audio_context=2, with_speed=True, speed_context=2
    )
    data = ClipDataset(prepared, spec, seed=5, use_latents=True)
    assert len(data) >= 4  # clips with head speed (ground truth, or emo.face when installed)
    a, b = data.sample(1, epoch=3), data.sample(1, epoch=3)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["target"], data.sample(1, epoch=4)["target"]) or not torch.equal(
        a["reference"], data.sample(1, epoch=4)["reference"]
    )
    assert a["target"].shape == (4, 4, 4, 4) and a["motion"].shape == (4, 2, 4, 4)
    assert a["audio"].shape == (4 + 2 * 2, 1, 80) and a["speed"].shape == (4 + 2 * 2,)
    clip = load_file(data.clip_path(1))
    # The target frames are consecutive latents of the clip, right after the motion frames.
    latents = clip["latents"].permute(1, 0, 2, 3)  # c f h w
    starts = [s for s in range(10 - 5) if torch.equal(latents[:, s + 2 : s + 6], a["target"])]
    assert len(starts) == 1
    start = starts[0]
    assert torch.equal(latents[:, start : start + 2], a["motion"])
    # Speed and audio windows hold the real neighbours (clamped at the clip's edges).
    index = torch.arange(start + 2 - 2, start + 6 + 2).clamp(0, 9)
    assert torch.equal(a["speed"], clip["speed"][index])
    assert torch.equal(a["audio"], clip["audio_features"][index])
    # The face mask is the union of the target frames' boxes.
    assert a["mask"].shape == (1, 32, 32) and 0 < a["mask"].mean() < 1
