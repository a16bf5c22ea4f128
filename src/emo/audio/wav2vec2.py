"""``wav2vec2``: hidden states of a transformers ``Wav2Vec2Model`` from a local folder."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from emo.audio._hf import (
    TransformersEncoderBase,
    check_chunking,
    check_model_folder,
    load_json,
)
from emo.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from emo.audio.hallo_sequence import HalloAudioSequence

__all__ = ["MODES", "Wav2Vec2Encoder", "select_layers"]

#: The encoder's modes: emo's own alignment, or Hallo's audio path.
MODES = ("emo", "hallo")


def select_layers(layers: Sequence[int] | None, available: int, what: str) -> tuple[int, ...]:
    """Normalise layer indices (negative ones count from the end) against ``available``.

    Raises
    ------
    ConfigError
        If an index is out of range or the selection is empty.
    """
    if layers is None:
        return tuple(range(available))
    chosen = []
    for index in layers:
        if (
            isinstance(index, bool)
            or not isinstance(index, int)
            or not -available <= index < available
        ):
            raise ConfigError(
                f"{what}: layer {index!r} does not exist; hidden states are 0..{available - 1} "
                "(0 is the input of the first transformer layer)"
            )
        chosen.append(index % available)
    if not chosen:
        raise ConfigError(f"{what}: layers is empty; pass None for all layers")
    return tuple(chosen)


def _building_on_meta() -> bool:
    """True inside ``with torch.device("meta")`` (a model is built for its shapes only)."""
    return torch.empty(0).device.type == "meta"


class Wav2Vec2Encoder(TransformersEncoderBase):
    """Per-frame features from the hidden states of a wav2vec 2.0 model (any size).

    The waveform (16 kHz) is zero-padded by half the convolutional receptive field
    on the left, so wav2vec2 feature ``t`` (every 20 ms) is centred on audio time
    ``t * 0.02`` s; video frame ``i`` (time ``i / fps``) is the linear interpolation of
    the two nearest features. Long audio is encoded in chunks of ``chunk_seconds``
    that each see ``context_seconds`` more audio on both sides; a chunk's kept
    features then match a one-shot encoding up to the effect of that missing
    far-away context (the transformer attends globally, and group-norm models
    normalise each chunk's convolution features over the chunk).

    Parameters
    ----------
    model_path
        Local folder of a transformers wav2vec2 checkpoint (``Wav2Vec2Model``,
        ``Wav2Vec2ForCTC``, ...): ``config.json`` and weights; nothing is downloaded.
    layers
        Hidden states to return, ``0`` (the transformer's input) to
        ``num_hidden_layers``; negative indices count from the end; ``None`` for all.
    chunk_seconds
        Audio encoded per model call; ``None`` encodes everything at once.
    context_seconds
        Extra audio on each side of a chunk.
    normalize
        Zero-mean unit-variance normalisation of each chunk (``mode="hallo"``: of the
        whole track), as ``Wav2Vec2FeatureExtractor`` does. ``None``: the folder's
        ``preprocessor_config.json`` ``do_normalize`` if present, else true for
        models with ``feat_extract_norm="layer"`` (the fairseq convention) and in
        ``mode="hallo"`` (``Wav2Vec2FeatureExtractor``'s default).
    mode
        ``"emo"``: as above. ``"hallo"``: Hallo's audio path
        (:mod:`emo.audio.hallo_features`): the whole track normalised, zero-padded to the
        ``num_frames`` asked for, the convolutional features interpolated to the video
        frames *before* the transformer; ``layers=None`` keeps ``1..L`` (the outputs of
        the transformer layers, Hallo's choice). The transformer runs on blocks of
        ``chunk_seconds`` of frames that see ``context_seconds`` more on each side
        (:class:`~emo.audio.hallo_sequence.HalloAudioSequence`); ``chunk_seconds=None``
        runs it on the whole track at once, as Hallo does. The mode is part of the
        config, so a saved encoder (and pipeline) keeps it.

    Notes
    -----
    :meth:`save_pretrained` copies the model into ``<folder>/model`` (transformers
    ``save_pretrained``) and stores ``model_path="model"``, so a saved pipeline does not
    depend on the original folder.
    """

    name: ClassVar[str] = "wav2vec2"
    description: ClassVar[str] = "hidden states of a local transformers wav2vec2 model"

    def __init__(
        self,
        model_path: str,
        layers: tuple[int, ...] | None = None,
        chunk_seconds: float | None = 20.0,
        context_seconds: float = 2.0,
        normalize: bool | None = None,
        mode: str = "emo",
    ) -> None:
        from transformers import Wav2Vec2Config, Wav2Vec2Model

        if mode not in MODES:
            raise ConfigError(f"Wav2Vec2Encoder: mode must be one of {MODES}, got {mode!r}")
        folder = check_model_folder(model_path, "wav2vec2")
        model: Any
        try:
            hf_config = Wav2Vec2Config.from_pretrained(os.fspath(folder), local_files_only=True)
            if _building_on_meta():  # shapes only: no weights are read
                model = Wav2Vec2Model(hf_config)
            else:
                model = Wav2Vec2Model.from_pretrained(os.fspath(folder), local_files_only=True)
        except Exception as exc:  # transformers raises RuntimeError, TypeError, SafetensorError...
            raise CheckpointError(
                f"cannot load a wav2vec2 model from {os.fspath(folder)!r}: "
                f"{type(exc).__name__}: {str(exc)[:500]}; is it a transformers wav2vec2 folder "
                "with complete weights?"
            ) from exc
        check_chunking("Wav2Vec2Encoder", chunk_seconds, context_seconds)
        self._folder = folder
        self.model: Any = model
        self.model.to(dtype=torch.float32).eval()
        if layers is None and mode == "hallo":
            layers = tuple(range(1, hf_config.num_hidden_layers + 1))
        self.layer_indices = select_layers(
            layers, hf_config.num_hidden_layers + 1, "Wav2Vec2Encoder"
        )
        self.mode = mode
        pre = load_json(folder / "preprocessor_config.json")
        self.sample_rate = int((pre or {}).get("sampling_rate", 16000))
        if normalize is None:
            normalize = (
                bool(pre["do_normalize"])
                if pre and "do_normalize" in pre
                else (mode == "hallo" or hf_config.feat_extract_norm == "layer")
            )
        self.normalize = normalize
        self.feature_dim = int(hf_config.hidden_size)
        self.num_layers = len(self.layer_indices)
        self.stride = math.prod(hf_config.conv_stride)
        field, jump = 1, 1
        for kernel, stride in zip(hf_config.conv_kernel, hf_config.conv_stride, strict=True):
            field += (kernel - 1) * jump
            jump *= stride
        self.receptive_field = field
        self.chunk_seconds = chunk_seconds
        self.context_seconds = context_seconds

    def _run(self, chunk: torch.Tensor) -> torch.Tensor:
        x = chunk
        if self.normalize:
            x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)
        return self._hidden_states(x)  # (t, l, d)

    def _chunking(self) -> tuple[int | None, int]:
        per_second = self.sample_rate / self.stride
        chunk = (
            None if self.chunk_seconds is None else max(1, round(self.chunk_seconds * per_second))
        )
        return chunk, max(1, math.ceil(self.context_seconds * per_second))

    def encode(
        self, waveform: Any, sample_rate: int, *, num_frames: int, fps: float
    ) -> torch.Tensor:
        """Return ``(f, l, d)`` float32 features on :attr:`device`, frame ``i`` at time ``i / fps``.

        ``mode="emo"``: see :meth:`TransformersEncoderBase.encode
        <emo.audio._hf.TransformersEncoderBase.encode>`. ``mode="hallo"``: Hallo's features
        of the whole track (:meth:`feature_blocks`, every block); ``num_frames`` beyond the
        track's own ``ceil(n / rate * fps)`` frames are Hallo's zero padding.

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
        if self.mode != "hallo":
            return super().encode(waveform, sample_rate, num_frames=num_frames, fps=fps)
        return self.feature_blocks(waveform, sample_rate, num_frames=num_frames, fps=fps).all()

    def feature_blocks(
        self, waveform: Any, sample_rate: int, *, num_frames: int, fps: float
    ) -> HalloAudioSequence:
        """Hallo's features of a whole track, computed block by block when asked for.

        ``seq(start, stop)`` returns frames ``[start, stop)`` as ``(stop - start, l, d)``;
        only the blocks last used are kept, so memory does not grow with the track.
        Frame ``i`` describes about ``i / fps`` seconds (Hallo's interpolation stretches
        the features over the padded track: up to ``0.75 / fps`` late at its end).

        Parameters
        ----------
        waveform
            ``(samples,)`` float mono audio, the whole track.
        sample_rate
            Its rate in Hz (resampled to :attr:`sample_rate` if different).
        num_frames
            ``N``, frames of the whole track (Hallo: its own frame count rounded up to
            whole clips).
        fps
            Video frame rate.

        Raises
        ------
        ConfigError
            If the encoder is not in ``mode="hallo"``.
        AudioError
            On bad audio (empty, not mono, NaN, shorter than one feature step after padding).
        """
        from emo.audio.hallo_sequence import HalloAudioSequence

        if self.mode != "hallo":
            raise ConfigError(
                "Wav2Vec2Encoder.feature_blocks is Hallo's path; build the encoder with "
                "mode='hallo'"
            )
        rate = self.check_frames(num_frames, fps)
        x = self.prepare_waveform(waveform, sample_rate)
        frames_per_second = float(rate)
        block = (
            None
            if self.chunk_seconds is None
            else max(1, round(self.chunk_seconds * frames_per_second))
        )
        return HalloAudioSequence(
            self.model,
            x,
            num_frames=num_frames,
            fps=frames_per_second,
            sample_rate=self.sample_rate,
            layers=self.layer_indices,
            normalize=self.normalize,
            block_frames=block,
            context_frames=math.ceil(self.context_seconds * frames_per_second),
        )
