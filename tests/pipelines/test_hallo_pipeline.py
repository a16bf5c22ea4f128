"""HalloPipeline: loads Hallo's folder, saves an ordinary emo folder, loads it back without pickle."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from emo.errors import ConfigError
from emo.pipelines.emo_pipeline import EMOPipeline
from emo.pipelines.hallo_pipeline import HalloPipeline
from emo.pipelines.hallo_settings import HalloSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from test_hallo_golden import (
    CONFIG,
    FRAMES,
    MODELS,
    TOLERANCE,
    golden,
    golden_conditions,
)


def videos(pipe: HalloPipeline) -> list[torch.Tensor]:
    initial = [golden(f"outputs/clip{k}.safetensors")["initial_latents"] for k in range(2)]
    return [
        clip.video
        for clip in pipe.generate_from_conditions(
            golden_conditions(),
            initial_latents=initial,
            frames_per_clip=FRAMES,
            num_inference_steps=int(CONFIG["inference_steps"]),
            guidance_scale=float(CONFIG["cfg_scale"]),
        )
    ]


@pytest.fixture(scope="module")
def pipe() -> HalloPipeline:
    return HalloPipeline.from_pretrained(MODELS)


def test_hallo_folder_loads_with_hallo_settings(pipe: HalloPipeline) -> None:
    # hallo_config.json beside pretrained_models gives the settings Hallo ran with.
    assert pipe.settings == HalloSettings.from_hallo_config(CONFIG)
    assert pipe.settings.frames_per_clip == FRAMES
    assert (pipe.settings.height, pipe.settings.num_inference_steps) == (
        CONFIG["data"]["source_image"]["height"],
        CONFIG["inference_steps"],
    )
    assert pipe.scheduler.config["beta_schedule"] == "linear"
    assert pipe.scheduler.config["set_alpha_to_one"] is True
    assert pipe.audio_encoder is not None


def test_saved_folder_has_no_pickle_and_gives_the_same_video(
    pipe: HalloPipeline, tmp_path: Path
) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        before = videos(pipe)
        saved = pipe.save_pretrained(tmp_path / "hallo-emo")
        files = [p for p in saved.rglob("*") if p.is_file()]
        assert not [p for p in files if p.suffix in (".pth", ".pt", ".bin", ".ckpt")]
        index = json.loads((saved / "model_index.json").read_text())
        assert index["_class_name"] == "emo.pipelines.hallo_pipeline:HalloPipeline"
        again = HalloPipeline.from_pretrained(saved)
        after = videos(again)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    expected = golden("outputs/clip0.safetensors")["video"]
    assert float((after[0] - expected).abs().max()) <= TOLERANCE


def test_emo_pipeline_refuses_a_hallo_folder_it_cannot_load(
    pipe: HalloPipeline, tmp_path: Path
) -> None:
    saved = pipe.save_pretrained(tmp_path / "hallo-emo")
    with pytest.raises(ConfigError, match="HalloPipeline"):
        EMOPipeline.from_pretrained(saved)


def test_settings_round_trip(pipe: HalloPipeline, tmp_path: Path) -> None:
    custom = HalloSettings(num_inference_steps=7, lip_weight=2.0)
    pipe.settings = custom
    try:
        saved = pipe.save_pretrained(tmp_path / "custom")
    finally:
        pipe.settings = HalloSettings.from_hallo_config(CONFIG)
    assert HalloPipeline.from_pretrained(saved).settings == custom


def test_load_pipeline_picks_the_class(pipe: HalloPipeline, tmp_path: Path) -> None:
    import emo

    assert isinstance(emo.load_pipeline(MODELS), HalloPipeline)
    saved = pipe.save_pretrained(tmp_path / "saved")
    assert isinstance(emo.load_pipeline(saved), HalloPipeline)
    assert isinstance(emo.load_pipeline("emo-demo"), EMOPipeline)
