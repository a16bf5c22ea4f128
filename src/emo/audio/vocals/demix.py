"""One separation at the model's rate: stereo mix in, stereo vocals out, block by block.

audio-separator's MDX ``demix`` in emo's streamed form: the mix is read once for its length
and peak (scaled down to ``config.peak`` when louder), then once more, cut into model calls
(:mod:`emo.audio.vocals.overlap`); each call goes through the model's spectrum
(:mod:`emo.audio.vocals.spectrum`) and the model, and the averaged outputs, times the model's
``compensate`` gain, come out as soon as no later call touches them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from emo.audio.vocals.config import MDXConfig
from emo.audio.vocals.overlap import ChunkPlan, ChunkReader, OverlapAdd
from emo.audio.vocals.sources import StereoSource, resampled_blocks
from emo.audio.vocals.spectrum import from_model_output, model_window, to_model_input
from emo.errors import AudioError

__all__ = ["Demix"]

Model = Callable[[np.ndarray], np.ndarray]


class Demix:
    """The vocals of one source, as an iterable of blocks.

    Parameters
    ----------
    model
        ``(b, 4, dim_f, dim_t)`` float32 spectrum -> the vocals' spectrum, same shape.
    source
        The mix (any rate; resampled to ``config.sample_rate``).
    config
        The model's settings.
    batch_size
        Model calls per ``model`` run.

    Attributes
    ----------
    length
        Samples of the mix at the model's rate (the output has as many).
    gain
        The factor the mix was scaled by (1 unless its peak exceeded ``config.peak``).
    calls
        Model calls the separation makes.
    """

    def __init__(
        self, model: Model, source: StereoSource, config: MDXConfig, *, batch_size: int = 1
    ) -> None:
        self.model = model
        self.source = source
        self.config = config
        self.batch_size = batch_size
        self.length, peak = _scan(source, config.sample_rate)
        self.gain = config.peak / peak if peak > config.peak else 1.0
        self.plan = ChunkPlan(self.length, config)
        # Calls that start after the audio's last sample only touch the padding: skipped.
        self.starts = [s for s in self.plan.starts if s < config.trim + self.length]
        self.calls = len(self.starts)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(calls done, (2, n) float32 vocals)`` after each run: ``length`` samples in all."""
        config, plan, starts = self.config, self.plan, self.starts
        gain = np.float32(self.gain)
        blocks = (
            block * gain if self.gain != 1.0 else block
            for block in resampled_blocks(self.source, config.sample_rate)
        )
        reader = ChunkReader(blocks, plan, self.source.label)
        keep_from, keep_to = config.trim, config.trim + self.length
        window = model_window(config)
        overlap = OverlapAdd()
        for first in range(0, len(starts), self.batch_size):
            group = starts[first : first + self.batch_size]
            pieces = [reader.chunk(s) for s in group]
            with torch.inference_mode():
                mix = torch.from_numpy(np.stack([chunk for chunk, _ in pieces]))
                spec = to_model_input(mix, config, window).numpy()
                vocals = from_model_output(torch.from_numpy(self.model(spec)), config, window)
            for start, (_, count), audio in zip(group, pieces, vocals.numpy(), strict=True):
                overlap.add(start, audio[:, :count], plan.weights(count))
            following = first + self.batch_size
            index, done = overlap.release(starts[following] if following < len(starts) else keep_to)
            lo, hi = max(index, keep_from), min(index + done.shape[1], keep_to)
            kept = done[:, lo - index : max(lo, hi) - index] * np.float32(config.compensate)
            yield min(following, len(starts)), kept


def _scan(source: StereoSource, rate: int) -> tuple[int, float]:
    """First pass: samples at ``rate`` and the peak of both channels."""
    length, peak = 0, 0.0
    for block in resampled_blocks(source, rate):
        length += block.shape[1]
        if block.size:
            peak = max(peak, float(np.abs(block).max()))
    if length == 0:
        raise AudioError(f"{source.label} has no audio samples (zero length)")
    return length, peak
