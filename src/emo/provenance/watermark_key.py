"""A user's secret watermark key: from a file or ``EMO_WATERMARK_KEY``, checked for length.

emo's default key (``"emo-provenance-v1"``) is public, so anyone can detect the
mark, and anyone who studies emo's code can also forge it into other videos or
aim a removal at it. A secret key makes the mark detectable only by its holders:
see the threat model in the provenance guide. Make one with
``python -c "import secrets; print(secrets.token_urlsafe(32))" > watermark.key``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from emo.errors import InputError

__all__ = ["ENV_WATERMARK_KEY", "MIN_KEY_LENGTH", "load_watermark_key"]

#: Environment variable holding a secret watermark key (the text itself).
ENV_WATERMARK_KEY = "EMO_WATERMARK_KEY"
#: Shortest secret key accepted: 16 characters of a random token carry ~96 bits.
MIN_KEY_LENGTH = 16
_MAKE = 'make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'


def load_watermark_key(
    path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> str | None:
    """The secret watermark key from ``path`` (its text, stripped) or ``EMO_WATERMARK_KEY``.

    Parameters
    ----------
    path
        A file holding the key; it wins over the environment.
    environ
        The environment to read (default :data:`os.environ`).

    Returns
    -------
    str or None
        The key, or ``None`` when neither is given (emo's public default key applies).

    Raises
    ------
    InputError
        If the file is missing or unreadable, or the key is shorter than
        :data:`MIN_KEY_LENGTH` characters.
    """
    if path is not None:
        file = Path(path).expanduser()
        try:
            key = file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(
                f"cannot read the watermark key file {os.fspath(path)!r} ({exc}); {_MAKE}"
            ) from exc
        where = f"the watermark key file {os.fspath(path)!r}"
    else:
        key = (os.environ if environ is None else environ).get(ENV_WATERMARK_KEY, "").strip()
        if not key:
            return None
        where = ENV_WATERMARK_KEY
    if len(key) < MIN_KEY_LENGTH:
        raise InputError(
            f"{where} holds a key of {len(key)} characters; a secret watermark key needs at "
            f"least {MIN_KEY_LENGTH} random ones to resist guessing; {_MAKE}"
        )
    return key
