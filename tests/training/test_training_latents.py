"""``emo.training.encode_dataset_latents``: latents cached from frames already prepared."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from emo.errors import ConfigError, InputError
from emo.pipelines.emo_pipeline import EMOPipeline
from emo.training import encode_dataset_latents
from emo.training.prepare import PrepareSettings, prepare_dataset
from emo.training.vae import DecoderSettings, VAESettings


@pytest.fixture
def frames_only(
    video_dir: Path, bright_mask: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """``prepared``'s data set without latents (the same settings, no VAE)."""
    out = tmp_path_factory.mktemp("frames_only")
    settings = PrepareSettings(
        fps=10.0, resolution=32, min_seconds=0.8, max_seconds=1.0, face_mask=bright_mask
    )
    prepare_dataset(video_dir, out, settings, progress=False)
    return out


def test_latents_equal_those_prepare_caches_with_the_vae(
    frames_only: Path, prepared: Path, tmp_path: Path
) -> None:
    vae = json.loads((prepared / "dataset.json").read_text())["settings"]["vae"]
    count = encode_dataset_latents(frames_only, tmp_path / "lat", vae, batch_size=3)
    expected = json.loads((prepared / "dataset.json").read_text())
    written = json.loads((tmp_path / "lat" / "dataset.json").read_text())
    assert written == expected  # the VAE's config, hash and scaling factor; settings.vae
    assert (tmp_path / "lat" / "clips.jsonl").read_text() == (prepared / "clips.jsonl").read_text()
    assert count == len((prepared / "clips.jsonl").read_text().splitlines()) > 0
    for clip in sorted((prepared / "clips").glob("*.safetensors")):
        want, got = load_file(clip), load_file(tmp_path / "lat" / "clips" / clip.name)
        assert sorted(got) == sorted(want)
        for name, tensor in want.items():
            # another batch size than prepare's: float rounding only
            torch.testing.assert_close(got[name], tensor, atol=1e-5, rtol=0)


def test_a_rerun_keeps_written_clips_and_refuses_another_vae(
    frames_only: Path, prepared: Path, tmp_path: Path
) -> None:
    vae = json.loads((prepared / "dataset.json").read_text())["settings"]["vae"]
    out = tmp_path / "lat"
    encode_dataset_latents(frames_only, out, vae)
    first = sorted((out / "clips").glob("*.safetensors"))[0]
    stamp = first.stat().st_mtime_ns
    encode_dataset_latents(frames_only, out, vae)
    assert first.stat().st_mtime_ns == stamp
    other = tmp_path / "other_vae"
    EMOPipeline.from_preset("tiny", face_mask="full", seed=5).vae.save_pretrained(other)
    with pytest.raises(InputError, match="latents of another VAE"):
        encode_dataset_latents(frames_only, out, other)


def test_bad_calls_name_what_to_do(frames_only: Path, prepared: Path, tmp_path: Path) -> None:
    vae = json.loads((prepared / "dataset.json").read_text())["settings"]["vae"]
    with pytest.raises(InputError, match="new folder"):
        encode_dataset_latents(frames_only, frames_only, vae)
    with pytest.raises(InputError, match="not a prepared data set"):
        encode_dataset_latents(tmp_path, tmp_path / "out", vae)
    with pytest.raises(InputError, match="batch_size"):
        encode_dataset_latents(frames_only, tmp_path / "out", vae, batch_size=0)
    with pytest.raises(ConfigError, match="device"):
        encode_dataset_latents(frames_only, tmp_path / "out", vae, device="tpu")
    broken = tmp_path / "broken"
    shutil.copytree(frames_only, broken)
    clip = sorted((broken / "clips").glob("*.safetensors"))[0]
    tensors = load_file(clip)
    del tensors["frames"]
    from safetensors.torch import save_file

    save_file(tensors, clip)
    with pytest.raises(InputError, match="holds no frames"):
        encode_dataset_latents(broken, tmp_path / "out2", vae)


def test_device_settings_are_checked() -> None:
    for settings in (VAESettings, DecoderSettings):
        with pytest.raises(ConfigError, match="device must be"):
            settings(device="tpu")
    with pytest.raises(ConfigError, match="device must be"):
        PrepareSettings(device="gpu")
    # the device does not define the data: a resumed folder may switch it
    assert "device" not in PrepareSettings(device="auto").signature()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_cuda_without_a_gpu_is_refused(frames_only: Path, tmp_path: Path) -> None:
    from emo.training.vae import train_vae

    with pytest.raises(ConfigError, match="no CUDA device"):
        train_vae(frames_only, tmp_path / "vae", VAESettings(device="cuda", max_steps=1))
