"""Sign a finished file with a C2PA manifest (through the ``c2pa-python`` SDK).

Signing copies the file into a new one with the manifest embedded: the SDK reads
the source and writes the destination through file streams, staging large files in
anonymous temporary files (in ``$TMPDIR``) rather than memory, and hashes an MP4's
media data as a Merkle tree of 1 MiB chunks, so that signing and validating a long
video hold a few MiB, not the video (``benchmarks/c2pa_signing.py`` measures it).
emo writes no C2PA structure itself.

Writers call a :class:`ContentSigner` on the finished temporary file, before it is
renamed into place (see :meth:`emo.io.writers.base.FileSession.set_content_signer`),
so the published file is signed or absent, never half-signed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emo.errors import CredentialsError, VideoError
from emo.provenance.credentials import SigningCredentials
from emo.provenance.manifest import GenerationFacts, generation_manifest

__all__ = [
    "SIGNABLE_TYPES",
    "ContentSigner",
    "import_c2pa",
    "media_type_for",
    "resolve_credentials",
    "sign_file",
]

#: File suffixes emo signs, and their media types (formats the C2PA SDK embeds into).
SIGNABLE_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".png": "image/png",
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}

# SDK settings for signing (c2pa-rs 0.91, measured with benchmarks/c2pa_signing.py):
# - no thumbnail: the SDK would embed one of its own making (for a small GIF, 70x the file's
#   size; every PNG frame would carry a JPEG copy of itself); the file is its own picture;
# - MP4 hashed as a Merkle tree of 1 MiB chunks of the media data: a reader then validates
#   chunk by chunk (with one hash over the whole box it reads the box into memory at once);
# - staging above 16 MiB in temporary files instead of memory: by default the SDK holds the
#   whole file, twice, while signing (217 MiB for a 111 MiB video).
_SETTINGS = {
    "builder": {"thumbnail": {"enabled": False}},
    "core": {"merkle_tree_chunk_size_in_kb": 1024, "backing_store_memory_threshold_in_mb": 16},
}


def import_c2pa() -> Any:
    """Import and return the ``c2pa`` module, or raise a :class:`CredentialsError` saying how to install it."""
    try:
        import c2pa
    except ImportError as exc:
        raise CredentialsError(
            "C2PA signing and reading need the c2pa-python package, which is not installed; "
            'install the c2pa extra: pip install "emo[c2pa]"'
        ) from exc
    return c2pa


def media_type_for(path: str | os.PathLike[str]) -> str | None:
    """The media type emo signs ``path`` as, from its suffix, or ``None`` (WebM, WAV, a folder...)."""
    return SIGNABLE_TYPES.get(Path(path).suffix.lower())


def sign_file(
    source: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    manifest: Mapping[str, Any],
    credentials: SigningCredentials,
    *,
    media_type: str | None = None,
) -> None:
    """Write ``source`` to ``dest`` with a signed C2PA manifest embedded.

    Parameters
    ----------
    source
        The finished file (it is only read).
    dest
        The signed copy (created or truncated); a file of its own, not ``source``.
    manifest
        The manifest definition (see :func:`emo.provenance.manifest.generation_manifest`).
    credentials
        The certificate chain and key.
    media_type
        The format; by default from ``source``'s suffix.

    Raises
    ------
    CredentialsError
        If ``c2pa-python`` is missing, or the SDK refuses the credentials.
    VideoError
        If the format cannot be signed or the file cannot be read or written.
    """
    kind = media_type or media_type_for(source)
    if kind is None:
        raise VideoError(
            f"cannot sign {os.fspath(source)!r}: C2PA defines no manifest for its format; "
            f"sign one of {', '.join(sorted(SIGNABLE_TYPES))}"
        )
    c2pa = import_c2pa()
    info = c2pa.C2paSignerInfo(
        credentials.algorithm.encode(),
        credentials.certificate_chain,
        credentials.private_key,
        credentials.timestamp_url.encode() if credentials.timestamp_url else None,
    )
    try:
        signer = c2pa.Signer.from_info(info)
        with (
            signer,
            c2pa.Builder(json.dumps(manifest), c2pa.Context.from_dict(_SETTINGS)) as builder,
            open(source, "rb") as reader,
            open(dest, "w+b") as writer,
        ):
            builder.sign(signer, kind, reader, writer)
    except OSError as exc:
        raise VideoError(f"cannot sign {os.fspath(source)!r}: {exc}") from exc
    except c2pa.C2paError as exc:
        text = str(exc)
        if "Signature" in text or "certificate" in text.lower():
            raise CredentialsError(
                f"the C2PA SDK refused to sign with the credentials from {credentials.source} "
                f"({text}); the signing certificate must be issued by a CA, not be a CA, and "
                "carry digitalSignature key usage, an extended key usage (emailProtection) and "
                "an authority key identifier"
            ) from exc
        raise VideoError(f"signing {os.fspath(source)!r} with C2PA failed: {text}") from exc


class ContentSigner:
    """Signs the files of one generation with its manifest; what writer sessions are given.

    Parameters
    ----------
    credentials
        The certificate chain and key.
    facts
        The generation's model, inputs and watermark (the manifest's content).
    """

    def __init__(self, credentials: SigningCredentials, facts: GenerationFacts) -> None:
        self.credentials = credentials
        self.facts = facts

    def __repr__(self) -> str:
        return f"ContentSigner({self.credentials!r})"

    def media_type(self, path: str | os.PathLike[str]) -> str | None:
        """The media type ``path`` is signed as, or ``None`` when its format cannot be signed."""
        return media_type_for(path)

    def manifest(self, title: str) -> dict[str, Any]:
        """The manifest definition of one file named ``title``."""
        return generation_manifest(self.facts, title=title)

    def sign(self, source: Path, dest: Path, *, title: str, media_type: str | None = None) -> None:
        """Write ``source`` to ``dest`` signed; ``title`` is the published file's name.

        Raises
        ------
        CredentialsError, VideoError
            See :func:`sign_file`.
        """
        kind = media_type or self.media_type(title)
        sign_file(source, dest, self.manifest(title), self.credentials, media_type=kind)


def resolve_credentials(value: Any) -> SigningCredentials | None:
    """The credentials a ``content_credentials=`` argument asks for, checked now (before any work).

    Parameters
    ----------
    value
        ``None`` (default): those of ``EMO_C2PA_CERT`` / ``EMO_C2PA_KEY`` if set, else none
        (files are not signed). ``False``: never sign. ``True``: those of the environment,
        which must be set. ``"development"``: the throwaway development key
        (:meth:`SigningCredentials.development`, untrusted). Or :class:`SigningCredentials`.

    Returns
    -------
    SigningCredentials or None
        ``None`` when nothing is to be signed.

    Raises
    ------
    CredentialsError
        If credentials are asked for but missing or unusable, or ``c2pa-python`` is not
        installed.
    """
    if value is None or value is False:
        credentials = SigningCredentials.from_env() if value is None else None
    elif value is True:
        credentials = SigningCredentials.from_env()
        if credentials is None:
            raise CredentialsError(
                "content_credentials=True asks for C2PA signing with the environment's key, but "
                "EMO_C2PA_CERT and EMO_C2PA_KEY are not set; set them, or pass "
                "SigningCredentials.from_files(...) or 'development'"
            )
    elif isinstance(value, str) and value == "development":
        credentials = SigningCredentials.development()
    elif isinstance(value, SigningCredentials):
        credentials = value
    else:
        raise CredentialsError(
            "content_credentials must be None (the environment's key, if set), False, True, "
            f"'development' or an emo.provenance.SigningCredentials, got {value!r}"
        )
    if credentials is not None:
        import_c2pa()
    return credentials
