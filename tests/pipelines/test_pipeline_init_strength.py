"""init_strength: each clip starts from its anchor noised part of the way (SDEdit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from emo.errors import ConfigError, InputError
from emo.pipelines.conditioning import prepare_portrait
from emo.pipelines.emo_pipeline import EMOPipeline
from emo.pipelines.settings import PipelineSettings

pytestmark = pytest.mark.usefixtures("one_thread")


def _run(
    pipe: EMOPipeline, portrait: Path, audio: np.ndarray, strength: float
) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Latents of a 4-step, unguided run from all-zero noise, and every Backbone input."""
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def hook(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        calls.append((args[0].detach().clone(), args[1].detach().clone()))

    handle = pipe.backbone.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        shape = (1, 4, 16, 4, 4)  # 16 frames of 32 px: 4 clips of 4 frames
        out = pipe(
            portrait,
            audio,
            audio_rate=16000,
            output_type="latent",
            num_inference_steps=4,
            guidance_scale=1.0,
            init_strength=strength,
            latents=torch.zeros(shape),
            generator=torch.Generator().manual_seed(0),
        )
    finally:
        handle.remove()
    return out.frames, calls


def test_each_clip_starts_from_its_noised_anchor_and_runs_the_last_steps(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray
) -> None:
    _, full_calls = _run(tiny_pipe, portrait_path, short_speech, 1.0)
    latents, calls = _run(tiny_pipe, portrait_path, short_speech, 0.5)
    scheduler = tiny_pipe.scheduler
    scheduler.set_timesteps(4)
    kept = scheduler.timesteps[2:]
    assert len(full_calls) == 4 * 4 and len(calls) == 4 * 2  # clips x steps
    for i, (_, t) in enumerate(calls):
        assert int(t.reshape(-1)[0]) == int(kept[i % 2])
    # From zero noise the first input of a full run is the face features alone.
    face = full_calls[0][0]
    anchors = [tiny_pipe._encode_image(_portrait(tiny_pipe, portrait_path))]
    anchors += [latents[:, :, 4 * k - 1] for k in (1, 2, 3)]
    for clip, anchor in enumerate(anchors):
        first_input = calls[2 * clip][0]
        expected = scheduler.add_noise(
            anchor[:, :, None].expand(-1, -1, 4, -1, -1),
            torch.zeros(1, 4, 4, 4, 4),
            kept[:1],
        )
        torch.testing.assert_close(first_input - face, expected, atol=1e-5, rtol=1e-5)


def _portrait(pipe: EMOPipeline, path: Path) -> np.ndarray:
    """The uint8 portrait crop the pipeline encodes."""
    s = pipe.settings
    image: np.ndarray = prepare_portrait(
        path, pipe.face_mask, height=s.height, width=s.width, crop_scale=s.face_crop_scale
    ).image
    return image


def test_strength_one_is_the_plain_generation(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray
) -> None:
    plain = tiny_pipe(
        portrait_path,
        short_speech,
        audio_rate=16000,
        output_type="latent",
        generator=torch.Generator().manual_seed(3),
    )
    one = tiny_pipe(
        portrait_path,
        short_speech,
        audio_rate=16000,
        output_type="latent",
        init_strength=1.0,
        generator=torch.Generator().manual_seed(3),
    )
    assert torch.equal(plain.frames, one.frames)


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5, True, float("nan")])
def test_strength_out_of_range_is_refused(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray, bad: Any
) -> None:
    with pytest.raises(ConfigError, match="init_strength"):
        PipelineSettings(init_strength=bad)
    with pytest.raises(InputError, match="init_strength"):
        tiny_pipe(portrait_path, short_speech, audio_rate=16000, init_strength=bad)
