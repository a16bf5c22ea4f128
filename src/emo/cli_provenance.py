"""``emo generate``'s provenance options: C2PA signing keys and the watermark's secret key."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

__all__ = ["add_provenance_arguments", "content_credentials_from", "watermark_from"]

_NO_KEY_NOTE = (
    "emo: the output is not signed with C2PA Content Credentials (no signing key: set "
    "EMO_C2PA_CERT and EMO_C2PA_KEY, pass --c2pa-cert/--c2pa-key, or --c2pa-dev-key for an "
    "untrusted development key; --no-c2pa silences this); the watermark and label are "
    "written as always"
)


def add_provenance_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the signing and watermark-key options to the ``generate`` parser."""
    group = parser.add_argument_group(
        "provenance", "C2PA Content Credentials (needs emo[c2pa]) and the watermark key"
    )
    group.add_argument(
        "--c2pa-cert",
        default=None,
        metavar="PEM",
        help="certificate chain to sign the output with, leaf first (default: $EMO_C2PA_CERT)",
    )
    group.add_argument(
        "--c2pa-key",
        default=None,
        metavar="PEM",
        help="private key of that certificate (default: $EMO_C2PA_KEY; "
        "$EMO_C2PA_KEY_PASSWORD if encrypted)",
    )
    group.add_argument(
        "--c2pa-dev-key",
        action="store_true",
        help="sign with a throwaway development key made now: viewers show it UNTRUSTED",
    )
    group.add_argument(
        "--no-c2pa", action="store_true", help="do not sign, even if EMO_C2PA_* are set"
    )
    group.add_argument(
        "--watermark-key-file",
        default=None,
        metavar="FILE",
        help="mark with your secret key (default: $EMO_WATERMARK_KEY, else emo's public key)",
    )


def content_credentials_from(args: argparse.Namespace) -> Any:
    """The ``content_credentials`` argument the options ask for, checked now (before the model loads).

    Prints a note on stderr when nothing will be signed and signing was not declined.

    Raises
    ------
    CredentialsError
        If the keys are missing or unusable, or ``emo[c2pa]`` is not installed.
    InputError
        If the options contradict each other.
    """
    from emo.errors import InputError
    from emo.provenance.credentials import ENV_KEY_PASSWORD, ENV_TSA_URL, SigningCredentials
    from emo.provenance.signing import resolve_credentials

    cert, key = getattr(args, "c2pa_cert", None), getattr(args, "c2pa_key", None)
    dev, off = getattr(args, "c2pa_dev_key", False), getattr(args, "no_c2pa", False)
    if sum([bool(cert or key), bool(dev), bool(off)]) > 1:
        raise InputError("give only one of --c2pa-cert/--c2pa-key, --c2pa-dev-key and --no-c2pa")
    if off:
        return False
    quiet = getattr(args, "quiet", False)
    if cert or key:
        if not (cert and key):
            raise InputError("--c2pa-cert and --c2pa-key go together: give both")
        credentials = resolve_credentials(
            SigningCredentials.from_files(
                cert,
                key,
                password=os.environ.get(ENV_KEY_PASSWORD) or None,
                timestamp_url=os.environ.get(ENV_TSA_URL) or None,
            )
        )
    else:
        credentials = resolve_credentials("development" if dev else None)
    if credentials is None:
        if not quiet:
            print(_NO_KEY_NOTE, file=sys.stderr)
        return False
    if not quiet:
        trust = (
            " (a development key: C2PA viewers will show the signer as UNTRUSTED)"
            if credentials.is_development
            else ""
        )
        print(
            f"emo: signing the output with C2PA Content Credentials as {credentials.signer}{trust}",
            file=sys.stderr,
        )
    return credentials


def watermark_from(args: argparse.Namespace) -> Any:
    """The pipeline's ``watermark`` argument: off, emo's public key, or the user's secret key.

    Raises
    ------
    InputError
        If ``--watermark-key-file`` is unreadable or the key too short.
    """
    if getattr(args, "no_watermark", False):
        return False
    from emo.provenance.watermark_key import load_watermark_key

    key = load_watermark_key(getattr(args, "watermark_key_file", None))
    if key is None:
        return True
    from emo.provenance.watermark import Watermarker

    return Watermarker(key=key)
