"""Byte-reproducible H.264: run libx264 without its AVX-512 routines.

libx264's AVX-512 code reads bytes of its own frame buffers that it never
initialised (they come from ``malloc``, not ``calloc``). What those bytes hold
depends on what the process did with its heap before: two ``emo generate`` runs
with one seed hand libx264 bit-identical frames, yet the PyTorch work between the
writes leaves different garbage behind, so a few macroblocks are coded
differently and the MP4 files differ (measured on an AVX-512 CPU: 5 of 6
encodings of the same 60 frames differed; with the AVX-512 routines off, or with
``MALLOC_PERTURB_`` set, all 6 were identical). libx264's SSE/AVX2 and C code
paths do not depend on those bytes.

libx264's ``asm`` option replaces its CPU detection with a given list of
capabilities, so the fix asks libx264 once per process which capabilities it
detected (it logs them when an encoder opens) and passes that list back without
``AVX512``. On CPUs without AVX-512 nothing is changed.
"""

from __future__ import annotations

import threading
from fractions import Fraction
from typing import Any

__all__ = [
    "CAPABILITIES_PREFIX",
    "detected_x264_capabilities",
    "deterministic_x264_params",
    "x264_params_without_avx512",
]

#: The start of the line libx264 logs with the capabilities it detected.
CAPABILITIES_PREFIX = "using cpu capabilities:"
_UNSAFE = frozenset({"avx512"})
_lock = threading.Lock()
_cache: dict[str, tuple[str, ...] | None] = {}


def _probe(codec: str) -> tuple[str, ...] | None:
    """Open a tiny ``codec`` encoder with FFmpeg's log captured; return the logged capabilities."""
    import av
    import av.logging

    previous = av.logging.get_level()
    try:
        av.logging.set_level(av.logging.INFO)
        with av.logging.Capture() as logs:
            context: Any = av.CodecContext.create(codec, "w")
            context.width = context.height = 16
            context.pix_fmt = "rgb24" if codec == "libx264rgb" else "yuv420p"
            context.time_base = Fraction(1, 25)
            context.open()
    except Exception:  # an encoder that cannot open here is reported by the writer itself
        return None
    finally:
        av.logging.set_level(previous)
    for _level, _name, message in logs:
        text = str(message).strip()
        if text.startswith(CAPABILITIES_PREFIX):
            return tuple(text[len(CAPABILITIES_PREFIX) :].split())
    return None


def detected_x264_capabilities(codec: str = "libx264") -> tuple[str, ...] | None:
    """The CPU capabilities libx264 detects here (``("SSE2Fast", "AVX2", "AVX512", ...)``).

    Probed once per process and codec; ``None`` if libx264 did not say (another
    build, or the log line changed).
    """
    with _lock:
        if codec not in _cache:
            _cache[codec] = _probe(codec)
        return _cache[codec]


def x264_params_without_avx512(capabilities: tuple[str, ...] | None) -> dict[str, str]:
    """libx264 options that keep ``capabilities`` but AVX-512; ``{}`` if there is none to drop.

    Examples
    --------
    >>> x264_params_without_avx512(("SSE2Fast", "AVX2", "AVX512"))
    {'x264-params': 'asm=SSE2Fast,AVX2'}
    >>> x264_params_without_avx512(("SSE2Fast", "AVX2"))
    {}
    """
    if not capabilities or not any(name.lower() in _UNSAFE for name in capabilities):
        return {}
    kept = [name for name in capabilities if name.lower() not in _UNSAFE]
    return {"x264-params": "asm=" + ",".join(kept) if kept else "asm=0"}


def deterministic_x264_params(codec: str = "libx264") -> dict[str, str]:
    """Encoder options that keep libx264 off its AVX-512 routines here, or ``{}`` if none are needed.

    Returns
    -------
    dict
        ``{"x264-params": "asm=SSE2Fast,...,AVX2"}`` on a CPU where libx264 would use
        AVX-512; ``{}`` elsewhere (and when the capabilities could not be read).
    """
    return x264_params_without_avx512(detected_x264_capabilities(codec))
