"""Stereo audio read block by block, and resampled to the model's rate on the fly.

A separation reads its input twice (once for the peak, once for the model), so a source
is something that can be opened again: an array in memory, or a file soundfile reads.
Mono is duplicated to both channels (audio-separator does the same); more than two
channels are averaged to mono first.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emo.audio.resampling import StreamingResampler
from emo.errors import AudioError

__all__ = ["StereoSource", "array_source", "file_source", "resampled_blocks"]

BLOCK = 1 << 18  # frames per block


@dataclass(frozen=True)
class StereoSource:
    """Audio that can be read, more than once, as ``(2, n)`` float32 blocks.

    Attributes
    ----------
    label
        Names the input in messages.
    rate
        Sample rate in Hz.
    open
        Starts a new pass: an iterator of ``(2, n)`` float32 blocks.
    """

    label: str
    rate: int
    open: Callable[[], Iterator[np.ndarray]]


def _stereo(block: np.ndarray) -> np.ndarray:
    """``(c, n)`` -> ``(2, n)`` float32: mono duplicated, more channels averaged first."""
    if block.shape[0] == 2:
        return np.ascontiguousarray(block, dtype=np.float32)
    mono = block.mean(axis=0, dtype=np.float32) if block.shape[0] > 2 else block[0]
    return np.ascontiguousarray(np.broadcast_to(mono, (2, block.shape[1])), dtype=np.float32)


def _float_array(waveform: Any, label: str) -> np.ndarray:
    if isinstance(waveform, torch.Tensor):
        if waveform.is_meta:
            raise AudioError(f"{label} is on the meta device (no data); pass real samples")
        waveform = waveform.detach().cpu().numpy()
    if not isinstance(waveform, np.ndarray):
        raise AudioError(
            f"{label} must be a numpy array or torch tensor, got {type(waveform).__name__}"
        )
    if waveform.dtype == np.uint8:
        return (waveform.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(waveform.dtype, np.integer):
        return waveform.astype(np.float32) / float(2 ** (np.iinfo(waveform.dtype).bits - 1))
    if not np.issubdtype(waveform.dtype, np.floating):
        raise AudioError(f"{label} has dtype {waveform.dtype}; pass float or integer samples")
    return waveform


def array_source(waveform: Any, rate: int, label: str = "the audio") -> StereoSource:
    """A source over an array in memory.

    Parameters
    ----------
    waveform
        numpy array or torch tensor, ``(samples,)``, ``(channels, samples)`` or
        ``(samples, channels)`` (the shorter axis is taken as channels), float or integer
        (integers are scaled to ``[-1, 1)``).
    rate
        Its sample rate in Hz.
    label
        Names the input in messages.
    """
    array = _float_array(waveform, label)
    if array.ndim == 1:
        array = array[None, :]
    elif array.ndim == 2:
        if array.shape[1] < array.shape[0]:
            array = array.T  # (samples, channels) -> (channels, samples)
    else:
        raise AudioError(
            f"{label} has {array.ndim} dimensions; pass (samples,), (channels, samples) or "
            "(samples, channels)"
        )
    if array.shape[1] == 0:
        raise AudioError(f"{label} has no samples (zero length)")

    def blocks() -> Iterator[np.ndarray]:
        for start in range(0, array.shape[1], BLOCK):
            yield _stereo(array[:, start : start + BLOCK])

    return StereoSource(label, int(rate), blocks)


def file_source(path: str | os.PathLike[str]) -> StereoSource | None:
    """A source over an audio file soundfile (libsndfile) reads, or ``None`` if it cannot.

    Parameters
    ----------
    path
        WAV, FLAC, OGG, MP3, AIFF, ... (whatever the installed libsndfile reads).
    """
    import soundfile as sf

    file = Path(path)
    label = f"audio file {os.fspath(path)!r}"
    if not file.is_file():
        raise AudioError(f"{label} does not exist; check the path")
    try:
        with sf.SoundFile(os.fspath(file)) as handle:
            rate = int(handle.samplerate)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return None

    def blocks() -> Iterator[np.ndarray]:
        with sf.SoundFile(os.fspath(file)) as handle:
            try:
                while True:
                    block = handle.read(BLOCK, dtype="float32", always_2d=True)
                    if block.shape[0] == 0:
                        return
                    yield _stereo(block.T)
            except sf.LibsndfileError as exc:
                raise AudioError(f"{label} is corrupt: decoding failed ({exc})") from exc

    return StereoSource(label, rate, blocks)


def resampled_blocks(source: StereoSource, rate: int) -> Iterator[np.ndarray]:
    """One pass over ``source`` at ``rate``: ``(2, n)`` float32 blocks, checked for NaN/inf.

    The total length is ``ceil(frames * rate / source.rate)``
    (:class:`~emo.audio.resampling.StreamingResampler` on each channel).
    """
    same = source.rate == rate
    left = None if same else StreamingResampler(source.rate, rate)
    right = None if same else StreamingResampler(source.rate, rate)
    seen = 0
    for block in source.open():
        finite = np.isfinite(block)
        if not finite.all():
            first = seen + int(np.argmin(finite.all(axis=0)))
            raise AudioError(
                f"{source.label} holds NaN or infinite samples (first at {first / source.rate:.3f}"
                " s); re-export it"
            )
        seen += block.shape[1]
        if left is None or right is None:
            yield block
            continue
        out_l = left.push(torch.from_numpy(block[0].copy()))
        out_r = right.push(torch.from_numpy(block[1].copy()))
        if out_l.numel():
            yield np.stack([out_l.numpy(), out_r.numpy()])
    if seen == 0:
        raise AudioError(f"{source.label} has no audio samples (zero length)")
    if left is not None and right is not None:
        tail = np.stack([left.flush().numpy(), right.flush().numpy()])
        if tail.shape[1]:
            yield tail
