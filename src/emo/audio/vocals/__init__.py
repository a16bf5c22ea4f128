"""Vocal separation before audio encoding: an MDX-Net model (Hallo's Kim_Vocal_2) on onnxruntime.

Songs come with music; Hallo separates the vocals before it encodes the audio. This package
runs the same MDX-Net ONNX file with onnxruntime (``pip install "emo[vocals]"``) and does the
STFT, chunking and averaging around it itself.

Not a plugin kind: a separator is built from a model file, not chosen by name, and there is
one implementation. A pipeline takes any object with ``sample_rate`` and
``separate(waveform, sample_rate)`` (:class:`SupportsVocalSeparation`).

========================================  ================================================
name                                      what
========================================  ================================================
:class:`VocalSeparator`                   ``separate`` / ``separate_file`` -> mono vocals
:func:`find_separator`                    the separator of a model folder, or ``None``
:class:`SupportsVocalSeparation`          what a pipeline needs of a separator
:class:`MDXConfig`, :data:`KIM_VOCAL_2`   a model's STFT, input size and gain
========================================  ================================================

onnxruntime is imported only when a model is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emo._lazy import lazy_getattr

if TYPE_CHECKING:
    from emo.audio.vocals.config import KIM_VOCAL_2, MDXConfig
    from emo.audio.vocals.separator import (
        SupportsVocalSeparation,
        VocalSeparator,
        find_separator,
        hallo_separator_file,
    )

__all__ = [
    "KIM_VOCAL_2",
    "MDXConfig",
    "SupportsVocalSeparation",
    "VocalSeparator",
    "find_separator",
    "hallo_separator_file",
]

_LAZY = {
    "KIM_VOCAL_2": "emo.audio.vocals.config",
    "MDXConfig": "emo.audio.vocals.config",
    "SupportsVocalSeparation": "emo.audio.vocals.separator",
    "VocalSeparator": "emo.audio.vocals.separator",
    "find_separator": "emo.audio.vocals.separator",
    "hallo_separator_file": "emo.audio.vocals.separator",
}

__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
