"""``whisper``: hidden states of the encoder of a transformers Whisper model from a local folder."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, ClassVar

import torch

from emo.audio._dsp import mel_filterbank
from emo.audio._hf import (
    TransformersEncoderBase,
    check_chunking,
    check_model_folder,
    load_json,
)
from emo.audio.wav2vec2 import _building_on_meta, select_layers
from emo.errors import CheckpointError, ConfigError
from emo.modeling import load_state_dict_file

__all__ = ["WhisperEncoder", "whisper_log_mel"]

_N_FFT = 400
_HOP = 160


def whisper_log_mel(
    waveform: torch.Tensor, filters: torch.Tensor, num_samples: int, n_fft: int = _N_FFT,
    hop_length: int = _HOP,
) -> torch.Tensor:  # fmt: skip
    """Whisper's log-mel front end: pad to ``num_samples``, power STFT, mel, log10, clamp, scale.

    Parameters
    ----------
    waveform
        ``(s,)`` float32 audio, ``s <= num_samples``.
    filters
        ``(n_fft // 2 + 1, m)`` mel filters (slaney scale and norm, 0-8 kHz).
    num_samples
        Window length (30 s at 16 kHz for released checkpoints).
    n_fft
        FFT size.
    hop_length
        Hop in samples.

    Returns
    -------
    torch.Tensor
        ``(m, num_samples // hop_length)``: ``(max(log10 mel, max - 8) + 4) / 4``.
    """
    x = torch.nn.functional.pad(waveform, (0, num_samples - waveform.numel()))
    window = torch.hann_window(n_fft, periodic=True, device=x.device)
    spec = torch.stft(x, n_fft, hop_length, window=window, center=True, pad_mode="reflect",
                      return_complex=True)  # fmt: skip
    power = spec[..., :-1].abs() ** 2  # (bins, frames)
    mel = filters.to(x.device).T @ power
    log = torch.clamp(mel, min=1e-10).log10()
    log = torch.maximum(log, log.max() - 8.0)
    return (log + 4.0) / 4.0


class WhisperEncoder(TransformersEncoderBase):
    """Per-frame features from the hidden states of a Whisper encoder.

    Whisper encodes a fixed window (30 s for released checkpoints, in general
    ``2 * max_source_positions * 160`` samples at 16 kHz) into one feature every
    20 ms; feature ``t`` is centred on window time ``t * 0.02`` s. Audio is therefore
    encoded in windows whose central ``chunk_seconds`` are kept and whose
    ``context_seconds`` on both sides absorb edge effects; video frame ``i`` (time
    ``i / fps``) is the linear interpolation of the two nearest features.

    The log-mel front end is the folder's ``WhisperFeatureExtractor``
    (``preprocessor_config.json``) when present, otherwise an equivalent computed from
    the model config (``num_mel_bins``, 400-point FFT, hop 160, 0-8 kHz slaney mel).

    Parameters
    ----------
    model_path
        Local folder of a transformers Whisper checkpoint (``WhisperModel``,
        ``WhisperForConditionalGeneration``, or an encoder saved by this class); only
        the encoder weights are loaded; nothing is downloaded.
    layers
        Hidden states to return: ``0`` is the input of the first encoder layer,
        ``encoder_layers`` the (layer-normed) output; negative indices count from the
        end; ``None`` for all.
    chunk_seconds
        Kept audio per window; ``None`` for as much as the window allows.
    context_seconds
        Extra audio on each side of a kept chunk.

    Notes
    -----
    :meth:`save_pretrained` writes the encoder (transformers ``save_pretrained``,
    with the feature-extractor file if any) into ``<folder>/model``.
    """

    name: ClassVar[str] = "whisper"
    description: ClassVar[str] = (
        "hidden states of the encoder of a local transformers Whisper model"
    )

    def __init__(
        self,
        model_path: str,
        layers: tuple[int, ...] | None = None,
        chunk_seconds: float | None = None,
        context_seconds: float = 2.0,
    ) -> None:
        from transformers import WhisperConfig
        from transformers.models.whisper.modeling_whisper import WhisperEncoder as HFEncoder

        folder = check_model_folder(model_path, "whisper")
        try:
            hf_config = WhisperConfig.from_pretrained(os.fspath(folder), local_files_only=True)
        except Exception as exc:  # transformers raises OSError, TypeError, ValueError...
            raise CheckpointError(
                f"cannot read a Whisper config in {os.fspath(folder)!r}: "
                f"{type(exc).__name__}: {str(exc)[:500]}"
            ) from exc
        check_chunking("WhisperEncoder", chunk_seconds, context_seconds)
        encoder: Any = HFEncoder(hf_config)
        if not _building_on_meta():
            _load_encoder_weights(encoder, folder)
        self._folder = folder
        self.model: Any = encoder
        self.model.to(dtype=torch.float32).eval()
        self.layer_indices = select_layers(layers, hf_config.encoder_layers + 1, "WhisperEncoder")
        self.sample_rate = 16000
        self.feature_dim = int(hf_config.d_model)
        self.num_layers = len(self.layer_indices)
        self.positions = int(hf_config.max_source_positions)
        self.stride = 2 * _HOP
        self.window_samples = self.positions * self.stride
        self._extractor: Any = None
        pre = load_json(folder / "preprocessor_config.json")
        if pre is not None:
            from transformers import WhisperFeatureExtractor

            self._extractor = WhisperFeatureExtractor.from_pretrained(os.fspath(folder))
            self.sample_rate = int(self._extractor.sampling_rate)
            if self._extractor.n_samples != self.window_samples:
                raise ConfigError(
                    f"{os.fspath(folder)!r}: the feature extractor's window "
                    f"({self._extractor.n_samples} samples) does not match the encoder's "
                    f"({self.window_samples}); fix chunk_length in preprocessor_config.json"
                )
        self._filters = mel_filterbank(
            self.sample_rate, _N_FFT, hf_config.num_mel_bins, 0.0, 8000.0
        )
        per_second = self.sample_rate / self.stride
        self._context = max(1, math.ceil(context_seconds * per_second))
        room = self.positions - 2 * self._context
        if room < 1:
            raise ConfigError(
                f"WhisperEncoder: context_seconds={context_seconds} leaves no room in the "
                f"{self.window_samples / self.sample_rate:g} s window; lower it"
            )
        self._chunk = (
            room if chunk_seconds is None else min(room, max(1, round(chunk_seconds * per_second)))
        )
        self.chunk_seconds = chunk_seconds
        self.context_seconds = context_seconds

    def log_mel(self, chunk: torch.Tensor) -> torch.Tensor:
        """``(s,)`` audio (``s <=`` the window) -> ``(num_mel_bins, 2 * max_source_positions)``."""
        if self._extractor is not None:
            feats = self._extractor(
                chunk.cpu().numpy(), sampling_rate=self.sample_rate, return_tensors="pt"
            ).input_features[0]
            return torch.as_tensor(feats, dtype=torch.float32)
        return whisper_log_mel(chunk.float().cpu(), self._filters, self.window_samples)

    def _run(self, chunk: torch.Tensor) -> torch.Tensor:
        return self._hidden_states(self.log_mel(chunk))  # (positions, l, d)

    def _chunking(self) -> tuple[int | None, int]:
        return self._chunk, self._context


def _weight_files(folder: Path) -> list[Path]:
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = load_json(folder / index_name)
        if index is not None:
            names = sorted(set(index.get("weight_map", {}).values()))
            return [folder / n for n in names]
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return [folder / name]
    raise CheckpointError(
        f"no weights (model.safetensors or pytorch_model.bin) in {os.fspath(folder)!r}"
    )


def _load_encoder_weights(encoder: torch.nn.Module, folder: Path) -> None:
    """Copy the encoder's tensors from a full Whisper checkpoint or an encoder-only one."""
    own = encoder.state_dict()
    found: dict[str, torch.Tensor] = {}
    for file in _weight_files(folder):
        state = load_state_dict_file(file)
        for prefix in ("model.encoder.", "encoder.", ""):
            for key, value in state.items():
                if key.startswith(prefix) and key[len(prefix) :] in own:
                    found.setdefault(key[len(prefix) :], value)
    missing = sorted(k for k in own if k not in found)
    if missing:
        raise CheckpointError(
            f"{os.fspath(folder)!r} lacks {len(missing)} Whisper encoder tensors "
            f"(e.g. {missing[:3]}); is it a Whisper checkpoint?"
        )
    bad = [k for k, v in found.items() if tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise CheckpointError(
            f"{os.fspath(folder)!r}: tensor shapes do not fit its config.json (e.g. {bad[:3]})"
        )
    encoder.load_state_dict(found)
