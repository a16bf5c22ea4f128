"""Signing credentials: files, environment, development key, and every refusal's message."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("c2pa")

from c2pa_certs import make_pki

from emo.errors import CredentialsError, InputError
from emo.provenance.credentials import SigningCredentials
from emo.provenance.signing import resolve_credentials
from emo.provenance.watermark_key import load_watermark_key


def test_files_are_checked_and_described(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    creds = SigningCredentials.from_files(pki.chain, pki.key)
    assert creds.algorithm == "es256"
    assert creds.signer == "test signer, emo tests signer org"
    assert creds.issuer == "test CA, emo tests CA org"
    assert not creds.is_development
    assert b"PRIVATE KEY" not in repr(creds).encode()  # the key never shows in a repr
    assert "test-chain.pem" in creds.source
    rsa = make_pki(tmp_path, name="rsa", rsa_key=True)
    assert SigningCredentials.from_files(rsa.chain, rsa.key).algorithm == "ps256"


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"leaf_is_ca": True}, "is a CA certificate"),
        ({"self_signed": True}, "self-signed"),
        ({"eku": False}, "no extended key usage"),
        ({"digital_signature": False}, "digitalSignature"),
        ({"expired": True}, "not valid now"),
    ],
)
def test_certificates_the_sdk_refuses_are_refused_first(
    tmp_path: Path, knobs: dict[str, bool], message: str
) -> None:
    pki = make_pki(tmp_path, **knobs)  # type: ignore[arg-type]
    with pytest.raises(CredentialsError, match=message) as info:
        SigningCredentials.from_files(pki.chain, pki.key)
    assert "test-chain.pem" in str(info.value)  # the message names the input


def test_bad_files_and_keys(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    other = make_pki(tmp_path, name="other")
    with pytest.raises(CredentialsError, match="does not exist"):
        SigningCredentials.from_files(tmp_path / "missing.pem", pki.key)
    with pytest.raises(CredentialsError, match="does not belong"):
        SigningCredentials.from_files(pki.chain, other.key)
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(CredentialsError, match="holds no PEM certificate"):
        SigningCredentials.from_files(tmp_path / "junk.pem", pki.key)
    with pytest.raises(CredentialsError, match="cannot read the private key"):
        SigningCredentials.from_files(pki.chain, tmp_path / "junk.pem")
    locked = make_pki(tmp_path, name="locked", password=b"s3cret-pass")
    with pytest.raises(CredentialsError, match="EMO_C2PA_KEY_PASSWORD"):
        SigningCredentials.from_files(locked.chain, locked.key)
    opened = SigningCredentials.from_files(locked.chain, locked.key, password="s3cret-pass")
    assert b"ENCRYPTED" not in opened.private_key


def test_environment_paths_or_pem_text(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    assert SigningCredentials.from_env({}) is None
    by_path = SigningCredentials.from_env(
        {"EMO_C2PA_CERT": str(pki.chain), "EMO_C2PA_KEY": str(pki.key)}
    )
    by_text = SigningCredentials.from_env(
        {"EMO_C2PA_CERT": pki.chain_pem.decode(), "EMO_C2PA_KEY": pki.key_pem.decode()}
    )
    assert by_path is not None and by_text is not None
    assert by_path.private_key == by_text.private_key
    with pytest.raises(CredentialsError, match="EMO_C2PA_KEY is not"):
        SigningCredentials.from_env({"EMO_C2PA_CERT": str(pki.chain)})


def test_resolve_defaults_to_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EMO_C2PA_CERT", raising=False)
    monkeypatch.delenv("EMO_C2PA_KEY", raising=False)
    assert resolve_credentials(None) is None
    assert resolve_credentials(False) is None
    with pytest.raises(CredentialsError, match="EMO_C2PA_CERT and EMO_C2PA_KEY are not set"):
        resolve_credentials(True)
    with pytest.raises(CredentialsError, match="content_credentials must be"):
        resolve_credentials("yes")
    pki = make_pki(tmp_path)
    monkeypatch.setenv("EMO_C2PA_CERT", str(pki.chain))
    monkeypatch.setenv("EMO_C2PA_KEY", str(pki.key))
    found = resolve_credentials(None)
    assert found is not None and found.signer.startswith("test signer")
    assert resolve_credentials(False) is None


def test_development_key_is_named_untrusted_and_reused() -> None:
    dev = SigningCredentials.development()
    assert dev.is_development
    assert "untrusted" in dev.signer and "emo development signer" in dev.signer
    assert SigningCredentials.development() is dev
    assert resolve_credentials("development") is dev


def test_missing_sdk_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "c2pa", None)  # what an uninstalled package looks like
    with pytest.raises(CredentialsError, match=r"pip install \"emo\[c2pa\]\""):
        resolve_credentials("development")


def test_watermark_key_from_file_or_environment(tmp_path: Path) -> None:
    assert load_watermark_key(environ={}) is None
    assert load_watermark_key(environ={"EMO_WATERMARK_KEY": "k" * 20}) == "k" * 20
    (tmp_path / "wm.key").write_text("  a-long-random-secret-key \n")
    assert (
        load_watermark_key(tmp_path / "wm.key", environ={"EMO_WATERMARK_KEY": "x" * 20})
        == "a-long-random-secret-key"
    )
    with pytest.raises(InputError, match="at least 16"):
        load_watermark_key(environ={"EMO_WATERMARK_KEY": "short"})
    with pytest.raises(InputError, match="cannot read the watermark key file"):
        load_watermark_key(tmp_path / "missing.key")
