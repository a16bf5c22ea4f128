"""Writers sign their finished files; c2pa-python's own Reader validates them; tampering shows."""

from __future__ import annotations

import json
import os
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("c2pa")

import c2pa
from c2pa_certs import PKI, make_pki

import emo
from emo.cli import main
from emo.errors import CredentialsError, EMOWarning
from emo.io.writers.frames import PNGFramesWriter
from emo.io.writers.pyav import GIFWriter, MP4Writer, WebMWriter
from emo.provenance.credentials import SigningCredentials
from emo.provenance.manifest import EMO_ASSERTION, TRAINED_ALGORITHMIC_MEDIA, GenerationFacts
from emo.provenance.payload import Payload
from emo.provenance.signing import ContentSigner
from emo.provenance.watermark import Watermarker

FACTS = GenerationFacts(
    model_name="test-model",
    model_sha256="ab" * 32,
    inputs={"portrait": {"sha256": "cd" * 32, "of": "file bytes"}},
    watermark={"scheme": "emo-provenance-v1", "key": "public", "video_id": 5},
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def signer(pki: PKI) -> ContentSigner:
    return ContentSigner(SigningCredentials.from_files(pki.chain, pki.key), FACTS)


@pytest.fixture(scope="module")
def marked(make_clip: Callable[..., np.ndarray]) -> np.ndarray:
    clip = make_clip(4, size=256, frames=6)
    return Watermarker().embed(clip, Payload(version=emo.__version__, video_id=5)).numpy()


def _write(writer: object, frames: np.ndarray, path: Path, signer: ContentSigner) -> Path:
    session = writer.open(path, fps=25, width=frames.shape[2], height=frames.shape[1])  # type: ignore[attr-defined]
    with session:
        session.set_metadata({"generator": "emo", "synthetic": "true"})
        session.set_content_signer(signer)
        session.write(frames)
        session.close()
    return path


def _sdk_read(path: Path, trust: bytes | None = None) -> tuple[str, dict, list[str]]:
    """Validate with c2pa-python directly: state, active manifest, failure codes."""
    context = (
        c2pa.Context.from_dict({"trust": {"trust_anchors": trust.decode()}}) if trust else None
    )
    with c2pa.Reader(str(path), context=context) if context else c2pa.Reader(str(path)) as reader:
        state = reader.get_validation_state()
        manifest = reader.get_active_manifest()
        results = reader.get_validation_results() or {}
    codes = [f["code"] for f in results.get("activeManifest", {}).get("failure", [])]
    return state, manifest, codes


def _flip_in_mdat(path: Path) -> None:
    """Flip one bit in the middle of the MP4's media data (the encoded video stream)."""
    data = bytearray(path.read_bytes())
    pos = 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        if data[pos + 4 : pos + 8] == b"mdat":
            data[pos + 8 + (size - 8) // 2] ^= 0x01
            path.write_bytes(bytes(data))
            return
        pos += size
    raise AssertionError("no mdat box")


def test_signed_mp4_validates_with_the_sdk_reader(
    tmp_path: Path, pki: PKI, signer: ContentSigner, marked: np.ndarray
) -> None:
    path = _write(MP4Writer(), marked, tmp_path / "out.mp4", signer)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no temporary left
    state, manifest, codes = _sdk_read(path)
    assert state == "Valid"  # signature and hashes hold; the signer is not on a trust list
    assert codes == ["signingCredential.untrusted"]
    actions = next(a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions"))
    created = actions["data"]["actions"][0]
    assert created["action"] == "c2pa.created"
    assert created["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert manifest["claim_generator_info"][0]["name"] == "emo"
    assert manifest["claim_generator_info"][0]["version"] == emo.__version__
    assert manifest["title"] == "out.mp4"
    record = next(a for a in manifest["assertions"] if a["label"] == EMO_ASSERTION)["data"]
    assert record["model"] == {"name": "test-model", "sha256": "ab" * 32}
    assert record["inputs"]["portrait"]["sha256"] == "cd" * 32
    assert manifest["signature_info"]["common_name"] == "test signer"
    # The media data is hashed in 1 MiB chunks (a Merkle tree), so readers validate a long
    # video chunk by chunk instead of reading it whole (see benchmarks/c2pa_signing.py).
    bmff = next(a for a in manifest["assertions"] if a["label"].startswith("c2pa.hash.bmff"))
    assert bmff["data"]["merkle"][0]["fixedBlockSize"] == 1 << 20
    # With the test CA as a trust anchor, the same file is trusted.
    assert _sdk_read(path, trust=pki.ca_pem)[0] == "Trusted"
    # emo.detect agrees, and still finds the watermark and the label.
    found = emo.detect(path, trust_anchors=pki.ca)
    assert found.watermarked and found.label["generator"] == "emo"
    report = found.manifest
    assert report is not None and report.valid and report.trusted
    assert not report.changed_after_signing and report.signature_valid
    assert report.signer == "test signer" and report.claim_generator == f"emo {emo.__version__}"
    assert report.source_type == TRAINED_ALGORITHMIC_MEDIA
    assert found.verdict == "synthetic"


def test_one_flipped_byte_in_the_video_stream_fails_validation(
    tmp_path: Path,
    signer: ContentSigner,
    marked: np.ndarray,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _write(MP4Writer(), marked, tmp_path / "out.mp4", signer)
    _flip_in_mdat(path)
    state, _, codes = _sdk_read(path)
    assert state == "Invalid"
    assert "assertion.bmffHash.mismatch" in codes
    result = emo.detect(path)
    assert result.manifest is not None
    assert result.manifest.changed_after_signing and not result.manifest.valid
    assert result.manifest.signature_valid  # the claim is intact; the video is not
    assert result.verdict == "tampered"
    assert main(["detect", str(path)]) == 3
    out = capsys.readouterr().out
    assert "TAMPERED" in out and "CHANGED AFTER SIGNING" in out
    assert main(["detect", "--json", str(path)]) == 3
    record = json.loads(capsys.readouterr().out)
    assert record["verdict"] == "tampered"
    assert record["c2pa"]["changed_after_signing"] is True
    assert "assertion.bmffHash.mismatch" in record["c2pa"]["failures"]


def test_a_changed_manifest_breaks_the_signature(
    tmp_path: Path, signer: ContentSigner, marked: np.ndarray
) -> None:
    path = _write(MP4Writer(), marked, tmp_path / "out.mp4", signer)
    data = bytearray(path.read_bytes())
    at = data.find(b"test-model")  # the model's name inside the signed assertion
    data[at] ^= 0x20
    path.write_bytes(bytes(data))
    report = emo.detect(path).manifest
    assert report is not None and report.tampered and not report.signature_valid
    assert not report.changed_after_signing


def test_gif_and_png_frames_are_signed_and_keep_their_label(
    tmp_path: Path, signer: ContentSigner, marked: np.ndarray
) -> None:
    gif = _write(GIFWriter(), marked, tmp_path / "out.gif", signer)
    assert _sdk_read(gif)[0] == "Valid"
    found = emo.detect(gif)
    assert found.label["generator"] == "emo" and found.verdict == "synthetic"
    folder = _write(PNGFramesWriter(), marked, tmp_path / "frames", signer)
    frames = sorted(folder.glob("*.png"))
    assert len(frames) == 6
    for frame in frames:  # each frame carries its own manifest
        state, manifest, _ = _sdk_read(frame)
        assert state == "Valid" and manifest["title"] == frame.name
    found = emo.detect(folder)
    assert found.manifest is not None and found.manifest.valid
    assert found.label["synthetic"] == "true"
    # Edit the label of the last frame (a valid PNG still): that frame fails validation.
    data = frames[-1].read_bytes()
    old_text = b"synthetic\x00\x00\x00\x00\x00true"
    at = data.index(old_text) - 4  # the chunk's type
    length = int.from_bytes(data[at - 4 : at], "big")
    body = data[at : at + 4 + length].replace(b"true", b"fals")
    edited = data[:at] + body + zlib.crc32(body).to_bytes(4, "big") + data[at + 8 + length :]
    frames[-1].write_bytes(edited)
    found = emo.detect(folder)
    assert found.verdict == "tampered"  # the label is read from the first frame, still intact
    assert found.manifest is not None and found.manifest.changed_after_signing
    # Replace a frame with an unsigned copy: signed and unsigned frames mixed is tampering.
    frames[-1].unlink()
    PNGFramesWriter().write(marked[:1], tmp_path / "one", fps=25)
    (tmp_path / "one" / "000000.png").replace(frames[-1])
    found = emo.detect(folder)
    assert found.verdict == "tampered"
    assert found.manifest is not None and "carry no manifest" in (found.manifest.error or "")


def test_webm_is_written_unsigned_with_a_warning(
    tmp_path: Path, signer: ContentSigner, marked: np.ndarray
) -> None:
    with pytest.warns(EMOWarning, match="C2PA defines no Content Credentials for .webm"):
        path = _write(WebMWriter(), marked, tmp_path / "out.webm", signer)
    report = emo.detect(path).manifest
    assert report is not None and not report.present


def test_a_refused_signature_leaves_no_output(tmp_path: Path, pki: PKI, marked: np.ndarray) -> None:
    good = SigningCredentials.from_files(pki.chain, pki.key)
    # A key the checks never saw (built around them) makes the SDK itself refuse.
    other = make_pki(tmp_path, name="other")
    broken = SigningCredentials(**{**good.__dict__, "private_key": other.key_pem})
    (tmp_path / "out.mp4").write_bytes(b"previous video")
    with pytest.raises(CredentialsError, match="refused to sign"):
        _write(MP4Writer(), marked, tmp_path / "out.mp4", ContentSigner(broken, FACTS))
    assert (tmp_path / "out.mp4").read_bytes() == b"previous video"  # untouched
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_unsigned_files_report_no_manifest(tmp_path: Path, marked: np.ndarray) -> None:
    path = tmp_path / "plain.mp4"
    MP4Writer().write(marked, path, fps=25)
    result = emo.detect(path)
    assert result.manifest is not None and not result.manifest.present
    assert result.verdict == "synthetic"  # the watermark alone
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["detect", os.fspath(path)]) == 0
