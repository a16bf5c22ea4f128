"""Mouth boxes of prepared clips (from the lip landmarks) and the loss's mouth weight."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from emo.errors import ConfigError, InputError
from emo.pipelines.emo_pipeline import EMOPipeline
from emo.training.data_format import read_clip_index, write_clip
from emo.training.dataset import ClipDataset, SampleSpec
from emo.training.loss import change_weights, diffusion_loss
from emo.training.mouth import add_mouth_boxes, fill_gaps, mouth_boxes_from_frames, mouth_weights
from emo.training.settings import LossSettings

pytest.importorskip("dlib")


@pytest.fixture(scope="module")
def analyzer() -> Any:
    from emo.face import FaceAnalyzer

    return FaceAnalyzer()


@pytest.fixture(scope="module")
def talking() -> Any:
    """A synthetic head saying a synthetic sentence: 2 s at 96 px, its truth beside it."""
    from emo.datasets.synthetic import make_clip

    return make_clip(3, 11, duration=2.0, size=96, split="heldout", speed=0.0)


def test_fill_gaps_interpolates_between_known_rows_and_repeats_at_the_ends() -> None:
    values = torch.tensor([[0.0], [9.0], [2.0], [9.0], [9.0], [8.0], [9.0]])
    known = torch.tensor([False, False, True, False, False, True, False])
    filled = fill_gaps(values, known)
    torch.testing.assert_close(filled[:, 0], torch.tensor([2.0, 2.0, 2.0, 4.0, 6.0, 8.0, 8.0]))
    one = fill_gaps(values, torch.tensor([False, True, False, False, False, False, False]))
    assert torch.all(one == 9.0)


def test_mouth_weights_cover_the_grown_box_by_share_and_nan_boxes_weigh_one() -> None:
    # A 4x2-pixel box on 8-pixel frames, latents 4x4 (2 pixels per latent pixel): grown 1.5x
    # about its centre (4, 3) it spans x 1..7, y 1.5..4.5 -> latent x 0.5..3.5, y 0.75..2.25.
    boxes = torch.tensor([[[2.0, 2.0, 6.0, 4.0]], [[math.nan] * 4]])
    weights = mouth_weights(boxes, (4, 4), 8, 2.0)
    assert weights.shape == (2, 1, 1, 4, 4)
    cover_x = torch.tensor([0.5, 1.0, 1.0, 0.5])
    cover_y = torch.tensor([0.25, 1.0, 0.25, 0.0])
    torch.testing.assert_close(weights[0, 0, 0], 1 + 2 * cover_y[:, None] * cover_x[None, :])
    assert torch.all(weights[1] == 1.0)


def test_mouth_boxes_follow_the_lips_of_a_talking_head(analyzer: Any, talking: Any) -> None:
    frames = torch.as_tensor(talking.frames)
    boxes = mouth_boxes_from_frames(analyzer, frames)
    assert boxes is not None and boxes.shape == (talking.num_frames, 4)
    assert torch.isfinite(boxes).all()
    face = torch.as_tensor(talking.face_box, dtype=torch.float32)
    centre_y = (boxes[:, 1] + boxes[:, 3]) / 2
    # The lips lie in the lower half of the head, between its sides.
    assert torch.all(centre_y > (face[:, 1] + face[:, 3]) / 2)
    assert torch.all((boxes[:, 0] > face[:, 0]) & (boxes[:, 2] < face[:, 2]))
    # The box grows as the mouth opens: its height follows the truth's opening.
    height = (boxes[:, 3] - boxes[:, 1]).numpy()
    assert np.corrcoef(height, talking.mouth_open)[0, 1] > 0.8


def test_no_face_gives_no_mouth_boxes(analyzer: Any) -> None:
    blank = torch.full((6, 64, 64, 3), 90, dtype=torch.uint8)
    assert mouth_boxes_from_frames(analyzer, blank) is None


def _with_faces(prepared: Path, out: Path, talking: Any, count: int = 1) -> tuple[Path, str]:
    """A copy of the prepared set whose first ``count`` clips show the talking head (32 px)."""
    shutil.copytree(prepared, out)
    ids = [row["id"] for row in read_clip_index(out)]
    for k, clip in enumerate(ids[:count]):
        path = out / "clips" / f"{clip}.safetensors"
        tensors = load_file(path)
        frames = tensors["frames"].shape[0]
        start = (3 * k) % (talking.num_frames - frames)
        small = torch.nn.functional.interpolate(
            torch.as_tensor(talking.frames[start : start + frames]).permute(0, 3, 1, 2).float(),
            size=tensors["frames"].shape[1:3],
            mode="area",
        )
        tensors["frames"] = small.round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
        write_clip(path, tensors, meta)
    return out, ids[0]


def test_add_mouth_boxes_fills_clips_with_lips_keeps_the_rest_and_resumes(
    prepared: Path, tmp_path: Path, analyzer: Any, talking: Any
) -> None:
    data, first = _with_faces(prepared, tmp_path / "data", talking)
    before = {
        row["id"]: load_file(data / "clips" / f"{row['id']}.safetensors")
        for row in read_clip_index(data)
    }
    seen: list[tuple[int, int]] = []
    report = add_mouth_boxes(data, analyzer=analyzer, progress=lambda d, n: seen.append((d, n)))
    total = len(before)
    assert seen[-1] == (total, total)
    assert report.added == 1 and report.present == 0
    assert sorted(report.missed) == sorted(k for k in before if k != first)  # bright discs
    after = load_file(data / "clips" / f"{first}.safetensors")
    assert after["mouth_boxes"].shape == (before[first]["frames"].shape[0], 4)
    for key, value in before[first].items():
        torch.testing.assert_close(after[key], value)
    with safe_open(str(data / "clips" / f"{first}.safetensors"), framework="pt") as f:
        assert f.metadata()["source"].endswith(".mp4")
    again = add_mouth_boxes(data, analyzer=analyzer)
    assert again.added == 0 and again.present == 1


def test_add_mouth_boxes_refuses_a_folder_that_is_not_a_data_set(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="emo prepare"):
        add_mouth_boxes(tmp_path)


def test_samples_carry_the_target_frames_mouth_boxes_or_nan(
    prepared: Path, tmp_path: Path, analyzer: Any, talking: Any
) -> None:
    data, first = _with_faces(prepared, tmp_path / "data", talking)
    add_mouth_boxes(data, analyzer=analyzer)
    spec = SampleSpec(frames_per_clip=4, motion_frames=2, audio_context=2, mouth_boxes=True)
    dataset = ClipDataset(data, spec, seed=0, use_latents=True)
    index = [row["id"] for row in dataset.clips].index(first)
    other = 1 if index == 0 else 0
    sample = dataset.sample(index, epoch=0)
    stored = load_file(data / "clips" / f"{first}.safetensors")["mouth_boxes"]
    rows = [
        i
        for i in range(stored.shape[0] - 3)
        if torch.equal(stored[i : i + 4], sample["mouth_boxes"])
    ]
    assert rows  # four consecutive frames' boxes
    assert torch.isnan(dataset.sample(other, epoch=0)["mouth_boxes"]).all()
    plain = ClipDataset(data, SampleSpec(frames_per_clip=4), seed=0, use_latents=True)
    assert "mouth_boxes" not in plain.sample(index, epoch=0)


def test_the_mouth_weighted_loss_is_the_weighted_mean_and_adds_to_the_change_weight(
    prepared: Path,
) -> None:
    pipe = EMOPipeline.from_preset("tiny", face_mask="full", seed=0)
    spec = SampleSpec(frames_per_clip=4, motion_frames=2, audio_context=2, mouth_boxes=True)
    batch = ClipDataset(prepared, spec, seed=0, use_latents=True).batch([0, 1], epoch=0)
    size = int(ClipDataset(prepared, spec, seed=0, use_latents=True).resolution)
    batch["mouth_boxes"] = torch.tensor([8.0, 16.0, 24.0, 24.0]).expand(2, 4, 4).clone()
    batch["mouth_boxes"][1] = math.nan
    target = batch["target"].float()
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(0))
    kwargs: dict[str, Any] = {
        "cached": True,
        "noise": noise,
        "timesteps": torch.tensor([100, 800]),
        "frame_size": size,
    }
    plain = diffusion_loss(pipe.denoiser, pipe, batch, **kwargs)
    mouth = diffusion_loss(pipe.denoiser, pipe, batch, mouth_weight=3.0, **kwargs)
    both = diffusion_loss(pipe.denoiser, pipe, batch, mouth_weight=3.0, change_weight=2.0, **kwargs)
    with torch.no_grad():
        from emo.training.loss import model_prediction

        noisy = pipe.scheduler.add_noise(target, noise, kwargs["timesteps"])
        prediction = model_prediction(
            pipe.denoiser, pipe, batch, noisy, kwargs["timesteps"],
            reference=batch["reference"].float(), cached=True,
        )  # fmt: skip
    error = (
        prediction - pipe.scheduler.training_target(target, noise, kwargs["timesteps"])
    ).square()
    extra = mouth_weights(batch["mouth_boxes"], target.shape[-2:], size, 3.0)
    assert extra[0].max() == 4.0 and torch.all(extra[1] == 1.0)
    torch.testing.assert_close(mouth, (error * extra).mean() / extra.mean())
    combined = change_weights(target, batch["reference"].float(), 2.0) + extra - 1.0
    torch.testing.assert_close(both, (error * combined).mean() / combined.mean())
    assert not torch.allclose(plain, mouth)
    del batch["mouth_boxes"]
    with pytest.raises(ConfigError, match="mouth boxes"):
        diffusion_loss(pipe.denoiser, pipe, batch, mouth_weight=3.0, **kwargs)


@pytest.mark.parametrize("value", [-1.0, math.inf, math.nan])
def test_a_bad_mouth_weight_is_refused(value: float) -> None:
    with pytest.raises(ConfigError, match="loss.mouth_weight"):
        LossSettings(mouth_weight=value)


def test_prepare_stores_mouth_boxes_where_it_finds_lips(tmp_path: Path, talking: Any) -> None:
    from emo.datasets.synthetic import write_clip as write_synthetic
    from emo.training.prepare import PrepareSettings, prepare_dataset

    (tmp_path / "videos").mkdir()
    write_synthetic(talking, tmp_path / "videos" / "head.mp4")  # the video and its truth
    settings = PrepareSettings(fps=25.0, resolution=64, min_seconds=1.0, max_seconds=2.0)
    prepare_dataset(tmp_path / "videos", tmp_path / "data", settings, progress=False)
    (row,) = read_clip_index(tmp_path / "data")
    tensors = load_file(tmp_path / "data" / "clips" / f"{row['id']}.safetensors")
    mouth, face = tensors["mouth_boxes"], tensors["boxes"]
    assert mouth.shape == (row["frames"], 4) and torch.isfinite(mouth).all()
    centre_y = (mouth[:, 1] + mouth[:, 3]) / 2
    assert torch.all(centre_y > (face[:, 1] + face[:, 3]) / 2)
    assert torch.all((mouth[:, 0] > face[:, 0]) & (mouth[:, 2] < face[:, 2]))


def test_emo_mouth_boxes_from_the_command_line(
    prepared: Path, tmp_path: Path, talking: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from emo.cli import main

    data, first = _with_faces(prepared, tmp_path / "data", talking)
    others = len(read_clip_index(data)) - 1
    assert main(["mouth-boxes", str(data), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"mouth boxes added to 1 clips in {data} (0 had them; no lips found in {others})" in out
    assert "mouth_boxes" in load_file(data / "clips" / f"{first}.safetensors")
    assert main(["mouth-boxes", str(tmp_path / "nothing"), "--quiet"]) == 1
    assert "emo prepare" in capsys.readouterr().err


def test_training_with_a_mouth_weight_needs_mouth_boxes_and_changes_the_weights(
    prepared: Path, tmp_path: Path, analyzer: Any, talking: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from helpers import stage_config, trained_weights

    from emo.training.settings import load_config
    from emo.training.trainer import train

    def run(data: Path, name: str, stage: int, **loss: float) -> dict[str, torch.Tensor]:
        config = stage_config(
            stage, data, tmp_path / name, loss=loss,
            training={"max_steps": 2, "batch_size": 2, "device": "cpu"},
        )  # fmt: skip
        train(load_config(config))
        return trained_weights(tmp_path / name)

    with pytest.raises(ConfigError, match="emo mouth-boxes"):
        run(prepared, "none", 2, mouth_weight=4.0)
    data, _ = _with_faces(
        prepared, tmp_path / "data", talking, count=len(read_clip_index(prepared)) - 1
    )
    add_mouth_boxes(data, analyzer=analyzer)
    with caplog.at_level("WARNING", logger="emo.training"):
        weighted = run(data, "mouth", 2, mouth_weight=40.0)
    assert "1 of " in caplog.text and "have no mouth boxes and weigh 1 everywhere" in caplog.text
    plain = run(data, "plain", 2)
    assert any(not torch.equal(weighted[k], plain[k]) for k in weighted)
    run(data, "stage1", 1, mouth_weight=4.0)  # stage 1 samples carry the boxes too
