"""Provenance: every generated video carries an invisible watermark and a label.

- :mod:`emo.provenance.watermark`: the keyed watermark in the pixels (survives
  re-encoding, resizing, cropping and GIF conversion; see the guide for its limits);
- :mod:`emo.provenance.label`: container tags, PNG text chunks, GIF comments;
- :mod:`emo.provenance.detect`: :func:`detect` reads both from a file
  (``emo detect VIDEO`` on the command line).

Heavy modules (torch, PyAV) load only when a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emo._lazy import lazy_getattr

if TYPE_CHECKING:
    from emo.provenance.detect import Detection, detect
    from emo.provenance.payload import Payload
    from emo.provenance.watermark import Watermarker, WatermarkResult

__all__ = ["Detection", "Payload", "WatermarkResult", "Watermarker", "detect"]

_LAZY = {
    "Detection": "emo.provenance.detect",
    "detect": "emo.provenance.detect",
    "Payload": "emo.provenance.payload",
    "Watermarker": "emo.provenance.watermark",
    "WatermarkResult": "emo.provenance.watermark",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
