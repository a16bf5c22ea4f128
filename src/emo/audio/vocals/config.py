"""The settings of an MDX-Net separation model, and the known model files.

An MDX-Net ONNX file holds only the network: the STFT it was trained on, the number of
frequency bins it sees and the output gain are not in it. audio-separator (which Hallo
uses) looks them up in UVR's model data by a hash of the file; :func:`model_config` does
the same for the files emo knows (Hallo's ``Kim_Vocal_2.onnx``), and any other MDX-Net
vocal model runs with an explicit :class:`MDXConfig`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from emo.errors import CheckpointError, ConfigError

__all__ = ["KIM_VOCAL_2", "KNOWN_MODELS", "MDXConfig", "model_config", "uvr_hash"]

_HASH_TAIL = 10000 * 1024  # UVR hashes the last 10,000 KiB of a model file


@dataclass(frozen=True)
class MDXConfig:
    """How to run one MDX-Net model: its STFT, its input size and the output gain.

    Attributes
    ----------
    n_fft
        STFT size (Hann window of this length, periodic; ``n_fft // 2 + 1`` bins).
    hop_length
        STFT hop in samples.
    dim_f
        Frequency bins the model takes: the lowest ``dim_f`` of the STFT; the rest are
        dropped on the way in and come back as zeros.
    dim_t
        STFT frames per model call; one call covers ``hop_length * (dim_t - 1)`` samples.
    compensate
        Gain applied to the separated vocals (UVR's per-model ``compensate``).
    overlap
        Fraction of a call's samples shared with the next call (``0 <= overlap < 1``);
        overlapping outputs are averaged with Hann weights.
    sample_rate
        The model's audio rate in Hz (stereo).
    zeroed_bins
        Lowest frequency bins set to zero before the model (UVR: 3, below ~17 Hz).
    peak
        Peak limit: the mix is scaled down to this peak before separation when it is
        louder, and so are the vocals afterwards (audio-separator's
        ``normalization_threshold``).
    """

    n_fft: int = 7680
    hop_length: int = 1024
    dim_f: int = 3072
    dim_t: int = 256
    compensate: float = 1.009
    overlap: float = 0.25
    sample_rate: int = 44100
    zeroed_bins: int = 3
    peak: float = 0.9

    def __post_init__(self) -> None:
        for name in ("n_fft", "hop_length", "dim_f", "dim_t", "sample_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"MDXConfig.{name} must be a positive int, got {value!r}")
        if self.dim_f > self.bins:
            raise ConfigError(
                f"MDXConfig.dim_f={self.dim_f} exceeds the {self.bins} bins of n_fft={self.n_fft}"
            )
        if self.dim_t < 2:
            raise ConfigError(f"MDXConfig.dim_t must be at least 2 frames, got {self.dim_t}")
        if self.hop_length * (self.dim_t - 1) <= self.n_fft:
            raise ConfigError(
                f"MDXConfig: one model call ({self.hop_length} x {self.dim_t - 1} samples) must "
                f"be longer than n_fft={self.n_fft}"
            )
        if not 0.0 <= float(self.overlap) < 1.0:
            raise ConfigError(f"MDXConfig.overlap must be in [0, 1), got {self.overlap!r}")
        if not 0 <= int(self.zeroed_bins) <= self.dim_f:
            raise ConfigError(
                f"MDXConfig.zeroed_bins must be in [0, dim_f], got {self.zeroed_bins}"
            )
        if not float(self.compensate) > 0.0 or not float(self.peak) > 0.0:
            raise ConfigError("MDXConfig.compensate and MDXConfig.peak must be positive")

    @property
    def bins(self) -> int:
        """Bins of the full STFT, ``n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    @property
    def chunk_size(self) -> int:
        """Samples of one model call, ``hop_length * (dim_t - 1)``."""
        return self.hop_length * (self.dim_t - 1)

    @property
    def trim(self) -> int:
        """Samples of silence put before the audio, ``n_fft // 2``."""
        return self.n_fft // 2

    @property
    def step(self) -> int:
        """Samples between the starts of two model calls, ``int((1 - overlap) * chunk_size)``."""
        return max(1, int((1.0 - float(self.overlap)) * self.chunk_size))


#: Kim_Vocal_2 (MDX-Net by Kimberley Jensen, from UVR), Hallo's
#: ``pretrained_models/audio_separator/Kim_Vocal_2.onnx``: UVR's model data for its hash.
KIM_VOCAL_2 = MDXConfig(n_fft=7680, hop_length=1024, dim_f=3072, dim_t=256, compensate=1.009)

#: UVR hash (:func:`uvr_hash`) -> ``(name, config)`` of the model files emo knows.
KNOWN_MODELS: dict[str, tuple[str, MDXConfig]] = {
    "970b3f9492014d18fefeedfe4773cb42": ("Kim_Vocal_2", KIM_VOCAL_2),
}


def uvr_hash(path: str | os.PathLike[str]) -> str:
    """The hash UVR and audio-separator identify a model file by.

    Parameters
    ----------
    path
        The model file.

    Returns
    -------
    str
        The MD5 hex digest of the file's last 10,000 KiB (of the whole file when smaller).
    """
    file = Path(path)
    try:
        with file.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - _HASH_TAIL))
            return hashlib.md5(handle.read()).hexdigest()
    except OSError as exc:
        raise CheckpointError(f"cannot read the model file {file}: {exc}") from exc


def model_config(path: str | os.PathLike[str]) -> tuple[str, MDXConfig]:
    """The name and settings of a known MDX-Net file, found by its hash.

    Parameters
    ----------
    path
        The ``.onnx`` file.

    Returns
    -------
    tuple[str, MDXConfig]
        The model's name and settings.

    Raises
    ------
    CheckpointError
        If the file is not one emo knows; the message says how to run it anyway.
    """
    digest = uvr_hash(path)
    if digest in KNOWN_MODELS:
        return KNOWN_MODELS[digest]
    known = ", ".join(f"{name} ({h})" for h, (name, _) in KNOWN_MODELS.items())
    raise CheckpointError(
        f"{path} is not an MDX-Net model emo knows (its UVR hash is {digest}; known: {known}). "
        "If it is Hallo's Kim_Vocal_2.onnx, the file is damaged or incomplete: download it "
        "again. For another MDX-Net vocal model, pass its settings: "
        "config=MDXConfig(n_fft=..., dim_f=..., dim_t=..., compensate=...)"
    )
