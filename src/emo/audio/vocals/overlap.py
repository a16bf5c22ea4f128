"""Cutting a long signal into model calls and averaging the overlapping outputs, streamed.

The layout is audio-separator's MDX ``demix`` (what Hallo runs):

* the audio (``length`` samples) is framed as ``[trim zeros | audio | pad zeros]`` with
  ``trim = n_fft // 2`` and ``pad = gen + trim - length % gen``, ``gen = chunk - 2 trim``;
* a model call covers ``chunk = hop * (dim_t - 1)`` samples and starts every
  ``step = int((1 - overlap) * chunk)`` samples, from 0 to the end of the padded signal;
  the last calls are zero-padded to ``chunk``;
* each call's output is weighted by ``numpy.hanning`` over the samples it covers (all ones
  when ``overlap == 0``) and the outputs are divided by the summed weights;
* the audio's samples are ``trim .. trim + length`` of the result.

Here only the samples of the calls in flight are in memory: a sample is final as soon as
the next call starts after it, and is handed on then.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from emo.audio.vocals.config import MDXConfig
from emo.errors import AudioError

__all__ = ["ChunkPlan", "ChunkReader", "OverlapAdd"]


@dataclass(frozen=True)
class ChunkPlan:
    """Where the model calls of one signal start.

    Attributes
    ----------
    length
        Samples of the audio (at the model's rate).
    config
        The model's settings.
    """

    length: int
    config: MDXConfig

    @property
    def pad(self) -> int:
        """Zeros after the audio."""
        c = self.config
        gen = c.chunk_size - 2 * c.trim
        return gen + c.trim - self.length % gen

    @property
    def total(self) -> int:
        """Samples of the padded signal, ``trim + length + pad``."""
        return self.config.trim + self.length + self.pad

    @property
    def starts(self) -> range:
        """The first sample of each model call in the padded signal."""
        return range(0, self.total, self.config.step)

    def weights(self, count: int) -> np.ndarray:
        """``(count,)`` float64 weights of a call covering ``count`` samples."""
        if self.config.overlap == 0:
            return np.ones(count)
        return np.hanning(count)


class ChunkReader:
    """The padded signal, handed out as model calls, from a stream of audio blocks.

    Parameters
    ----------
    blocks
        ``(2, n)`` float32 blocks of the audio: ``plan.length`` samples in all.
    plan
        The calls to cut.
    label
        Names the input in messages.
    """

    def __init__(self, blocks: Iterator[np.ndarray], plan: ChunkPlan, label: str) -> None:
        self.plan = plan
        self.label = label
        self._blocks = blocks
        self._buffer = np.zeros((2, plan.config.trim), np.float32)
        self._origin = 0  # padded-signal index of self._buffer[:, 0]
        self._audio_read = 0
        self._padded = False

    def _fill(self, end: int) -> None:
        while self._origin + self._buffer.shape[1] < end:
            block = next(self._blocks, None)
            if block is None:
                if self._padded:
                    break
                if self._audio_read != self.plan.length:
                    raise AudioError(
                        f"{self.label} gave {self._audio_read} samples on the second read and "
                        f"{self.plan.length} on the first; it changed while being read"
                    )
                block = np.zeros((2, self.plan.pad), np.float32)
                self._padded = True
            else:
                self._audio_read += block.shape[1]
            self._buffer = np.concatenate([self._buffer, block], axis=1)

    def chunk(self, start: int) -> tuple[np.ndarray, int]:
        """The call starting at ``start`` (increasing from call to call).

        Returns
        -------
        tuple[np.ndarray, int]
            ``(2, chunk)`` float32 samples (zeros past the end of the padded signal) and
            how many of them lie inside it.
        """
        chunk = self.plan.config.chunk_size
        end = min(start + chunk, self.plan.total)
        self._fill(end)
        if start > self._origin:
            self._buffer = self._buffer[:, start - self._origin :]
            self._origin = start
        part = self._buffer[:, : end - start]
        if part.shape[1] < chunk:
            part = np.pad(part, ((0, 0), (0, chunk - part.shape[1])))
        return np.ascontiguousarray(part), end - start


class OverlapAdd:
    """Weighted sum of overlapping call outputs; hands out the samples no later call touches."""

    def __init__(self) -> None:
        self._sum = np.zeros((2, 0), np.float32)
        self._weight = np.zeros(0, np.float32)
        self._origin = 0  # padded-signal index of self._sum[:, 0]

    def add(self, start: int, audio: np.ndarray, weights: np.ndarray) -> None:
        """Add one call's output.

        Parameters
        ----------
        start
            Its first sample in the padded signal (not before the last release).
        audio
            ``(2, count)`` float32: the output over the samples the call covers.
        weights
            ``(count,)`` float64 weights (:meth:`ChunkPlan.weights`).
        """
        offset = start - self._origin
        end = offset + audio.shape[1]
        if end > self._sum.shape[1]:
            grow = end - self._sum.shape[1]
            self._sum = np.pad(self._sum, ((0, 0), (0, grow)))
            self._weight = np.pad(self._weight, (0, grow))
        self._sum[:, offset:end] += (audio * weights).astype(np.float32)
        self._weight[offset:end] += weights  # float32 += float64, as audio-separator sums

    def release(self, upto: int) -> tuple[int, np.ndarray]:
        """The finished samples before ``upto``: ``(first index, (2, n) float32 averages)``."""
        count = max(0, min(upto - self._origin, self._sum.shape[1]))
        first = self._origin
        weight = self._weight[:count]
        safe = np.where(weight > 0, weight, np.float32(1))
        out = np.where(weight > 0, self._sum[:, :count] / safe, np.float32(0))
        self._sum = self._sum[:, count:]
        self._weight = self._weight[count:]
        self._origin += count
        return first, out.astype(np.float32, copy=False)
