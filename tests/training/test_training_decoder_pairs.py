"""``emo.training.decoder_pairs``: the model's predicted latents, paired with the true frames."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import load_example, stage_config

from emo.errors import ConfigError, InputError
from emo.models.vae import AutoencoderKL
from emo.pipelines.conditioning import guided_prediction
from emo.training.data_format import read_dataset_info
from emo.training.decoder_pairs import (
    GeneratedPairs,
    GeneratedPairSettings,
    generated_latent_pairs,
)
from emo.training.model import build_pipeline
from emo.training.settings import load_config
from emo.training.vae import DecoderSettings, finetune_decoder

pytestmark = pytest.mark.usefixtures("one_thread")

NO_GUIDANCE = {"audio_guidance": 1.0, "reference_guidance": 1.0}


@pytest.fixture(scope="module")
def model(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stage-3 shaped model of the prepared data (clips of 4 + 2 motion frames, speed)."""
    out = tmp_path_factory.mktemp("model")
    config = load_config(stage_config(3, prepared, out / "run"))
    build_pipeline(config, read_dataset_info(prepared)).save_pretrained(out / "pipe")
    return out / "pipe"


def _encoded(model: Path, frames: torch.Tensor) -> torch.Tensor:
    vae = AutoencoderKL.from_pretrained(model / "vae")
    with torch.no_grad():
        return vae.encode(frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0).mode()


def test_pairs_line_up_with_their_frames_and_noise_leaves_more_to_the_model(
    model: Path, prepared: Path
) -> None:
    clean = generated_latent_pairs(
        model,
        prepared,
        GeneratedPairSettings(clips=3, batch_size=2, min_timestep=0, max_timestep=0, **NO_GUIDANCE),
    )
    assert len(clean) == 12  # 3 clips x 4 frames
    assert clean.latents.shape == (12, 4, 4, 4) and clean.latents.dtype == torch.float32
    assert clean.frames.shape == (12, 32, 32, 3) and clean.frames.dtype == torch.uint8
    assert clean.timesteps.tolist() == [0] * 12
    truth = _encoded(model, clean.frames)
    # At timestep 0 the noisy input is the clean latent: the prediction is the frame's own
    # latent up to the (untrained) network's error times the little noise there is; the
    # frames of other pairs are further away.
    aligned = (clean.latents - truth).abs().mean()
    shifted = (clean.latents - truth.roll(4, dims=0)).abs().mean()
    assert aligned < 0.75 * shifted, (aligned, shifted)

    noisy = generated_latent_pairs(
        model,
        prepared,
        GeneratedPairSettings(
            clips=3, batch_size=3, min_timestep=500, max_timestep=500, **NO_GUIDANCE
        ),
    )
    assert torch.equal(noisy.frames, clean.frames)  # the same samples, in the same order
    assert (noisy.latents - truth).abs().mean() > 10 * aligned


def test_guidance_uses_the_branches_and_the_pipelines_formula(model: Path, prepared: Path) -> None:
    full, ref_only, neither = torch.tensor(3.0), torch.tensor(1.0), torch.tensor(0.0)
    assert float(guided_prediction(full, ref_only, neither, 2.5, 1.5)) == 1 + 2.5 * 2 + 0.5 * 1
    assert float(guided_prediction(full, ref_only, None, 2.5, 1.5)) == 1 + 2.5 * 2
    settings = {"clips": 2, "min_timestep": 300, "max_timestep": 300, "seed": 4}
    plain = generated_latent_pairs(
        model, prepared, GeneratedPairSettings(**settings, **NO_GUIDANCE)
    )
    guided = generated_latent_pairs(
        model,
        prepared,
        GeneratedPairSettings(**settings, audio_guidance=3.0, reference_guidance=2.0),
    )
    assert torch.equal(plain.frames, guided.frames)
    assert not torch.allclose(plain.latents, guided.latents)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("clips", 0),
        ("batch_size", True),
        ("min_timestep", -1),
        ("max_timestep", 5),
        ("audio_guidance", float("nan")),
        ("device", "tpu"),
    ],
)
def test_bad_settings_are_refused(field: str, value: object) -> None:
    values: dict[str, object] = {"min_timestep": 10, "max_timestep": 20, field: value}
    with pytest.raises(ConfigError, match="GeneratedPairSettings"):
        GeneratedPairSettings(**values)  # type: ignore[arg-type]


def test_timesteps_beyond_the_schedule_are_refused(model: Path, prepared: Path) -> None:
    with pytest.raises(ConfigError, match="max_timestep 5000"):
        generated_latent_pairs(
            model, prepared, GeneratedPairSettings(min_timestep=0, max_timestep=5000)
        )


def test_the_decoder_learns_to_decode_the_models_latents(
    model: Path, prepared: Path, tmp_path: Path
) -> None:
    pairs = generated_latent_pairs(
        model, prepared, GeneratedPairSettings(clips=4, min_timestep=200, max_timestep=600)
    )

    def error(vae_dir: Path) -> float:
        vae = AutoencoderKL.from_pretrained(vae_dir)
        with torch.no_grad():
            decoded = vae.decode(pairs.latents)
        return float(
            (decoded - (pairs.frames.permute(0, 3, 1, 2).float() / 127.5 - 1)).abs().mean()
        )

    settings = DecoderSettings(
        max_steps=30, batch_size=4, learning_rate=2e-3, warmup_steps=3, generated_share=1.0
    )
    result = finetune_decoder(prepared, model / "vae", tmp_path / "dec", settings, generated=pairs)
    assert error(result.vae_dir) < 0.8 * error(model / "vae")
    record = json.loads((result.vae_dir / "training.json").read_text())
    assert record["generated_pairs"] == 16 and record["settings"]["generated_share"] == 1.0
    before = AutoencoderKL.from_pretrained(model / "vae").state_dict()
    after = AutoencoderKL.from_pretrained(result.vae_dir).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("encoder."))

    wrong = GeneratedPairs(pairs.latents, pairs.frames[:, :16, :16], pairs.timesteps)
    with pytest.raises(InputError, match="same data set"):
        finetune_decoder(prepared, model / "vae", tmp_path / "bad", settings, generated=wrong)
    with pytest.raises(ConfigError, match="generated_share"):
        DecoderSettings(generated_share=1.5)


def test_sharpen_decoder_script_learns_from_generated_latents(
    model: Path, prepared: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    module = load_example("sharpen_decoder")
    out = tmp_path / "sharp"
    argv = ["--model", str(model), "--data", str(prepared), "--out", str(out), "--steps", "3",
            "--batch-size", "4", "--generated-clips", "2", "--generated-share", "0.75",
            "--timesteps", "50,400", "--threads", "1"]  # fmt: skip
    assert module.main(argv) == 0
    decoder = json.loads((out / "record.json").read_text())["phases"]["decoder"]
    assert decoder["generated_clips"] == 2 and decoder["generated_share"] == 0.75
    assert decoder["timesteps"] == [50, 400]
    vae = json.loads((out / "vae" / "training.json").read_text())
    assert vae["generated_pairs"] == 8  # 2 clips x 4 frames
    old = load_file(model / "vae" / "model.safetensors")
    new = load_file(out / "emo-demo" / "vae" / "model.safetensors")
    assert any(not torch.equal(old[k], new[k]) for k in old if k.startswith("decoder."))
    with pytest.raises(SystemExit):
        module.main([*argv[:-4], "--timesteps", "100", "--threads", "1"])
