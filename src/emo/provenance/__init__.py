"""Provenance: every generated video carries an invisible watermark, a label and, with a key, a C2PA manifest.

- :mod:`emo.provenance.watermark`: the keyed watermark in the pixels (survives
  re-encoding, resizing, cropping and GIF conversion; see the guide for its limits);
- :mod:`emo.provenance.label`: container tags, PNG text chunks, GIF comments;
- :mod:`emo.provenance.signing`, :mod:`emo.provenance.credentials`: C2PA Content
  Credentials signed into MP4, GIF and PNG frames (``emo[c2pa]``);
- :mod:`emo.provenance.detect`: :func:`detect` reads all three from a file
  (``emo detect VIDEO`` on the command line).

Heavy modules (torch, PyAV, c2pa-python, cryptography) load only when a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emo._lazy import lazy_getattr

if TYPE_CHECKING:
    from emo.provenance.credentials import SigningCredentials
    from emo.provenance.detect import Detection, detect
    from emo.provenance.manifest_check import ManifestReport, read_manifest
    from emo.provenance.payload import Payload
    from emo.provenance.watermark import Watermarker, WatermarkResult

__all__ = [
    "Detection",
    "ManifestReport",
    "Payload",
    "SigningCredentials",
    "WatermarkResult",
    "Watermarker",
    "detect",
    "read_manifest",
]

_LAZY = {
    "Detection": "emo.provenance.detect",
    "detect": "emo.provenance.detect",
    "ManifestReport": "emo.provenance.manifest_check",
    "read_manifest": "emo.provenance.manifest_check",
    "SigningCredentials": "emo.provenance.credentials",
    "Payload": "emo.provenance.payload",
    "Watermarker": "emo.provenance.watermark",
    "WatermarkResult": "emo.provenance.watermark",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
