"""Size limits on inputs: what is refused before any work starts, and how to change it.

A portrait of 20000 x 20000 pixels, ten hours of audio or a 16k video frame are
almost always mistakes, and each would take minutes and gigabytes before failing
somewhere deep inside. emo refuses them upfront, reading only file headers, with a
message that names the limit and how to raise it.

=====================  ===========================  ================================
limit                  default                      environment variable
=====================  ===========================  ================================
``max_image_pixels``   100,000,000 (10000 x 10000)  ``EMO_MAX_IMAGE_PIXELS``
``max_audio_seconds``  14,400 (4 hours)             ``EMO_MAX_AUDIO_SECONDS``
``max_frame_pixels``   16,777,216 (4096 x 4096)     ``EMO_MAX_FRAME_PIXELS``
=====================  ===========================  ================================

``max_image_pixels`` applies to portrait images (files, arrays, PIL images);
``max_audio_seconds`` to the audio of a generation (files and arrays);
``max_frame_pixels`` to the generated frame size and to every video writer.
Change a limit for one process with the environment variable (``0`` means no
limit) or in Python with :func:`set_limits` / :func:`limits_changed`. Limits set in
Python take precedence over the environment.

This module imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from emo.errors import AudioTooLongError, ConfigError, ImageTooLargeError, InputTooLargeError

__all__ = [
    "ENV_VARS",
    "Limits",
    "check_audio_seconds",
    "check_frame_size",
    "check_image_size",
    "current_limits",
    "limits_changed",
    "set_limits",
]


@dataclass(frozen=True)
class Limits:
    """The input size limits (``None`` means no limit).

    Attributes
    ----------
    max_image_pixels
        Largest portrait image, width x height, in pixels.
    max_audio_seconds
        Longest audio track of one generation, in seconds.
    max_frame_pixels
        Largest video frame, width x height, generated or written.
    """

    max_image_pixels: int | None = 100_000_000
    max_audio_seconds: float | None = 4 * 3600.0
    max_frame_pixels: int | None = 4096 * 4096


#: Environment variable of each limit.
ENV_VARS = {
    "max_image_pixels": "EMO_MAX_IMAGE_PIXELS",
    "max_audio_seconds": "EMO_MAX_AUDIO_SECONDS",
    "max_frame_pixels": "EMO_MAX_FRAME_PIXELS",
}

_overrides: dict[str, float | int | None] = {}


def _parse(name: str, value: Any, source: str) -> float | int | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not number >= 0 or number == float("inf"):
        raise ConfigError(f"{source} must be a non-negative number (0 for no limit), got {value!r}")
    if number == 0:
        return None
    return number if name == "max_audio_seconds" else int(number)


def current_limits() -> Limits:
    """The limits in force: defaults, overridden by the environment, then by :func:`set_limits`.

    Raises
    ------
    ConfigError
        If an ``EMO_MAX_*`` environment variable is not a non-negative number.
    """
    values: dict[str, Any] = {}
    for field in dataclasses.fields(Limits):
        if field.name in _overrides:
            values[field.name] = _overrides[field.name]
            continue
        raw = os.environ.get(ENV_VARS[field.name], "").strip()
        if raw:
            values[field.name] = _parse(
                field.name, raw, f"environment variable {ENV_VARS[field.name]}"
            )
    return Limits(**values)


def set_limits(**limits: float | int | None) -> Limits:
    """Set limits for this process (``None`` or ``0``: no limit); returns the previous ones.

    Parameters
    ----------
    **limits
        ``max_image_pixels``, ``max_audio_seconds``, ``max_frame_pixels``.

    Raises
    ------
    ConfigError
        On an unknown limit or a negative or non-numeric value.

    Examples
    --------
    >>> from emo.limits import set_limits
    >>> previous = set_limits(max_audio_seconds=8 * 3600)  # an 8-hour audio book
    >>> _ = set_limits(**dataclasses.asdict(previous))
    """
    names = {field.name for field in dataclasses.fields(Limits)}
    unknown = sorted(set(limits) - names)
    if unknown:
        raise ConfigError(f"unknown limit(s) {unknown}; the limits are {sorted(names)}")
    previous = current_limits()
    for name, value in limits.items():
        _overrides[name] = _parse(name, value, name)
    return previous


@contextlib.contextmanager
def limits_changed(**limits: float | int | None) -> Iterator[Limits]:
    """Change limits inside a ``with`` block; the previous settings come back after it."""
    saved = dict(_overrides)
    set_limits(**limits)
    try:
        yield current_limits()
    finally:
        _overrides.clear()
        _overrides.update(saved)


def _how_to_raise(name: str) -> str:
    return (
        f"raise it with {ENV_VARS[name]}=<value> (0: no limit) or emo.limits.set_limits({name}=...)"
    )


def check_image_size(width: int, height: int, label: str) -> None:
    """Refuse an image larger than ``max_image_pixels``.

    Raises
    ------
    ImageTooLargeError
        With the size, the limit and how to change it.
    """
    limit = current_limits().max_image_pixels
    if limit is not None and width * height > limit:
        raise ImageTooLargeError(
            f"image {label} is {width}x{height} = {width * height:,} pixels, more than the limit "
            f"of {limit:,}; a portrait needs far fewer (it is resized to the video size): "
            f"downscale it, or {_how_to_raise('max_image_pixels')}"
        )


def check_audio_seconds(seconds: float, label: str) -> None:
    """Refuse audio longer than ``max_audio_seconds``.

    Raises
    ------
    AudioTooLongError
        With the duration, the limit and how to change it.
    """
    limit = current_limits().max_audio_seconds
    if limit is not None and seconds > limit:
        raise AudioTooLongError(
            f"{label} lasts {_hours(seconds)}, longer than the limit of {_hours(limit)}; "
            f"split it, or {_how_to_raise('max_audio_seconds')}"
        )


def check_frame_size(width: int, height: int, label: str = "video frame size") -> None:
    """Refuse a video frame larger than ``max_frame_pixels``.

    Raises
    ------
    InputTooLargeError
        With the size, the limit and how to change it.
    """
    limit = current_limits().max_frame_pixels
    if limit is not None and width * height > limit:
        raise InputTooLargeError(
            f"{label} {width}x{height} = {width * height:,} pixels is more than the limit of "
            f"{limit:,}; choose a smaller size, or {_how_to_raise('max_frame_pixels')}"
        )


def _hours(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d} (h:mm:ss)"
