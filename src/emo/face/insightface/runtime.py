"""Opening an ONNX model with onnxruntime (the ``hallo`` extra), with emo's errors.

onnxruntime is imported here, when a model is opened, never by ``import emo``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emo.errors import CheckpointError, PluginLoadError

__all__ = ["INSTALL_HINT", "import_onnxruntime", "open_session"]

INSTALL_HINT = 'install the hallo extra: pip install "emo[hallo]" (onnxruntime)'


def import_onnxruntime() -> Any:
    """Import and return ``onnxruntime``.

    Raises
    ------
    PluginLoadError
        If it is not installed; the message names the extra to install.
    """
    try:
        import onnxruntime
    except ImportError as exc:
        raise PluginLoadError(
            f"insightface's face models (ONNX) run with onnxruntime, which is not installed; "
            f"{INSTALL_HINT}"
        ) from exc
    return onnxruntime


def open_session(
    path: str | os.PathLike[str],
    *,
    providers: Sequence[str] | None = None,
    threads: int | None = None,
) -> Any:
    """An ``onnxruntime.InferenceSession`` of the model file at ``path``.

    Parameters
    ----------
    path
        The ``.onnx`` file.
    providers
        onnxruntime execution providers in order of preference (default: the CPU).
    threads
        Threads of one operator (onnxruntime's ``intra_op_num_threads``; default: its own).

    Raises
    ------
    PluginLoadError
        Without onnxruntime.
    CheckpointError
        If the file is missing or onnxruntime cannot load it (names the file).
    """
    ort = import_onnxruntime()
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"ONNX model {file} does not exist")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = int(threads)
    try:
        return ort.InferenceSession(
            os.fspath(file),
            sess_options=options,
            providers=list(providers) if providers is not None else ["CPUExecutionProvider"],
        )
    except Exception as exc:  # onnxruntime raises its own exception types (Fail, InvalidGraph...)
        raise CheckpointError(
            f"onnxruntime cannot load {file}: {exc}; the file is damaged or not an ONNX model "
            "(download it again)"
        ) from exc
