"""Read and validate a file's C2PA manifest: present, valid, trusted, signer, and changed or not.

Validation is the C2PA SDK's (``c2pa-python``'s ``Reader``): it checks the claim's
signature, the certificate chain (against trust anchors, when given) and the hashes
that bind the manifest to the file's bytes. A byte changed in the video stream
breaks that hash binding: the report then says ``changed_after_signing``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emo.errors import CredentialsError, VideoError
from emo.provenance.manifest import AI_SOURCE_TYPES, EMO_ASSERTION

__all__ = ["ENV_TRUST_ANCHORS", "ManifestReport", "read_manifest"]

#: Environment variable: PEM file of CA certificates whose signatures count as trusted.
ENV_TRUST_ANCHORS = "EMO_C2PA_TRUST_ANCHORS"
_UNTRUSTED = "signingCredential.untrusted"
# Failure codes that mean the claim, its signature or its certificate do not hold.
_SIGNATURE_CODES = (
    "claimSignature.",
    "signingCredential.",
    "timeStamp.",
    "claim.",
    "assertion.hashedURI",
)


@dataclass(frozen=True)
class ManifestReport:
    """What :func:`read_manifest` found.

    Attributes
    ----------
    available
        False when ``c2pa-python`` is not installed (then nothing else was checked).
    present
        A C2PA manifest is embedded in the file.
    valid
        The SDK's verdict: signature, certificate and content hashes all check out
        (the signer may still be untrusted; see ``trusted``).
    signature_valid
        The claim's signature and certificate check out (the content may still have
        changed; see ``changed_after_signing``).
    trusted
        The signing certificate chains to one of the trust anchors given.
    changed_after_signing
        The file's bytes no longer match the hashes the manifest signed.
    state
        ``"Trusted"``, ``"Valid"``, ``"Invalid"`` (the SDK's), ``"absent"`` or ``"unavailable"``.
    signer
        The signing certificate's common name, and ``issuer`` the organisation the SDK
        reports for it.
    source_type
        The ``digitalSourceType`` of the creating action (a URL), or ``None``.
    claim_generator
        The software that made the claim, e.g. ``"emo 0.1.0"``.
    failures
        The SDK's failure codes (e.g. ``assertion.bmffHash.mismatch``).
    emo
        The ``org.emo.generation`` assertion (model, input hashes, watermark), if any.
    error
        Why the manifest could not be read, when it could not.
    """

    available: bool = True
    present: bool = False
    valid: bool = False
    signature_valid: bool = False
    trusted: bool = False
    changed_after_signing: bool = False
    state: str = "absent"
    signer: str | None = None
    issuer: str | None = None
    source_type: str | None = None
    claim_generator: str | None = None
    failures: tuple[str, ...] = ()
    emo: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ai_generated(self) -> bool:
        """True when a valid manifest says a trained model made the content."""
        return self.valid and self.source_type in AI_SOURCE_TYPES

    @property
    def tampered(self) -> bool:
        """True when a manifest is present but fails validation (changed, or a broken signature)."""
        return self.present and not self.valid

    def summary(self) -> str:
        """One or two lines for people."""
        if not self.available:
            return 'c2pa: not checked (pip install "emo[c2pa]" to read Content Credentials)'
        if not self.present:
            return "c2pa: no manifest" + (f" ({self.error})" if self.error else "")
        if self.error is not None and self.signer is None:
            return f"c2pa: manifest present but unreadable: INVALID ({self.error})"
        if self.valid:
            verdict = "valid, trusted signer" if self.trusted else "valid, UNTRUSTED signer"
        elif self.changed_after_signing:
            verdict = "INVALID: the file was CHANGED AFTER SIGNING"
        elif self.signature_valid:
            verdict = "INVALID"
        else:
            verdict = "INVALID: the manifest or its signature is broken"
        source = (self.source_type or "none").rsplit("/", 1)[-1]
        lines = [
            f"c2pa: manifest {verdict}",
            f"  signer {self.signer or '?'} ({self.issuer or '?'}), source type {source}, "
            f"claim generator {self.claim_generator or '?'}",
        ]
        if self.failures:
            lines.append("  failures: " + ", ".join(self.failures))
        if self.error is not None:
            lines.append(f"  {self.error}")
        return "\n".join(lines)


def _trust_context(c2pa: Any, trust_anchors: str | os.PathLike[str] | bytes | None) -> Any:
    if trust_anchors is None:
        env = os.environ.get(ENV_TRUST_ANCHORS, "").strip()
        if not env:
            return None
        trust_anchors = env
    if isinstance(trust_anchors, bytes):
        pem = trust_anchors.decode("ascii", "replace")
    else:
        path = Path(trust_anchors).expanduser()
        if not path.is_file():
            raise CredentialsError(
                f"trust anchors file {os.fspath(trust_anchors)!r} does not exist; give a PEM "
                f"file of CA certificates (or unset {ENV_TRUST_ANCHORS})"
            )
        pem = path.read_text(encoding="ascii", errors="replace")
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise CredentialsError(
            f"the trust anchors {os.fspath(trust_anchors)!r} hold no PEM certificate"
            if not isinstance(trust_anchors, bytes)
            else "the trust anchors hold no PEM certificate"
        )
    try:
        return c2pa.Context.from_dict({"trust": {"trust_anchors": pem}})
    except c2pa.C2paError as exc:
        raise CredentialsError(
            f"the C2PA SDK cannot use the trust anchors ({exc}); give PEM CA certificates"
        ) from exc


def _actions_source_type(manifest: Mapping[str, Any]) -> str | None:
    for assertion in manifest.get("assertions", []):
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in assertion.get("data", {}).get("actions", []):
            if action.get("action") == "c2pa.created" and action.get("digitalSourceType"):
                return str(action["digitalSourceType"])
    return None


def _claim_generator(manifest: Mapping[str, Any]) -> str | None:
    infos = manifest.get("claim_generator_info") or []
    if infos:
        first = infos[0]
        return " ".join(str(first[k]) for k in ("name", "version") if first.get(k))
    generator = manifest.get("claim_generator")
    return str(generator) if generator else None


def _emo_record(manifest: Mapping[str, Any]) -> dict[str, Any]:
    for assertion in manifest.get("assertions", []):
        if assertion.get("label") == EMO_ASSERTION:
            data = assertion.get("data", {})
            return dict(data) if isinstance(data, Mapping) else {}
    return {}


def _is_content_mismatch(code: str) -> bool:
    # dataHash (PNG, GIF, JPEG), bmffHash (MP4), boxesHash, collectionHash: the asset's bytes.
    return (
        code.startswith("assertion.") and code.endswith("Hash.mismatch") and "hashedURI" not in code
    )


def read_manifest(
    path: str | os.PathLike[str],
    *,
    trust_anchors: str | os.PathLike[str] | bytes | None = None,
) -> ManifestReport:
    """Read and validate the C2PA manifest embedded in a file.

    Parameters
    ----------
    path
        An MP4, PNG, GIF, JPEG... (a format the C2PA SDK reads).
    trust_anchors
        A PEM file (or PEM bytes) of CA certificates to trust; by default the file named
        by ``EMO_C2PA_TRUST_ANCHORS``, else none (every signer is then untrusted).

    Returns
    -------
    ManifestReport
        ``available=False`` when ``c2pa-python`` is not installed.

    Raises
    ------
    CredentialsError
        If the trust anchors are given but unreadable.
    VideoError
        If the file cannot be read.
    """
    try:
        c2pa = __import__("c2pa")
    except ImportError:
        return ManifestReport(available=False, state="unavailable")
    context = _trust_context(c2pa, trust_anchors)
    try:
        reader = (
            c2pa.Reader(os.fspath(path), context=context)
            if context
            else c2pa.Reader(os.fspath(path))
        )
    except c2pa.C2paError as exc:
        if isinstance(exc, c2pa.C2paError.ManifestNotFound):
            return ManifestReport()
        if isinstance(exc, c2pa.C2paError.NotSupported):
            return ManifestReport(error="the C2PA SDK reads no manifest from this format")
        if isinstance(exc, (c2pa.C2paError.Io, c2pa.C2paError.FileNotFound)):
            raise VideoError(f"cannot read {os.fspath(path)!r}: {exc}") from exc
        return ManifestReport(present=True, state="Invalid", error=str(exc))
    with reader:
        state = str(reader.get_validation_state() or "Invalid")
        manifest = reader.get_active_manifest() or {}
        results = reader.get_validation_results() or {}
    failures = tuple(
        str(item.get("code", "")) for item in results.get("activeManifest", {}).get("failure", [])
    )
    changed = any(_is_content_mismatch(code) for code in failures)
    broken = any(code.startswith(_SIGNATURE_CODES) and code != _UNTRUSTED for code in failures)
    signature = manifest.get("signature_info", {}) or {}
    return ManifestReport(
        present=True,
        valid=state in ("Valid", "Trusted"),
        signature_valid=not broken,
        trusted=state == "Trusted",
        changed_after_signing=changed,
        state=state,
        signer=signature.get("common_name"),
        issuer=signature.get("issuer"),
        source_type=_actions_source_type(manifest),
        claim_generator=_claim_generator(manifest),
        failures=failures,
        emo=_emo_record(manifest),
    )
