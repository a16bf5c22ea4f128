"""Fixtures of the job-list tests: a tiny pipeline (in memory and saved), short real audio."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emo.pipelines.emo_pipeline import EMOPipeline
from emo.pipelines.settings import PipelineSettings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# 32x32, 2 steps, 4-frame clips: a video of 8 frames takes well under a second.
SMALL = PipelineSettings(
    height=32,
    width=32,
    fps=25.0,
    frames_per_clip=4,
    motion_frames=2,
    num_inference_steps=2,
    guidance_scale=2.0,
    reference_guidance_scale=1.0,
)


@pytest.fixture(scope="session")
def portrait() -> Path:
    return EXAMPLES / "portrait.png"


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Four 0.32 s pieces of the example speech (8 frames each), and one of 6 s (150 frames)."""
    folder = tmp_path_factory.mktemp("audio")
    samples, rate = sf.read(str(EXAMPLES / "speech.wav"), dtype="float32")
    piece = int(0.32 * rate)
    paths = []
    for i in range(4):
        path = folder / f"piece{i}.wav"
        sf.write(str(path), samples[i * piece : (i + 1) * piece], rate)
        paths.append(path)
    long = folder / "long.wav"
    sf.write(str(long), np.tile(samples, 2)[: 6 * rate], rate)
    paths.append(long)
    return paths


@pytest.fixture(scope="session")
def pipe() -> Iterator[EMOPipeline]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the subprocess runs use one thread too: same numbers
    pipeline = EMOPipeline.from_preset("tiny", audio_encoder="mel", face_mask="full", seed=0)
    pipeline.settings = SMALL
    pipeline.set_progress_bar_config(disable=True)
    yield pipeline
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def model_dir(pipe: EMOPipeline, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same pipeline saved, for ``--model`` of the command-line runs."""
    folder = tmp_path_factory.mktemp("model") / "tiny"
    pipe.save_pretrained(folder)
    return folder
