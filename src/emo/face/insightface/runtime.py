"""Opening an ONNX model with onnxruntime (the ``hallo`` extra), with emo's errors.

onnxruntime is imported here, when a model is opened, never by ``import emo``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from emo.onnx_session import open_onnx_session

__all__ = ["INSTALL_HINT", "PURPOSE", "open_session"]

INSTALL_HINT = 'install the hallo extra: pip install "emo[hallo]" (onnxruntime)'


#: What the messages say needs onnxruntime.
PURPOSE = "running insightface's face models (ONNX)"


def open_session(
    path: str | os.PathLike[str],
    *,
    providers: Sequence[str] | None = None,
    threads: int | None = None,
) -> Any:
    """An ``onnxruntime.InferenceSession`` of the model file at ``path``.

    See :func:`emo.onnx_session.open_onnx_session` (``providers``, ``threads``, errors).
    """
    return open_onnx_session(
        path,
        what="ONNX model",
        purpose=PURPOSE,
        install_hint=INSTALL_HINT,
        providers=providers,
        threads=threads,
    )
