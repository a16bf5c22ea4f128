"""Vocal separation with an MDX-Net model (Hallo: ``audio_separator/Kim_Vocal_2.onnx``).

Hallo separates the vocals of a song before encoding it, with audio-separator 0.17.2 and
UVR's ``Kim_Vocal_2.onnx``. :class:`VocalSeparator` runs the same ONNX file with onnxruntime
and does everything around it with emo's own code, in audio-separator's order:

1. the audio is resampled to 44.1 kHz stereo (mono is duplicated to both channels);
2. if its peak exceeds 0.9 it is scaled down to 0.9;
3. it is cut into overlapping model calls (:mod:`emo.audio.vocals.overlap`), each turned
   into the model's spectrum and back (:mod:`emo.audio.vocals.spectrum`);
4. the calls' outputs are averaged with Hann weights and multiplied by the model's
   ``compensate`` gain: the stereo vocals;
5. the vocals are averaged to mono, resampled to the rate asked for and, if their stereo
   peak exceeds 0.9, scaled down to 0.9.

The input is read twice (the peak, then the model) and only the calls in flight are in
memory, so the memory does not grow with the length of the song (the mono output does).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from emo.audio.loading import _Growing, load_audio
from emo.audio.resampling import StreamingResampler
from emo.audio.vocals.config import MDXConfig, model_config
from emo.audio.vocals.demix import Demix
from emo.audio.vocals.onnx_model import MDXModel
from emo.audio.vocals.sources import StereoSource, array_source, file_source
from emo.errors import AudioError, CheckpointError, ConfigError

__all__ = [
    "HALLO_SEPARATOR_FILE",
    "SupportsVocalSeparation",
    "VocalSeparator",
    "find_separator",
    "hallo_separator_file",
]

#: Where Hallo keeps its separation model, relative to ``pretrained_models``.
HALLO_SEPARATOR_FILE = Path("audio_separator") / "Kim_Vocal_2.onnx"

Progress = Callable[[int, int], None]


@runtime_checkable
class SupportsVocalSeparation(Protocol):
    """What a pipeline needs of a vocal separator (any object with these two members).

    Attributes
    ----------
    sample_rate
        The rate the separator works at, in Hz (pipelines hand it audio at this rate).
    """

    sample_rate: int

    def separate(self, waveform: Any, sample_rate: int) -> torch.Tensor:
        """``(samples,)`` audio at ``sample_rate`` -> ``(samples,)`` vocals at ``sample_rate``."""
        ...


def hallo_separator_file(folder: str | os.PathLike[str]) -> Path | None:
    """Hallo's separation model in ``folder`` (``pretrained_models`` or the folder above it).

    Returns
    -------
    Path | None
        ``.../audio_separator/Kim_Vocal_2.onnx``, or ``None`` when there is none.
    """
    root = Path(folder)
    for candidate in (root, root / "pretrained_models"):
        if (candidate / HALLO_SEPARATOR_FILE).is_file():
            return candidate / HALLO_SEPARATOR_FILE
    return None


class VocalSeparator:
    """Separates the vocals of a song with an MDX-Net ONNX model.

    Parameters
    ----------
    model_path
        The ``.onnx`` file (Hallo: ``pretrained_models/audio_separator/Kim_Vocal_2.onnx``).
    config
        The model's settings; ``None`` looks them up by the file's hash (known files:
        :data:`~emo.audio.vocals.config.KNOWN_MODELS`).
    providers
        onnxruntime execution providers in order of preference (default: the CPU).
    threads
        Threads of one operator (onnxruntime's ``intra_op_num_threads``).
    batch_size
        Model calls per onnxruntime run (more memory, same result).

    Raises
    ------
    CheckpointError
        If the file is missing.

    Notes
    -----
    Building a separator only checks that the file exists, so a pipeline can hold one that
    is never used (``vocal_separation=False``). On first use, or by :meth:`load`, the
    settings are looked up by the file's hash when ``config`` is ``None`` (an unknown file
    is a :class:`~emo.errors.CheckpointError`), onnxruntime is imported and the file's
    input shape is checked against the settings.

    Examples
    --------
    >>> separator = VocalSeparator.from_hallo_folder("pretrained_models")  # doctest: +SKIP
    >>> vocals = separator.separate_file("song.wav", output_rate=16000)  # doctest: +SKIP
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        config: MDXConfig | None = None,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        batch_size: int = 1,
    ) -> None:
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise CheckpointError(
                f"the vocal separation model {self.model_path} does not exist; check the path"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")
        if config is not None and not isinstance(config, MDXConfig):
            raise ConfigError(f"config must be an MDXConfig, got {type(config).__name__}")
        self._config = config
        self.name = self.model_path.stem
        self.providers = None if providers is None else tuple(providers)
        self.threads = threads
        self.batch_size = batch_size
        self._model: MDXModel | None = None

    @classmethod
    def from_hallo_folder(cls, folder: str | os.PathLike[str], **options: Any) -> VocalSeparator:
        """The separator of a Hallo folder (``pretrained_models`` or the folder above it).

        Parameters
        ----------
        folder
            Hallo's ``pretrained_models`` (or its parent).
        **options
            Passed to :class:`VocalSeparator`.

        Raises
        ------
        CheckpointError
            If the folder has no ``audio_separator/Kim_Vocal_2.onnx``.
        """
        file = hallo_separator_file(folder)
        if file is None:
            raise CheckpointError(
                f"{folder} has no {HALLO_SEPARATOR_FILE} (Hallo's vocal separation model); "
                "put Hallo's file there, or turn vocal separation off (emo generate "
                "--no-vocal-separation; vocal_separation=False)"
            )
        return cls(file, **options)

    @property
    def config(self) -> MDXConfig:
        """The model's settings (looked up by the file's hash when none were given).

        Raises
        ------
        CheckpointError
            If none were given and the file is not a known model.
        """
        if self._config is None:
            self.name, self._config = model_config(self.model_path)
        return self._config

    @property
    def sample_rate(self) -> int:
        """The model's rate in Hz (44100 for Kim_Vocal_2)."""
        return self.config.sample_rate

    def load(self) -> MDXModel:
        """Open the model now (imports onnxruntime, checks the file's input shape)."""
        if self._model is None:
            self._model = MDXModel(
                self.model_path, self.config, providers=self.providers, threads=self.threads
            )
        return self._model

    def __repr__(self) -> str:
        return f"VocalSeparator({self.name!r}, {os.fspath(self.model_path)!r})"

    def separate(
        self,
        waveform: Any,
        sample_rate: int,
        *,
        output_rate: int | None = None,
        progress: bool = False,
        callback: Progress | None = None,
    ) -> torch.Tensor:
        """The vocals of audio in memory, mono.

        Parameters
        ----------
        waveform
            numpy array or torch tensor: ``(samples,)`` mono or ``(channels, samples)`` /
            ``(samples, channels)`` (the shorter axis is taken as channels).
        sample_rate
            Its rate in Hz.
        output_rate
            The rate of the result (default: ``sample_rate``).
        progress
            Show a progress bar (tqdm) over the model calls.
        callback
            Called as ``callback(done, total)`` after each model call.

        Returns
        -------
        torch.Tensor
            ``(ceil(samples * output_rate / sample_rate),)`` float32 vocals.
        """
        rate = _rate("sample_rate", sample_rate)
        source = array_source(waveform, rate)
        out_rate = rate if output_rate is None else _rate("output_rate", output_rate)
        return self._separate(source, out_rate, progress, callback)

    def separate_file(
        self,
        path: str | os.PathLike[str],
        *,
        output_rate: int,
        progress: bool = False,
        callback: Progress | None = None,
    ) -> torch.Tensor:
        """The vocals of an audio file, mono at ``output_rate``.

        Files soundfile reads (WAV, FLAC, OGG, MP3, ...) are read block by block in
        stereo, twice. Other files (M4A, the audio of a video) are decoded to mono by
        :func:`~emo.audio.loading.load_audio` first, so the model sees the same mix on
        both channels.

        Parameters
        ----------
        path
            The audio or video file.
        output_rate
            The rate of the result in Hz.
        progress, callback
            As for :meth:`separate`.

        Returns
        -------
        torch.Tensor
            ``(samples,)`` float32 vocals at ``output_rate``.
        """
        out_rate = _rate("output_rate", output_rate)
        source = file_source(path)
        if source is None:
            mono = load_audio(path, sample_rate=self.sample_rate)
            source = array_source(mono, self.sample_rate, label=f"audio file {os.fspath(path)!r}")
        return self._separate(source, out_rate, progress, callback)

    def separate_stereo(self, waveform: Any, sample_rate: int) -> np.ndarray:
        """The stereo vocals at the model's rate, all in memory (for inspection and tests).

        Parameters
        ----------
        waveform, sample_rate
            As for :meth:`separate`.

        Returns
        -------
        np.ndarray
            ``(2, ceil(samples * model rate / sample_rate))`` float32: audio-separator's
            vocal stem before it is written to a file.
        """
        job = Demix(
            self.load(),
            array_source(waveform, _rate("sample_rate", sample_rate)),
            self.config,
            batch_size=self.batch_size,
        )
        vocals = np.concatenate([block for _, block in job], axis=1)
        peak = float(np.abs(vocals).max())
        if peak > self.config.peak:
            vocals *= np.float32(self.config.peak / peak)
        return vocals

    def _separate(
        self, source: StereoSource, output_rate: int, progress: bool, callback: Progress | None
    ) -> torch.Tensor:
        job = Demix(self.load(), source, self.config, batch_size=self.batch_size)
        resampler = StreamingResampler(self.sample_rate, output_rate)
        out = _Growing(math.ceil(job.length * output_rate / self.sample_rate) + 16)
        peak = 0.0
        bar = _progress_bar(job.calls, progress)
        try:
            for done, stereo in job:
                if stereo.size:
                    peak = max(peak, float(np.abs(stereo).max()))
                    out.append(
                        resampler.push(torch.from_numpy(stereo.mean(axis=0, dtype=np.float32)))
                    )
                if bar is not None:
                    bar.update(done - bar.n)
                if callback is not None:
                    callback(done, job.calls)
        finally:
            if bar is not None:
                bar.close()
        out.append(resampler.flush())
        result = out.finish()
        if peak > self.config.peak:
            # audio-separator limits the stereo stem's peak; the mono mix scales alike.
            result.mul_(self.config.peak / peak)
        return result


def _rate(name: str, rate: Any) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise AudioError(f"{name} must be a positive int (Hz), got {rate!r}")
    return int(rate)


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="separating vocals", unit="call")


def find_separator(model_dir: str | os.PathLike[str], **options: Any) -> VocalSeparator | None:
    """The vocal separator a model folder holds, or ``None``.

    Looks for Hallo's ``audio_separator/Kim_Vocal_2.onnx`` in ``model_dir`` (Hallo's
    ``pretrained_models`` or the folder above it).

    Parameters
    ----------
    model_dir
        The model folder.
    **options
        Passed to :class:`VocalSeparator`.

    Returns
    -------
    VocalSeparator | None
        ``None`` when the folder has no separation model.

    Raises
    ------
    CheckpointError
        If the file is there but is not the known model (damaged or another file).
    """
    file = hallo_separator_file(model_dir)
    return None if file is None else VocalSeparator(file, **options)
