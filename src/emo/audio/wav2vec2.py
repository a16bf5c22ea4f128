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

__all__ = ["Wav2Vec2Encoder", "select_layers"]


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
        Zero-mean unit-variance normalisation of each chunk, as
        ``Wav2Vec2FeatureExtractor`` does. ``None``: the folder's
        ``preprocessor_config.json`` ``do_normalize`` if present, else true for
        models with ``feat_extract_norm="layer"`` (the fairseq convention).

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
    ) -> None:
        from transformers import Wav2Vec2Config, Wav2Vec2Model

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
        self.layer_indices = select_layers(
            layers, hf_config.num_hidden_layers + 1, "Wav2Vec2Encoder"
        )
        pre = load_json(folder / "preprocessor_config.json")
        self.sample_rate = int((pre or {}).get("sampling_rate", 16000))
        if normalize is None:
            normalize = (
                bool(pre["do_normalize"])
                if pre and "do_normalize" in pre
                else (hf_config.feat_extract_norm == "layer")
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
