"""Arguments of the wrong kind are refused at validation, before any network runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from emo.errors import ConfigError, InputError
from emo.pipelines.emo_pipeline import EMOPipeline
from emo.pipelines.settings import PipelineSettings


@pytest.fixture
def no_denoising(tiny_pipe: EMOPipeline) -> Iterator[EMOPipeline]:
    """The tiny pipeline with a hook that fails any Backbone call: validation must reject first."""

    def forbidden(module: torch.nn.Module, args: Any) -> None:
        raise AssertionError("the Backbone ran: the argument passed validation")

    handle = tiny_pipe.backbone.register_forward_pre_hook(forbidden)
    yield tiny_pipe
    handle.remove()


def test_latents_with_a_batch_of_two_are_refused_at_validation(
    no_denoising: EMOPipeline,
    portrait_path: Path,
    short_speech: np.ndarray,
) -> None:
    good = torch.zeros(1, 4, 16, 4, 4)
    for bad, what in (
        (good.expand(2, -1, -1, -1, -1), r"\(2, 4, 16, 4, 4\)"),
        (good.to(torch.int64), "torch.int64"),
    ):
        with pytest.raises(InputError, match="latents must be a float tensor") as caught:
            no_denoising(portrait_path, short_speech, audio_rate=16000, latents=bad)
        assert "batch 1" in str(caught.value)
        assert caught.match(what)


@pytest.mark.parametrize(
    "name",
    [
        "motion_frames",
        "frames_per_clip",
        "num_inference_steps",
        "height",
        "fps",
        "guidance_scale",
        "reference_guidance_scale",
    ],
)
def test_a_bool_is_not_taken_as_a_number(
    no_denoising: EMOPipeline,
    portrait_path: Path,
    short_speech: np.ndarray,
    name: str,
) -> None:
    with pytest.raises(InputError, match=name):
        no_denoising(portrait_path, short_speech, audio_rate=16000, **{name: True})


@pytest.mark.parametrize(
    "name",
    [
        "motion_frames",
        "fps",
        "face_crop_scale",
        "head_motion_speed",
        "audio_context_seconds",
        "guidance_scale",
    ],
)
def test_settings_refuse_bools(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        PipelineSettings(**{name: True})
    assert PipelineSettings(motion_frames=0).motion_frames == 0  # 0 stays a valid count


@pytest.mark.parametrize("speed", [True, np.array([True, False] * 8)])
def test_head_motion_speed_refuses_bools(
    no_denoising: EMOPipeline,
    portrait_path: Path,
    short_speech: np.ndarray,
    speed: Any,
) -> None:
    with pytest.raises(InputError, match="head_motion_speed"):
        no_denoising(portrait_path, short_speech, audio_rate=16000, head_motion_speed=speed)
