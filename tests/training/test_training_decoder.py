"""``emo.training.vae.finetune_decoder``: a sharper decoder, the same latents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import load_example

from emo.errors import ConfigError
from emo.models.vae import AutoencoderKL
from emo.training.vae import DecoderSettings, VAESettings, finetune_decoder, train_vae

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"block_out_channels": (8, 8), "norm_num_groups": 4, "batch_size": 4, "seed": 3}


@pytest.fixture(scope="module")
def small_vae(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vae")
    train_vae(prepared, out, VAESettings(**SMALL, max_steps=20, learning_rate=3e-3))
    return out


def test_only_the_decoder_learns_and_it_reconstructs_better(
    prepared: Path, small_vae: Path, tmp_path: Path
) -> None:
    lines: list[str] = []
    settings = DecoderSettings(max_steps=40, batch_size=4, learning_rate=2e-3, warmup_steps=5)
    result = finetune_decoder(
        prepared, small_vae, tmp_path / "dec", settings, log_every=20, log=lines.append
    )
    before = AutoencoderKL.from_pretrained(small_vae)
    after = AutoencoderKL.from_pretrained(result.vae_dir)
    old, new = before.state_dict(), after.state_dict()
    decoder = [k for k in old if k.startswith(("decoder.", "post_quant_conv."))]
    assert decoder and all(not torch.equal(old[k], new[k]) for k in decoder if "weight" in k)
    assert all(torch.equal(old[k], new[k]) for k in old if k not in decoder)
    assert after.config["scaling_factor"] == before.config["scaling_factor"]
    assert result.scaling_factor == before.config["scaling_factor"]
    old_l1 = json.loads((small_vae / "training.json").read_text())["reconstruction_l1"]
    assert result.reconstruction_l1 < old_l1
    assert len(lines) == 2 and "decoder step 40/40" in lines[-1]
    record = json.loads((result.vae_dir / "training.json").read_text())
    assert record["finetuned_decoder_of"] == str(small_vae) and record["steps"] == 40


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_steps", 0), ("batch_size", True), ("learning_rate", 0.0), ("edge_weight", -1.0)],
)
def test_bad_settings_are_refused(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match="DecoderSettings"):
        DecoderSettings(**{field: value})  # type: ignore[arg-type]


def test_sharpen_decoder_script_swaps_in_a_new_decoder_and_keeps_the_rest(
    prepared: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    from emo.pipelines.emo_pipeline import EMOPipeline

    module = load_example("sharpen_decoder")
    base = tmp_path / "base"
    EMOPipeline.from_preset("tiny", face_mask="full").save_pretrained(base)
    (base / "training.json").write_text(json.dumps({"recipe": {"resolution": 32}}))
    out = tmp_path / "sharp"
    argv = ["--model", str(base), "--data", str(prepared), "--out", str(out), "--steps", "3",
            "--batch-size", "2", "--latent-noise", "0.1", "--threads", "1"]  # fmt: skip
    assert module.main(argv) == 0

    model = out / "emo-demo"
    old = load_file(base / "vae" / "model.safetensors")
    new = load_file(model / "vae" / "model.safetensors")
    decoder = [k for k in old if k.startswith(("decoder.", "post_quant_conv."))]
    assert any(not torch.equal(old[k], new[k]) for k in decoder)
    assert all(torch.equal(old[k], new[k]) for k in old if k not in decoder)
    for part in ("backbone", "reference_net", "audio_projection"):
        want = load_file(base / part / "model.safetensors")
        got = load_file(model / part / "model.safetensors")
        assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    record = json.loads((model / "training.json").read_text())
    assert record["recipe"] == {"resolution": 32} and record["base"]["recipe"]["resolution"] == 32
    assert record["phases"]["decoder"]["steps"] == 3
    assert record["phases"]["decoder"]["latent_noise"] == 0.1
