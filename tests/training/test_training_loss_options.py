"""Loss weighting by change from the reference, and noised motion frames (drift robustness)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import stage_config, trained_weights

from emo.errors import ConfigError
from emo.pipelines.emo_pipeline import EMOPipeline
from emo.training.dataset import ClipDataset, SampleSpec
from emo.training.loss import change_weights, diffusion_loss
from emo.training.settings import load_config
from emo.training.trainer import train


class Recorder(torch.nn.Module):
    """The real denoiser, keeping what it was given and what it returned."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.seen: dict[str, Any] = {}

    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        out: torch.Tensor = self.inner(noisy, timesteps, **kwargs)
        self.seen = {"noisy": noisy, **kwargs, "prediction": out}
        return out


def test_change_weights_by_value() -> None:
    reference = torch.zeros(1, 2, 2, 2)
    target = torch.zeros(1, 2, 1, 2, 2)
    target[0, :, 0, 0, 0] = torch.tensor([1.0, 3.0])  # mean |change| over channels: 2
    weights = change_weights(target, reference, 3.0)
    # d = [[2, 0], [0, 0]], mean(d) = 0.5: weights 1 + 3 * d / 0.5
    expected = torch.tensor([[13.0, 1.0], [1.0, 1.0]]).reshape(1, 1, 1, 2, 2)
    torch.testing.assert_close(weights, expected)


def _stage2_parts(prepared: Path) -> tuple[EMOPipeline, dict[str, torch.Tensor], Recorder]:
    pipe = EMOPipeline.from_preset("tiny", face_mask="full", seed=0)
    spec = SampleSpec(frames_per_clip=4, motion_frames=2, audio_context=2)
    data = ClipDataset(prepared, spec, seed=0, use_latents=True)
    batch = data.batch([0, 1], epoch=0)
    return pipe, batch, Recorder(pipe.denoiser)


def test_the_weighted_loss_is_the_weighted_mean_of_the_squared_error(prepared: Path) -> None:
    pipe, batch, model = _stage2_parts(prepared)
    gen = torch.Generator().manual_seed(0)
    target = batch["target"].float()
    noise = torch.randn(target.shape, generator=gen)
    timesteps = torch.tensor([100, 800])
    kwargs: dict[str, Any] = {"cached": True, "noise": noise, "timesteps": timesteps}
    plain = diffusion_loss(model, pipe, batch, **kwargs)
    weighted = diffusion_loss(model, pipe, batch, change_weight=2.0, **kwargs)
    wanted = pipe.scheduler.training_target(target, noise, timesteps)
    error = (model.seen["prediction"] - wanted).square()
    weights = change_weights(target, batch["reference"].float(), 2.0)
    torch.testing.assert_close(plain, error.mean())
    torch.testing.assert_close(weighted, (error * weights).mean() / weights.mean())
    assert not torch.allclose(plain, weighted)


def test_motion_noise_is_added_to_the_motion_latents_only(prepared: Path) -> None:
    pipe, batch, model = _stage2_parts(prepared)
    target = batch["target"].float()
    kwargs: dict[str, Any] = {
        "cached": True,
        "noise": torch.zeros_like(target),
        "timesteps": torch.tensor([10, 20]),
    }
    diffusion_loss(model, pipe, batch, **kwargs)
    clean = model.seen["motion_latents"]
    extra = torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    diffusion_loss(model, pipe, batch, motion_noise=extra, **kwargs)
    torch.testing.assert_close(model.seen["motion_latents"], clean + extra)
    torch.testing.assert_close(model.seen["reference_latent"], batch["reference"].float())


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("data", "motion_noise", -0.1),
        ("loss", "change_weight", -1.0),
        ("loss", "change_weight", math.inf),
    ],
)
def test_bad_values_are_refused(
    prepared: Path, tmp_path: Path, section: str, key: str, value: float
) -> None:
    config = stage_config(2, prepared, tmp_path)
    config.setdefault(section, {})[key] = value
    with pytest.raises(ConfigError, match=f"{section}.{key}"):
        load_config(config)


def test_a_stage_2_run_with_both_is_reproducible_and_differs_from_a_plain_run(
    prepared: Path, tmp_path: Path
) -> None:
    def run(name: str, motion_noise: float = 0.0, **sections: Any) -> dict[str, torch.Tensor]:
        config = stage_config(
            2,
            prepared,
            tmp_path / name,
            training={"max_steps": 2, "batch_size": 2, "device": "cpu"},
            checkpoints={"every": 2},
            **sections,
        )
        config["data"]["motion_noise"] = motion_noise
        result = train(load_config(config))
        assert all(math.isfinite(loss) for _, loss in result.losses)
        return trained_weights(tmp_path / name)

    first = run("a", loss={"change_weight": 3.0}, motion_noise=0.5)
    again = run("b", loss={"change_weight": 3.0}, motion_noise=0.5)
    plain = run("plain")
    assert first.keys() == again.keys() == plain.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], plain[k]) for k in first)
