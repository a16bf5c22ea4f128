"""Hallo's per-frame audio features of a whole track, computed block by block on demand.

:class:`HalloAudioSequence` is what ``Wav2Vec2Encoder(mode="hallo")`` runs (see
:mod:`emo.audio.hallo_features` for Hallo's recipe). Creating one makes a single
pass over the track for its statistics; features are then computed for blocks of
``block_frames`` frames, each from a span of ``block_frames + 2 * context_frames``
frames around it (shifted inwards at the ends of the track), and only the two most
recent blocks are kept. Memory is bounded by a block, whatever the length of the
track; the features of a block differ from Hallo's whole-track encoding by the
effect of the frames outside its span on the transformer
(``benchmarks/hallo_audio_blocks.py`` measures it).
"""

from __future__ import annotations

from typing import Any

import torch

from emo.audio.hallo_features import (
    conv_features,
    conv_geometry,
    encoder_hidden_states,
    first_conv_moments,
    hallo_frame_count,
    interpolate,
    interpolation_weights,
    normalise,
    waveform_moments,
)
from emo.errors import AudioError, InputError

__all__ = ["HalloAudioSequence"]

#: Blocks kept in memory (a clip and its window span at most two).
_KEPT_BLOCKS = 2


class HalloAudioSequence:
    """Hallo's audio features of one track: ``num_frames`` frames of ``(layers, dim)``.

    Parameters
    ----------
    model
        A transformers ``Wav2Vec2Model`` in eval mode.
    waveform
        ``(n,)`` mono float audio at the model's rate, not normalised.
    num_frames
        ``N``, frames wanted. Hallo asks for its own frame count
        (:func:`~emo.audio.hallo_features.hallo_frame_count`) rounded up to whole clips;
        frames beyond the track's own count are zero-padded as Hallo pads them
        (``floor(rate / fps)`` zero samples per frame, after normalisation); fewer frames
        cut the normalised track to ``floor(N * rate / fps)`` samples.
    fps
        Video frame rate.
    sample_rate
        The waveform's (and the model's) rate.
    layers
        Hidden states kept (Hallo: ``1..L``).
    normalize
        Normalise the whole track to zero mean and unit variance (Hallo: yes).
    block_frames
        Frames per transformer block; ``None``: the whole track in one block (Hallo's
        way; memory grows with the length).
    context_frames
        Frames the transformer sees on each side of a block.

    Raises
    ------
    AudioError
        If the waveform is not ``(n >= 1,)`` or the padded track is shorter than one
        feature step of the model (25 ms at 16 kHz).
    InputError
        If ``num_frames``, ``block_frames`` or ``context_frames`` is out of range.
    """

    def __init__(
        self,
        model: Any,
        waveform: torch.Tensor,
        *,
        num_frames: int,
        fps: float,
        sample_rate: int,
        layers: tuple[int, ...],
        normalize: bool = True,
        block_frames: int | None = None,
        context_frames: int = 0,
    ) -> None:
        if not isinstance(waveform, torch.Tensor) or waveform.ndim != 1 or waveform.numel() == 0:
            shape = tuple(waveform.shape) if isinstance(waveform, torch.Tensor) else waveform
            raise AudioError(f"Hallo's audio features need a (samples,) waveform, got {shape!r}")
        if num_frames < 1:
            raise InputError(f"num_frames must be >= 1, got {num_frames}")
        if block_frames is not None and block_frames < 1:
            raise InputError(f"block_frames must be >= 1 or None, got {block_frames}")
        if context_frames < 0:
            raise InputError(f"context_frames must be >= 0, got {context_frames}")
        self.model = model
        self.waveform = waveform
        self.num_frames = num_frames
        self.layers = layers
        self.block_frames = num_frames if block_frames is None else min(block_frames, num_frames)
        self.context_frames = context_frames
        n = int(waveform.shape[0])
        own = hallo_frame_count(n, sample_rate, fps)
        per_frame = int(sample_rate // fps)
        if num_frames >= own:
            self._real, self.length = n, n + (num_frames - own) * per_frame
        else:
            self._real = self.length = min(n, int(num_frames * sample_rate // fps))
        self._moments = (
            waveform_moments(waveform)
            if normalize
            else (torch.zeros((), dtype=torch.float64), torch.ones((), dtype=torch.float64))
        )
        self._normalize = normalize
        field, stride = conv_geometry(model)
        if self.length < field:
            raise AudioError(
                f"the audio is too short for Hallo's wav2vec2 path: {self.length} samples "
                f"({num_frames} frames) after padding, the model needs at least {field}"
            )
        self.steps = (self.length - field) // stride + 1
        with torch.inference_mode():
            self._conv_moments = first_conv_moments(model, self.samples, self.length)
        self._blocks: dict[int, torch.Tensor] = {}

    @property
    def feature_dim(self) -> int:
        """Size ``d`` of one feature vector."""
        return int(self.model.config.hidden_size)

    def samples(self, start: int, stop: int) -> torch.Tensor:
        """Samples ``[start, stop)`` of the normalised, padded track: ``(stop - start,)`` float32."""
        real = self.waveform[min(start, self._real) : min(stop, self._real)]
        x = normalise(real, self._moments) if self._normalize else real.to(torch.float32)
        if x.shape[0] < stop - start:
            x = torch.cat([x, x.new_zeros(stop - start - x.shape[0])])
        return x

    def projected(self, start: int, stop: int) -> torch.Tensor:
        """Frames ``[start, stop)`` before the transformer: ``(1, stop - start, d)``.

        The convolutional features interpolated to the frames (``align_corners``), then
        ``model.feature_projection``.
        """
        i0, i1, weight = interpolation_weights(self.steps, self.num_frames, start, stop)
        first, last = int(i0[0]), int(i1[-1]) + 1
        conv = conv_features(self.model, self.samples, first, last, self._conv_moments)
        i0, i1, weight = (t.to(conv.device) for t in (i0 - first, i1 - first, weight))
        frames = interpolate(conv, i0, i1, weight).T  # (t, c)
        parameter = next(self.model.parameters())
        hidden, _ = self.model.feature_projection(
            frames[None].to(device=parameter.device, dtype=parameter.dtype)
        )
        out: torch.Tensor = hidden
        return out

    def _span(self, block: int) -> tuple[int, int, int, int]:
        """``(start, stop, lo, hi)``: a block's frames and the frames its transformer sees."""
        start = block * self.block_frames
        stop = min(self.num_frames, start + self.block_frames)
        width = self.block_frames + 2 * self.context_frames
        lo = max(0, min(start - self.context_frames, self.num_frames - width))
        hi = min(self.num_frames, max(lo + width, stop))
        return start, stop, lo, hi

    def _block(self, block: int) -> torch.Tensor:
        cached = self._blocks.get(block)
        if cached is not None:
            return cached
        start, stop, lo, hi = self._span(block)
        with torch.inference_mode():
            states = encoder_hidden_states(self.model, self.projected(lo, hi), self.layers)
        features = states[start - lo : stop - lo].float()
        if len(self._blocks) >= _KEPT_BLOCKS:
            self._blocks.pop(next(iter(self._blocks)))
        self._blocks[block] = features
        return features

    def __call__(self, start: int, stop: int) -> torch.Tensor:
        """Same as :meth:`features` (a feature source for
        :class:`~emo.pipelines.hallo_sampler.LazyAudioWindows`)."""
        return self.features(start, stop)

    def features(self, start: int, stop: int) -> torch.Tensor:
        """Frames ``[start, stop)``: ``(stop - start, layers, d)`` float32 on the model's device.

        Raises
        ------
        InputError
            If the range is not inside ``[0, num_frames]`` or is empty.
        """
        if not 0 <= start < stop <= self.num_frames:
            raise InputError(
                f"frames [{start}, {stop}) are not a range of the {self.num_frames} frames"
            )
        first, last = start // self.block_frames, (stop - 1) // self.block_frames
        parts = []
        for block in range(first, last + 1):
            b0 = block * self.block_frames
            parts.append(
                self._block(block)[max(start, b0) - b0 : min(stop, b0 + self.block_frames) - b0]
            )
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def all(self) -> torch.Tensor:
        """Every frame, ``(num_frames, layers, d)`` float32 (memory grows with the track)."""
        parameter = next(self.model.parameters())
        out = torch.empty(
            self.num_frames, len(self.layers), self.feature_dim, device=parameter.device
        )
        for block in range(0, -(-self.num_frames // self.block_frames)):
            start, stop, _, _ = self._span(block)
            out[start:stop] = self._block(block)
        self._blocks.clear()
        return out
