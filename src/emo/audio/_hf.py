"""Private helpers for encoders backed by a transformers model folder."""

from __future__ import annotations

import json
import os
import shutil
from abc import abstractmethod
from pathlib import Path
from typing import Any

import torch
from typing_extensions import Self

from emo.audio.base import AudioEncoderBase, encode_on_grid
from emo.configuration import atomic_write_text, load_config
from emo.errors import CheckpointError, ConfigError

__all__ = [
    "MODEL_SUBFOLDER",
    "TransformersEncoderBase",
    "check_chunking",
    "check_model_folder",
    "load_json",
    "resolve_model_path",
    "save_folder",
]

MODEL_SUBFOLDER = "model"
"""Sub-folder of a saved encoder that holds the transformers model files."""

_EXTRA_FILES = ("preprocessor_config.json",)


def check_model_folder(model_path: str | os.PathLike[str], what: str) -> Path:
    """Return ``model_path`` as a Path after checking it is a folder with ``config.json``."""
    if not isinstance(model_path, (str, os.PathLike)):
        raise CheckpointError(
            f"{what} model_path must be a local folder path, got {type(model_path).__name__}"
        )
    folder = Path(model_path).expanduser()
    if not folder.is_dir():
        raise CheckpointError(
            f"{what} model folder {os.fspath(model_path)!r} does not exist; pass a local folder "
            "holding a transformers model (config.json + weights); emo never downloads"
        )
    if not (folder / "config.json").is_file():
        raise CheckpointError(
            f"{what} model folder {os.fspath(folder)!r} has no config.json; is it a "
            "transformers model folder?"
        )
    return folder


def check_chunking(owner: str, chunk_seconds: object, context_seconds: object) -> None:
    """Check the chunking settings of an encoder: seconds per chunk (or ``None``) and of context.

    Raises
    ------
    ConfigError
        If either is not a number, ``chunk_seconds <= 0`` or ``context_seconds < 0``.
    """
    for label, value in (("chunk_seconds", chunk_seconds), ("context_seconds", context_seconds)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"{owner}: {label} must be a number, got {value!r}")
    if isinstance(chunk_seconds, (int, float)) and not chunk_seconds > 0:
        raise ConfigError(f"{owner}: chunk_seconds must be > 0 or None, got {chunk_seconds}")
    if not isinstance(context_seconds, (int, float)) or not context_seconds >= 0:
        raise ConfigError(f"{owner}: context_seconds must be >= 0, got {context_seconds}")


def load_json(path: Path) -> dict[str, Any] | None:
    """Read a JSON object, or ``None`` if the file does not exist."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{os.fspath(path)!r} is not readable JSON: {exc}") from exc
    return data if isinstance(data, dict) else None


def save_folder(encoder: Any, directory: str | os.PathLike[str], model: Any, source: Path) -> Path:
    """Save ``encoder``'s config (``model_path`` -> ``"model"``) and ``model`` under ``directory``."""
    folder = Path(directory)
    target = folder / MODEL_SUBFOLDER
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(os.fspath(target))
    for name in _EXTRA_FILES:
        if (source / name).is_file() and (source / name).resolve() != (target / name).resolve():
            shutil.copyfile(source / name, target / name)
    data = encoder.config.to_dict()
    data["model_path"] = MODEL_SUBFOLDER
    atomic_write_text(
        folder / encoder.config_name, json.dumps(data, indent=2, sort_keys=True) + "\n"
    )
    return folder


def resolve_model_path(directory: str | os.PathLike[str], config_name: str) -> dict[str, Any]:
    """Read a saved encoder config; a relative ``model_path`` is resolved against ``directory``."""
    config = load_config(directory, config_name).to_dict()
    path = config.get("model_path")
    if isinstance(path, str) and not Path(path).is_absolute():
        config["model_path"] = os.fspath(Path(directory) / path)
    return config


def model_device(model: torch.nn.Module) -> torch.device:
    """Device of a module's first parameter (CPU if it has none)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    """Floating dtype of a module's first parameter (float32 if it has none)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


class TransformersEncoderBase(AudioEncoderBase):
    """What the encoders wrapping a local transformers model share.

    A subclass sets ``model`` (the transformers module), ``layer_indices`` (hidden
    states to keep) and ``_folder`` (the model folder it was loaded from) in ``__init__``.
    """

    model: Any
    layer_indices: tuple[int, ...]
    _folder: Path
    #: Input samples per feature step.
    stride: int
    #: Input samples one feature sees (1 for an encoder of spectrogram windows).
    receptive_field: int = 1

    @abstractmethod
    def _run(self, chunk: torch.Tensor) -> torch.Tensor:
        """Features of one stretch of audio ``(s,)``: ``(t, l, d)`` float32."""

    @abstractmethod
    def _chunking(self) -> tuple[int | None, int]:
        """``(chunk_features, context_features)`` of :func:`~emo.audio.base.encode_on_grid`."""

    def encode(
        self, waveform: Any, sample_rate: int, *, num_frames: int, fps: float
    ) -> torch.Tensor:
        """Return ``(f, l, d)`` float32 features on :attr:`device`, frame ``i`` at time ``i / fps``.

        The audio is encoded in chunks with context on both sides
        (:func:`~emo.audio.base.encode_on_grid`), so memory is bounded by a chunk.

        Parameters
        ----------
        waveform
            ``(samples,)`` float mono audio.
        sample_rate
            Its rate in Hz (resampled to :attr:`sample_rate` if different).
        num_frames
            Number ``f`` of video frames.
        fps
            Video frame rate.
        """
        fr = self.check_frames(num_frames, fps)
        x = self.prepare_waveform(waveform, sample_rate)
        chunk, context = self._chunking()
        out = torch.empty(num_frames, self.num_layers, self.feature_dim, device=self.device)
        with torch.inference_mode():
            return encode_on_grid(
                self._run,
                x,
                num_frames=num_frames,
                fps=fr,
                sample_rate=self.sample_rate,
                stride=self.stride,
                receptive_field=self.receptive_field,
                pad_left=self.receptive_field // 2,
                chunk_features=chunk,
                context_features=context,
                out=out,
            )

    @property
    def device(self) -> torch.device:
        """Device of the model's weights."""
        return model_device(self.model)

    def to(
        self, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> Self:
        """Move / cast the model; features are still returned as float32."""
        self.model.to(device=device, dtype=dtype)
        return self

    def _hidden_states(self, inputs: torch.Tensor) -> torch.Tensor:
        """Run the model on one input ``(...)`` and stack the kept layers: ``(t, l, d)`` float32."""
        inputs = inputs.to(device=self.device, dtype=model_dtype(self.model))
        out = self.model(inputs[None], output_hidden_states=True)
        states = [out.hidden_states[i][0] for i in self.layer_indices]
        return torch.stack(states, dim=1).float()

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` and the transformers model (``model/``) into ``directory``."""
        return save_folder(self, directory, self.model, self._folder)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str], **overrides: Any) -> Self:
        """Load an encoder saved by :meth:`save_pretrained` (``model_path`` is folder-relative)."""
        return cls.from_config(resolve_model_path(directory, cls.config_name), **overrides)
