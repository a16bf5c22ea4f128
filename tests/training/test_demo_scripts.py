"""The demo model's training scripts: a smoke run of every phase, continuing, packing data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(*args: str) -> None:
    subprocess.run([sys.executable, *args], check=True, timeout=900)


@pytest.mark.slow
def test_train_demo_quick_runs_every_phase_then_finetune_continues_it(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _run(str(EXAMPLES / "train_demo.py"), "--out", str(run), "--quick", "--recipe", "64",
         "--time-budget", "1", "--threads", "2")  # fmt: skip
    record = json.loads((run / "record.json").read_text())
    phases = record["phases"]
    assert {"synthetic", "voices", "prepare", "vae", "latents", "init"} <= set(phases)
    assert "decoder" not in phases  # the recipes do not sharpen the decoder
    for stage in ("stage1", "stage2", "stage3"):
        # a spent time budget still trains the calibration steps and 10 more
        assert phases[stage]["steps"] == 30 and phases[stage]["seconds_per_step"] > 0
    model = run / "emo-demo"
    settings = json.loads((model / "model_index.json").read_text())["settings"]
    assert settings["height"] == 64 and settings["output_size"] == 512
    _run(str(EXAMPLES / "finetune_demo.py"), "--data", str(run / "data_latents"), "--out",
         str(tmp_path / "ft"), "--base", str(model), "--steps", "3", "--schedule", "cosine",
         "--change-weight", "2", "--mouth-weight", "3", "--trainable", "audio",
         "--threads", "2")  # fmt: skip
    continued = json.loads((tmp_path / "ft" / "emo-demo" / "training.json").read_text())
    assert continued["phases"]["finetune"]["steps"] == 3
    assert continued["phases"]["finetune"]["schedule"] == "cosine"
    config = json.loads((tmp_path / "ft" / "finetune" / "config.json").read_text())
    assert config["optimizer"]["schedule"] == "cosine"
    assert config["loss"]["change_weight"] == continued["phases"]["finetune"]["change_weight"] == 2
    assert config["loss"]["mouth_weight"] == continued["phases"]["finetune"]["mouth_weight"] == 3
    assert config["training"]["trainable"] == continued["phases"]["finetune"]["trainable"]
    assert config["training"]["trainable"] == ["audio"]
    clip = next((run / "data_latents" / "clips").glob("*.safetensors"))
    assert load_file(clip)["mouth_boxes"].shape[1] == 4  # emo prepare found the lips
    assert continued["base"]["recipe"]["resolution"] == continued["recipe"]["resolution"] == 64
    before = load_file(model / "audio_projection" / "model.safetensors")
    after = load_file(tmp_path / "ft" / "emo-demo" / "audio_projection" / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    # only the audio group trained: the Backbone's audio attentions moved, nothing else did
    before = load_file(model / "backbone" / "model.safetensors")
    after = load_file(tmp_path / "ft" / "emo-demo" / "backbone" / "model.safetensors")
    audio = [k for k in before if ".audio_" in k]
    assert audio and any(not torch.equal(before[k], after[k]) for k in audio)
    assert all(torch.equal(before[k], after[k]) for k in before if k not in audio)
    before = load_file(model / "reference_net" / "model.safetensors")
    after = load_file(tmp_path / "ft" / "emo-demo" / "reference_net" / "model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)

    # A second run on the same data continues the model with its VAE (kept in half
    # precision, as a small checkpoint), batches halved (twice the steps): no VAE phase,
    # stage 1 starts from the model.
    from emo.pipelines.emo_pipeline import EMOPipeline

    half = tmp_path / "half"
    EMOPipeline.from_pretrained(model, dtype=torch.float16).save_pretrained(half)
    assert load_file(half / "vae" / "model.safetensors")["encoder.conv_in.weight"].dtype == (
        torch.float16
    )
    again = tmp_path / "again"
    again.mkdir()
    (again / "data").symlink_to(run / "data")
    made = {k: phases[k] for k in ("synthetic", "voices", "prepare")}
    (again / "record.json").write_text(json.dumps({"phases": made}))
    _run(str(EXAMPLES / "train_demo.py"), "--out", str(again), "--quick", "--recipe", "64",
         "--vae", str(half), "--init", str(half), "--stage-steps", "5,5,5",
         "--batch-scale", "0.5", "--threads", "2")  # fmt: skip
    record = json.loads((again / "record.json").read_text())
    assert record["phases"]["vae"]["source"] == str((half / "vae").resolve())
    assert record["phases"]["init"]["folder"] == str(half.resolve())
    assert record["recipe"]["batch_sizes"] == [2, 1, 1]
    assert [record["phases"][f"stage{i}"]["steps"] for i in (1, 2, 3)] == [10, 10, 10]
    # trained and saved in float32: the VAE is the model's, to half-precision rounding
    want = load_file(model / "vae" / "model.safetensors")
    got = load_file(again / "emo-demo" / "vae" / "model.safetensors")
    assert want.keys() == got.keys()
    for key in want:
        assert got[key].dtype == torch.float32
        assert torch.equal(got[key], want[key].half().float())
    backbone = load_file(again / "emo-demo" / "backbone" / "model.safetensors")
    assert all(v.dtype == torch.float32 for v in backbone.values())


def test_pack_and_unpack_keep_a_prepared_set_within_coding_loss(
    prepared: Path, tmp_path: Path
) -> None:
    sys.path.insert(0, str(EXAMPLES / "training"))
    from pack_prepared import pack, unpack

    count = pack(prepared, tmp_path / "bundle")
    assert count == len((prepared / "clips.jsonl").read_text().splitlines()) > 1
    assert unpack(tmp_path / "bundle", tmp_path / "data", limit=1) == 1
    assert len((tmp_path / "data" / "clips.jsonl").read_text().splitlines()) == 1
    assert unpack(tmp_path / "bundle", tmp_path / "data") == count
    assert (tmp_path / "data" / "dataset.json").read_text() == (
        prepared / "dataset.json"
    ).read_text()
    for clip in sorted((prepared / "clips").glob("*.safetensors")):
        want, got = load_file(clip), load_file(tmp_path / "data" / "clips" / clip.name)
        assert sorted(got) == sorted(set(want) - {"audio", "latents"})
        error = (got["frames"].float() - want["frames"].float()).abs().mean()
        assert float(error) < 2.0  # grey levels: H.264 4:4:4 at CRF 10
        torch.testing.assert_close(
            got["audio_features"], want["audio_features"], rtol=1e-3, atol=1e-3
        )
        assert torch.equal(got["boxes"], want["boxes"])


def test_finetune_refuses_unknown_parameter_groups_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "ft"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "finetune_demo.py"), "--data", str(tmp_path),
         "--out", str(out), "--trainable", "audio,eyes"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--trainable" in done.stderr and "eyes" in done.stderr and "audio" in done.stderr
    assert not out.exists()
