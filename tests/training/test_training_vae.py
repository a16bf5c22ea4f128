"""``emo.training.vae``: a small VAE trained from nothing on a prepared data set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from emo.errors import ConfigError, InputError
from emo.models.vae import AutoencoderKL
from emo.training.vae import VAESettings, load_prepared_frames, train_vae

SMALL = {"block_out_channels": (8, 8), "norm_num_groups": 4, "batch_size": 4, "seed": 3}


def test_load_prepared_frames_takes_an_even_share_of_every_clip(prepared: Path) -> None:
    frames = load_prepared_frames(prepared, max_frames=6)
    assert frames.dtype == torch.uint8 and tuple(frames.shape[1:]) == (32, 32, 3)
    assert frames.shape[0] == 6
    with pytest.raises(InputError, match="not a prepared data set"):
        load_prepared_frames(prepared / "clips", max_frames=6)


@pytest.mark.usefixtures("one_thread")
def test_train_vae_learns_fits_the_scaling_factor_and_saves(prepared: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    settings = VAESettings(**SMALL, max_steps=40, learning_rate=3e-3, warmup_steps=5)
    result = train_vae(prepared, tmp_path / "vae", settings, log_every=10, log=lines.append)
    assert result.steps == 40 and len(lines) == 4 and "vae step 40/40" in lines[-1]
    assert result.losses[-1][1] < result.losses[0][1]  # it learns
    vae = AutoencoderKL.from_pretrained(result.vae_dir)
    assert vae.downscale_factor == 2
    assert vae.config["scaling_factor"] == pytest.approx(result.scaling_factor)
    frames = load_prepared_frames(prepared, max_frames=256)
    pixels = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.no_grad():
        latents = vae.encode(pixels).mode() * result.scaling_factor
        error = (vae.decode(latents / result.scaling_factor) - pixels).abs().mean()
    assert float(latents.std()) == pytest.approx(1.0, abs=0.05)  # unit-variance latents
    assert float(error) == pytest.approx(result.reconstruction_l1, rel=0.05)
    record = json.loads((result.vae_dir / "training.json").read_text())
    assert (
        record["steps"] == 40 and record["frames"] == result.frames and record["resolution"] == 32
    )


def test_train_vae_is_deterministic_per_seed(prepared: Path, tmp_path: Path) -> None:
    settings = VAESettings(**SMALL, max_steps=3)
    a = train_vae(prepared, tmp_path / "a", settings)
    b = train_vae(prepared, tmp_path / "b", settings)
    wa = AutoencoderKL.from_pretrained(a.vae_dir).state_dict()
    wb = AutoencoderKL.from_pretrained(b.vae_dir).state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_train_vae_refuses_frames_the_vae_cannot_downsample(prepared: Path, tmp_path: Path) -> None:
    settings = VAESettings(block_out_channels=(4,) * 7, norm_num_groups=4, max_steps=1)
    with pytest.raises(InputError, match="multiple of the VAE's downscale factor 64"):
        train_vae(prepared, tmp_path / "vae", settings)
    assert not (tmp_path / "vae").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("batch_size", 0),
        ("max_steps", True),
        ("learning_rate", 0.0),
        ("block_out_channels", ()),
        ("kl_weight", -1.0),
        ("threads", 0),
    ],
)
def test_vae_settings_are_checked(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        VAESettings(**{field: value})  # type: ignore[arg-type]
