"""`emo generate` and the pipeline sign their output; keys from options, environment, or none."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("c2pa")

from c2pa_certs import PKI, make_pki

import emo
from emo.cli import main
from emo.provenance.credentials import SigningCredentials
from emo.provenance.hashing import input_digest, weights_sha256
from emo.provenance.manifest import TRAINED_ALGORITHMIC_MEDIA


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"), name="cli")


@pytest.fixture
def audio_file(tmp_path: Path) -> Path:
    import soundfile as sf

    path = tmp_path / "speech.wav"
    sf.write(str(path), np.zeros(4800, np.float32), 16000)  # 0.3 s
    return path


@pytest.fixture(autouse=True)
def _no_keys_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EMO_C2PA_CERT", "EMO_C2PA_KEY", "EMO_C2PA_TRUST_ANCHORS", "EMO_WATERMARK_KEY"):
        monkeypatch.delenv(name, raising=False)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pipeline_signs_with_model_and_input_hashes(
    tmp_path: Path, pki: PKI, portrait_path: Path
) -> None:
    from emo.pipelines.emo_pipeline import EMOPipeline

    built = EMOPipeline.from_preset("tiny", audio_encoder="mel", face_mask="full", seed=0)
    built.save_pretrained(tmp_path / "model")
    pipe = EMOPipeline.from_pretrained(tmp_path / "model", face_mask="full")
    pipe.settings = pipe.settings.replace(
        height=64, width=64, frames_per_clip=4, motion_frames=2, num_inference_steps=1
    )
    pipe.set_progress_bar_config(disable=True)
    audio = np.zeros(4000, np.float32)
    out = pipe(
        portrait_path,
        audio,
        audio_rate=16000,
        generator=torch.Generator().manual_seed(0),
        output_path=tmp_path / "out.mp4",
        content_credentials=SigningCredentials.from_files(pki.chain, pki.key),
    )
    assert isinstance(out, emo.EMOPipelineOutput) and out.path is not None
    report = emo.detect(out.path).manifest
    assert report is not None and report.valid and report.source_type == TRAINED_ALGORITHMIC_MEDIA
    record = report.emo
    assert record["model"]["name"] == str(tmp_path / "model")
    modules = [(name, getattr(pipe, name)) for name in emo.pipelines.emo_pipeline.MODEL_COMPONENTS]
    assert record["model"]["sha256"] == weights_sha256(modules)
    # The portrait's hash is sha256sum of its file; the audio array's, of its bytes.
    assert record["inputs"]["portrait"] == {"sha256": _sha256(portrait_path), "of": "file bytes"}
    assert record["inputs"]["audio"] == input_digest(audio)
    assert record["watermark"]["key"] == "public"
    assert str(record["watermark"]["video_id"]) == emo.detect(out.path).label["video_id"]
    # False: never signed, even with keys in the environment.
    plain = pipe(
        portrait_path,
        audio,
        audio_rate=16000,
        output_path=tmp_path / "plain.mp4",
        content_credentials=False,
    )
    assert isinstance(plain, emo.EMOPipelineOutput) and plain.path is not None
    unsigned = emo.detect(plain.path).manifest
    assert unsigned is not None and not unsigned.present


def test_weights_hash_follows_the_weights() -> None:
    layer = torch.nn.Linear(3, 2)
    first = weights_sha256([("layer", layer)])
    assert weights_sha256([("layer", layer)]) == first  # cached, same value
    with torch.no_grad():
        layer.weight[0, 0] += 1.0  # an in-place change bumps the version: hashed again
    changed = weights_sha256([("layer", layer)])
    assert changed != first
    assert weights_sha256([("layer", layer.to(torch.bfloat16))]) not in (first, changed)
    assert weights_sha256([("meta", torch.nn.Linear(3, 2, device="meta"))]) is None


def test_cli_generate_signs_with_options_or_environment(
    tmp_path: Path,
    pki: PKI,
    portrait_path: Path,
    audio_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    common = [str(portrait_path), str(audio_file), "--steps", "1", "--size", "64", "--quiet"]
    keys = ["--c2pa-cert", str(pki.chain), "--c2pa-key", str(pki.key)]
    assert main(["generate", *common, "-o", str(tmp_path / "a.mp4"), *keys]) == 0
    capsys.readouterr()
    assert main(["detect", str(tmp_path / "a.mp4"), "--trust-anchors", str(pki.ca)]) == 0
    assert "c2pa: manifest valid, trusted signer" in capsys.readouterr().out
    # The same keys from the environment.
    monkeypatch.setenv("EMO_C2PA_CERT", str(pki.chain))
    monkeypatch.setenv("EMO_C2PA_KEY", str(pki.key))
    assert main(["generate", *common, "-o", str(tmp_path / "b.mp4")]) == 0
    report = emo.detect(tmp_path / "b.mp4").manifest
    assert report is not None and report.valid and report.signer == "cli signer"
    # --no-c2pa wins over the environment.
    assert main(["generate", *common, "-o", str(tmp_path / "c.mp4"), "--no-c2pa"]) == 0
    report = emo.detect(tmp_path / "c.mp4").manifest
    assert report is not None and not report.present


def test_cli_generate_without_keys_says_so_and_dev_key_is_untrusted(
    tmp_path: Path, portrait_path: Path, audio_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = [str(portrait_path), str(audio_file), "--steps", "1", "--size", "64"]
    assert main(["generate", *common, "-o", str(tmp_path / "plain.mp4")]) == 0
    err = capsys.readouterr().err
    assert "not signed with C2PA Content Credentials" in err and "EMO_C2PA_CERT" in err
    report = emo.detect(tmp_path / "plain.mp4").manifest
    assert report is not None and not report.present
    assert main(["generate", *common, "-o", str(tmp_path / "dev.mp4"), "--c2pa-dev-key"]) == 0
    assert "UNTRUSTED" in capsys.readouterr().err
    report = emo.detect(tmp_path / "dev.mp4").manifest
    assert report is not None and report.valid and not report.trusted
    assert report.signer == "emo development signer"
    # Contradictory or broken keys fail before any model loads, naming the problem.
    bad = tmp_path / "missing-key.pem"
    assert (
        main(["generate", *common, "-o", str(tmp_path / "x.mp4"), "--c2pa-dev-key", "--no-c2pa"])
        == 1
    )
    assert "give only one" in capsys.readouterr().err
    cert_only = ["--c2pa-cert", str(bad), "--c2pa-key", str(bad)]
    assert main(["generate", *common, "-o", str(tmp_path / "x.mp4"), *cert_only]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()


def test_cli_secret_watermark_key(
    tmp_path: Path, portrait_path: Path, audio_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "watermark.key"
    key.write_text("a-secret-key-of-enough-length-1234\n")
    # 192 px: the size the public-key CLI test uses for a mark that survives H.264.
    common = [str(portrait_path), str(audio_file), "--steps", "1", "--size", "192", "--quiet"]
    out = tmp_path / "secret.mp4"
    assert (
        main(["generate", *common, "-o", str(out), "--no-c2pa", "--watermark-key-file", str(key)])
        == 0
    )
    capsys.readouterr()
    assert main(["detect", str(out)]) == 1  # the public key sees nothing
    printed = capsys.readouterr().out
    assert "private key" in printed and "--watermark-key-file" in printed
    assert main(["detect", str(out), "--watermark-key-file", str(key)]) == 0
    found = emo.detect(out, key=key.read_text().strip())
    assert found.watermarked and found.label["watermark"] == "emo-provenance-v1 (private key)"
    key.write_text("short")
    assert (
        main(["generate", *common, "-o", str(tmp_path / "y.mp4"), "--watermark-key-file", str(key)])
        == 1
    )
    assert "at least 16" in capsys.readouterr().err
