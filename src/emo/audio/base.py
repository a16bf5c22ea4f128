"""The audio-encoder plugin contract: :class:`AudioEncoder` (protocol) and :class:`AudioEncoderBase`.

An audio encoder turns a mono waveform into one feature vector per video frame (per
"layer"): ``encode(waveform, sample_rate, num_frames=f, fps=r)`` returns ``(f, l, d)``
where frame ``i`` describes audio time ``i / r`` (see :mod:`emo.audio.alignment`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from fractions import Fraction
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from typing_extensions import Self

from emo.audio.alignment import as_fraction, frame_sample_positions
from emo.audio.resampling import resample
from emo.errors import AudioError, InputError
from emo.plugins.base import PluginBase

__all__ = ["AudioEncoder", "AudioEncoderBase"]


@runtime_checkable
class AudioEncoder(Protocol):
    """The minimum an audio encoder must provide (duck typing is enough).

    Attributes
    ----------
    sample_rate
        Rate (Hz) the encoder works at; other rates are resampled by :meth:`encode`.
    feature_dim
        Size ``d`` of one feature vector.
    num_layers
        Number ``l`` of feature vectors per frame (network layers, or sub-frame steps).
    """

    sample_rate: int
    feature_dim: int
    num_layers: int

    def encode(
        self, waveform: torch.Tensor, sample_rate: int, *, num_frames: int, fps: float
    ) -> torch.Tensor:
        """Return ``(f, l, d)`` float32 features, frame ``i`` at audio time ``i / fps``.

        Parameters
        ----------
        waveform
            ``(samples,)`` float32 mono audio.
        sample_rate
            Its rate in Hz.
        num_frames
            Number ``f`` of video frames wanted (normally
            :func:`emo.audio.num_video_frames`).
        fps
            Video frame rate.
        """
        ...


class AudioEncoderBase(PluginBase, ABC):
    """Base class of emo's audio encoders: config, persistence, device handling, input checks.

    Subclasses set ``sample_rate``, ``feature_dim`` and ``num_layers`` in ``__init__``
    and implement :meth:`encode`, usually starting with :meth:`prepare_waveform`.
    Weightless encoders inherit the no-op :meth:`to` and the CPU :attr:`device`.

    Attributes
    ----------
    sample_rate
        Rate (Hz) the encoder works at.
    feature_dim
        Size ``d`` of one feature vector.
    num_layers
        Number ``l`` of feature vectors per frame.
    """

    sample_rate: int
    feature_dim: int
    num_layers: int

    @abstractmethod
    def encode(
        self, waveform: torch.Tensor, sample_rate: int, *, num_frames: int, fps: float
    ) -> torch.Tensor:
        """Return ``(f, l, d)`` float32 features on :attr:`device`, frame ``i`` at time ``i / fps``.

        Parameters
        ----------
        waveform
            ``(samples,)`` float mono audio (a numpy array is accepted too).
        sample_rate
            Its rate in Hz; resampled to :attr:`sample_rate` when different.
        num_frames
            Number ``f`` of video frames wanted.
        fps
            Video frame rate.
        """

    @property
    def device(self) -> torch.device:
        """Where the encoder computes (CPU for weightless encoders)."""
        return torch.device("cpu")

    def to(
        self, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> Self:
        """Move weights to ``device`` / cast them to ``dtype``; a no-op without weights.

        Returns
        -------
        Self
            This encoder.
        """
        return self

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, sample_rate={self.sample_rate}, "
            f"num_layers={self.num_layers}, feature_dim={self.feature_dim})"
        )

    # -- helpers for subclasses --------------------------------------------------------
    def prepare_waveform(self, waveform: Any, sample_rate: int) -> torch.Tensor:
        """Check a waveform and return it as float32 ``(samples,)`` at :attr:`sample_rate`.

        Parameters
        ----------
        waveform
            ``(samples,)`` float tensor or numpy array.
        sample_rate
            Its rate in Hz.

        Raises
        ------
        AudioError
            If it is not 1-D, empty, or holds NaN/inf.
        """
        if isinstance(waveform, np.ndarray):
            if waveform.dtype.kind not in "fiub":
                raise AudioError(
                    f"{type(self).__name__}.encode needs float samples, got a numpy array of "
                    f"dtype {waveform.dtype}"
                )
            waveform = torch.from_numpy(np.ascontiguousarray(waveform))
        if not isinstance(waveform, torch.Tensor):
            raise AudioError(
                f"{type(self).__name__}.encode needs a (samples,) tensor, got "
                f"{type(waveform).__name__}; load files with emo.load_audio"
            )
        if waveform.is_meta:
            raise AudioError(
                f"{type(self).__name__}.encode got a waveform on the meta device (no data)"
            )
        if waveform.dim() != 1:
            raise AudioError(
                f"{type(self).__name__}.encode needs mono (samples,) audio, got shape "
                f"{tuple(waveform.shape)}; load with emo.load_audio to down-mix"
            )
        if waveform.numel() == 0:
            raise AudioError(f"{type(self).__name__}.encode got an empty waveform")
        if not waveform.is_floating_point():
            raise AudioError(
                f"{type(self).__name__}.encode needs float samples in [-1, 1], got "
                f"{waveform.dtype}; load with emo.load_audio"
            )
        if not bool(torch.isfinite(waveform).all()):
            raise AudioError(f"{type(self).__name__}.encode got NaN or infinite samples")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise AudioError(f"sample_rate must be a positive int (Hz), got {sample_rate!r}")
        samples: torch.Tensor = waveform.detach().to(torch.float32)
        if sample_rate != self.sample_rate:
            samples = resample(samples.cpu(), sample_rate, self.sample_rate)
        return samples

    @staticmethod
    def check_frames(num_frames: int, fps: float | Fraction) -> Fraction:
        """Validate ``num_frames`` (int >= 1) and ``fps`` (> 0); return ``fps`` as a fraction.

        Raises
        ------
        InputError
            If either is invalid.
        """
        if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
            raise InputError(f"num_frames must be an int >= 1, got {num_frames!r}")
        return as_fraction(fps)


def encode_on_grid(
    run: Callable[[torch.Tensor], torch.Tensor],
    waveform: torch.Tensor,
    *,
    num_frames: int,
    fps: Fraction,
    sample_rate: int,
    stride: int,
    receptive_field: int,
    pad_left: int,
    chunk_features: int | None,
    context_features: int,
    out: torch.Tensor,
) -> torch.Tensor:
    """Run a strided feature model over long audio in overlapping chunks, then sample per frame.

    The model sees the zero-padded signal ``xp = [zeros(pad_left), waveform, zeros]``;
    its feature ``t`` is computed from ``xp[t * stride : t * stride + receptive_field]``,
    so it is centred at original sample ``t * stride + (receptive_field - 1) / 2 - pad_left``.
    There are ``ceil(samples / stride)`` features. Chunk ``k`` keeps features
    ``[k * c, (k + 1) * c)`` (``c = chunk_features``) and computes them with
    ``context_features`` extra on each side, so kept features see the same audio
    as a one-shot run away from the chunk edges. Video frame ``i`` (sample position
    ``i * sample_rate / fps``) is a linear interpolation of the two nearest features.

    Parameters
    ----------
    run
        ``(s,) -> (t, l, d)``: the model on one chunk of ``xp``; must return exactly
        ``(s - receptive_field) // stride + 1`` features.
    waveform
        ``(samples,)`` at ``sample_rate``.
    num_frames
        Number ``f`` of output frames.
    fps
        Frame rate.
    sample_rate
        Waveform rate.
    stride
        Samples per feature.
    receptive_field
        Samples that make one feature.
    pad_left
        Zeros prepended (virtually) to the waveform.
    chunk_features
        Kept features per chunk, or ``None`` for one shot.
    context_features
        Extra features computed on each side of a chunk.
    out
        ``(f, l, d)`` tensor the result is written into (also returned).

    Returns
    -------
    torch.Tensor
        ``out``.
    """
    from emo.audio._dsp import linear_interpolate, take

    n = waveform.numel()
    total = max(1, math.ceil(n / stride))
    centre0 = (receptive_field - 1) / 2 - pad_left
    positions = frame_sample_positions(num_frames, sample_rate, fps)[:, 0]
    feat_pos = ((positions - centre0) / stride).clamp(0, total - 1)
    lo_index = feat_pos.floor().long()
    step = total if chunk_features is None else max(1, chunk_features)
    for start in range(0, total, step):
        stop = min(start + step, total)
        selected = ((lo_index >= start) & (lo_index < stop)).nonzero().flatten()
        if selected.numel() == 0:
            continue
        first = max(0, start - context_features)
        last = min(total, stop + context_features)  # features [first, last)
        s0 = first * stride - pad_left
        s1 = (last - 1) * stride + receptive_field - pad_left
        chunk = take(waveform, s0, s1)
        feats = run(chunk)
        expected = last - first
        if feats.shape[0] < expected:
            raise RuntimeError(f"feature model returned {feats.shape[0]} < {expected} features")
        feats = feats[:expected]
        local = feat_pos[selected] - first
        out[selected.to(out.device)] = linear_interpolate(feats, local).to(out)
    return out
