"""An MDX-Net ONNX file opened with onnxruntime, its signature checked against its settings.

onnxruntime (the ``vocals`` extra) is imported when a model is opened, never by ``import emo``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emo.audio.vocals.config import MDXConfig
from emo.errors import CheckpointError
from emo.onnx_session import open_onnx_session

__all__ = ["INSTALL_HINT", "MDXModel"]

INSTALL_HINT = (
    'install the vocals extra: pip install "emo[vocals]" (onnxruntime), or turn vocal '
    "separation off (emo generate --no-vocal-separation; vocal_separation=False)"
)


class MDXModel:
    """An MDX-Net model: ``(b, 4, dim_f, dim_t)`` spectrum in, the vocals' spectrum out.

    Parameters
    ----------
    path
        The ``.onnx`` file.
    config
        The model's settings; the file's input must be ``(batch, 4, dim_f, dim_t)``.
    providers
        onnxruntime execution providers in order of preference (default: the CPU).
    threads
        Threads of one operator (onnxruntime's ``intra_op_num_threads``; default: its own).

    Raises
    ------
    PluginLoadError
        Without onnxruntime (the message names the extra).
    CheckpointError
        If the file is missing, damaged, or its input or output is not the expected
        ``(batch, 4, dim_f, dim_t)`` float tensor (the message names the file).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        config: MDXConfig,
        *,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.config = config
        self.session = open_onnx_session(
            self.path,
            what="MDX-Net model",
            purpose="vocal separation (an MDX-Net model)",
            install_hint=INSTALL_HINT,
            providers=providers,
            threads=threads,
        )
        self.input_name, self.max_batch = self._check_signature()

    @property
    def expected_shape(self) -> tuple[int, int, int]:
        """``(4, dim_f, dim_t)``: the input shape after the batch axis."""
        return (4, self.config.dim_f, self.config.dim_t)

    def _check_signature(self) -> tuple[str, int | None]:
        inputs = self.session.get_inputs()
        outputs = self.session.get_outputs()
        want = f"(batch, {', '.join(map(str, self.expected_shape))})"
        if len(inputs) != 1 or not outputs:
            raise CheckpointError(
                f"{self.path} is not an MDX-Net model: it has {len(inputs)} inputs and "
                f"{len(outputs)} outputs, expected one input {want} and one output"
            )
        shape = list(inputs[0].shape)
        if (
            len(shape) != 4
            or tuple(shape[1:]) != self.expected_shape
            or inputs[0].type != "tensor(float)"
        ):
            raise CheckpointError(
                f"{self.path}: the model's input is {inputs[0].type} {shape}, but these settings "
                f"(n_fft={self.config.n_fft}, dim_f={self.config.dim_f}, dim_t="
                f"{self.config.dim_t}) need a float tensor {want}; pass the MDXConfig this "
                "model was trained with"
            )
        batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        return str(inputs[0].name), batch

    def __call__(self, spectrum: np.ndarray) -> np.ndarray:
        """Run the model.

        Parameters
        ----------
        spectrum
            ``(b, 4, dim_f, dim_t)`` float32.

        Returns
        -------
        np.ndarray
            ``(b, 4, dim_f, dim_t)`` float32: the vocals' spectrum.
        """
        if self.max_batch is not None and spectrum.shape[0] != self.max_batch:
            # A file with a fixed batch size: run it batch by batch, the last zero-padded.
            n, size = spectrum.shape[0], self.max_batch
            parts = []
            for i in range(0, n, size):
                part = spectrum[i : i + size]
                pad = size - part.shape[0]
                if pad:
                    part = np.concatenate([part, np.zeros((pad, *part.shape[1:]), part.dtype)])
                parts.append(self(part)[: size - pad])
            return np.concatenate(parts)
        result = self.session.run(None, {self.input_name: spectrum})[0]
        if tuple(result.shape) != tuple(spectrum.shape):
            raise CheckpointError(
                f"{self.path}: the model returned shape {tuple(result.shape)} for an input of "
                f"shape {tuple(spectrum.shape)}; an MDX-Net model returns a spectrum of its "
                "input's shape"
            )
        return np.asarray(result, dtype=np.float32)
