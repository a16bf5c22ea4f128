"""Opening an ONNX model with onnxruntime (an optional extra), with emo's errors.

Shared by the models emo runs with onnxruntime (insightface's face models, the MDX-Net
vocal separator). onnxruntime is imported when a model is opened, never by ``import emo``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emo.errors import CheckpointError, PluginLoadError

__all__ = ["open_onnx_session"]


def _import_onnxruntime(purpose: str, install_hint: str) -> Any:
    """Import and return ``onnxruntime``.

    Parameters
    ----------
    purpose
        What needs it, for the message (``"running insightface's face models"``).
    install_hint
        What to do without it (which extra to install).

    Raises
    ------
    PluginLoadError
        If it is not installed.
    """
    try:
        import onnxruntime
    except ImportError as exc:
        raise PluginLoadError(
            f"{purpose} needs onnxruntime, which is not installed; {install_hint}"
        ) from exc
    return onnxruntime


def open_onnx_session(
    path: str | os.PathLike[str],
    *,
    what: str,
    purpose: str,
    install_hint: str,
    providers: Sequence[str] | None = None,
    threads: int | None = None,
) -> Any:
    """An ``onnxruntime.InferenceSession`` of the model file at ``path``.

    Parameters
    ----------
    path
        The ``.onnx`` file.
    what
        The model's kind, for messages (``"ONNX model"``, ``"MDX-Net model"``).
    purpose, install_hint
        What needs onnxruntime and which extra to install, for the message without it.
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
    ort = _import_onnxruntime(purpose, install_hint)
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"{what} {file} does not exist")
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
            f"onnxruntime cannot load the {what} {file}: {exc}; the file is damaged or not an "
            "ONNX model (download it again)"
        ) from exc
