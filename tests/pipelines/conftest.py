"""Fixtures for pipeline tests: a tiny random pipeline and real example inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emo.pipelines.emo_pipeline import EMOPipeline
from emo.pipelines.settings import PipelineSettings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# Small enough for a 2-core CI machine; still several clips with motion frames.
FAST = PipelineSettings(
    height=32,
    width=32,
    fps=25.0,
    frames_per_clip=4,
    motion_frames=2,
    num_inference_steps=2,
    guidance_scale=2.0,
    reference_guidance_scale=1.0,
)

#: 0.64 s of the example speech: 16 frames at 25 fps, 4 clips of 4 frames.
SHORT_SECONDS = 0.64


@pytest.fixture(scope="session")
def portrait_path() -> Path:
    return EXAMPLES / "portrait.png"


@pytest.fixture(scope="session")
def speech_path() -> Path:
    return EXAMPLES / "speech.wav"


@pytest.fixture(scope="session")
def short_speech(speech_path: Path) -> np.ndarray:
    """The first :data:`SHORT_SECONDS` of the example speech, float32 at 16 kHz."""
    samples, rate = sf.read(str(speech_path), dtype="float32")
    assert rate == 16000
    return np.ascontiguousarray(samples[: int(SHORT_SECONDS * rate)])


@pytest.fixture(scope="session")
def tiny_pipe() -> EMOPipeline:
    pipe = EMOPipeline.from_preset("tiny", audio_encoder="mel", face_mask="full", seed=0)
    pipe.settings = FAST
    pipe.set_progress_bar_config(disable=True)
    return pipe
