"""The pieces of Hallo's wav2vec2 audio path, each computable on a stretch of a long track.

Hallo (``hallo/datasets/audio_processor.py``, ``hallo/models/wav2vec.py``) turns a
16 kHz track into per-frame features with a transformers ``Wav2Vec2Model``:

1. the whole waveform is normalised, ``(x - mean) / sqrt(var + 1e-7)``
   (``Wav2Vec2FeatureExtractor``, mean and variance of the *whole* track);
2. the normalised waveform is zero-padded at the end so that its
   ``seq_len = ceil(n / 16000 * 25)`` frames become whole clips
   (``(f - seq_len % f) * 640`` samples);
3. the convolutional feature encoder (~50 Hz) runs on the padded waveform and its
   features are linearly interpolated (``align_corners=True``) to ``seq_len`` frames,
   *before* the feature projection and the transformer;
4. the transformer runs on the 25 fps sequence; the outputs of layers ``1..L``
   (``hidden_states[1:]``) are kept.

The functions here compute each step on a part of the track, so that
:class:`emo.audio.hallo_sequence.HalloAudioSequence` can run the whole path block by
block: the whole-track statistics (the waveform's mean and variance, and the
per-channel statistics of wav2vec2-base's group-normalised first convolution) are
accumulated in one pass over the track, after which every convolutional feature is
a local function of the audio and equals the one-shot value up to float rounding.
Only the transformer (global attention, a positional convolution of 128 frames) makes
a block depend on what lies outside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from emo.errors import AudioError, CheckpointError

__all__ = [
    "CONV_BLOCK_STEPS",
    "NORMALISE_EPS",
    "Moments",
    "conv_features",
    "conv_geometry",
    "encoder_hidden_states",
    "first_conv_moments",
    "hallo_frame_count",
    "interpolate",
    "interpolation_weights",
    "normalise",
    "waveform_moments",
]

#: ``Wav2Vec2FeatureExtractor``'s variance epsilon.
NORMALISE_EPS = 1e-7
#: Convolutional feature steps computed per call (1000: 20 s of audio; at wav2vec2-base
#: size the 512-channel first layer's output is then 131 MB, the largest tensor).
CONV_BLOCK_STEPS = 1000
#: Samples per block when accumulating the waveform's moments.
_MOMENT_BLOCK = 1 << 20

#: ``(mean, variance)``: float64 scalars, or per-channel ``(c,)`` float64 tensors.
Moments = tuple[torch.Tensor, torch.Tensor]


def hallo_frame_count(num_samples: int, sample_rate: int, fps: float) -> int:
    """Hallo's ``seq_len = ceil(n / rate * fps)``, in Hallo's float arithmetic.

    The float expression rounds a few exact frame counts up by one (e.g. 4480 samples
    at 16 kHz and 25 fps: 7.000000000000001 -> 8 frames); Hallo does, so this does too.
    """
    return math.ceil(num_samples / sample_rate * fps)


def _merge(
    count: int, mean: torch.Tensor, m2: torch.Tensor, block: torch.Tensor
) -> tuple[int, torch.Tensor, torch.Tensor]:
    """Chan's update of float64 ``(count, mean, sum of squared deviations)`` with ``block (..., t)``.

    Within the block torch's (cascaded) float32 sums are used, as torch's own GroupNorm
    does; blocks are merged in float64.
    """
    n = block.shape[-1]
    block_mean = block.mean(dim=-1)
    deviation = block - block_mean[..., None]
    block_m2 = deviation.square_().sum(dim=-1).to(device="cpu", dtype=torch.float64)
    total = count + n
    delta = block_mean.to(device="cpu", dtype=torch.float64) - mean
    mean = mean + delta * (n / total)
    m2 = m2 + block_m2 + delta**2 * (count * n / total)
    return total, mean, m2


def waveform_moments(waveform: torch.Tensor) -> Moments:
    """Mean and (biased) variance of a whole track, accumulated block by block in float64.

    Parameters
    ----------
    waveform
        ``(n,)`` samples, ``n >= 1``.

    Returns
    -------
    Moments
        Two float64 scalars; only one block of ``waveform`` is converted at a time.
    """
    count = 0
    mean = torch.zeros((), dtype=torch.float64)
    m2 = torch.zeros((), dtype=torch.float64)
    for start in range(0, waveform.shape[0], _MOMENT_BLOCK):
        block = waveform[start : start + _MOMENT_BLOCK].to(device="cpu", dtype=torch.float32)
        count, mean, m2 = _merge(count, mean, m2, block)
    return mean, m2 / max(count, 1)


def normalise(samples: torch.Tensor, moments: Moments) -> torch.Tensor:
    """``(x - mean) / sqrt(var + 1e-7)`` in float32, with the whole track's ``moments``.

    Parameters
    ----------
    samples
        ``(s,)`` part of the track.
    moments
        :func:`waveform_moments` of the whole track.

    Returns
    -------
    torch.Tensor
        ``(s,)`` float32.
    """
    mean, var = moments
    scale = torch.sqrt(var + NORMALISE_EPS).to(torch.float32)
    return (samples.to(torch.float32) - mean.to(torch.float32)) / scale


def _conv_layers(model: Any) -> list[Any]:
    layers = list(getattr(getattr(model, "feature_extractor", None), "conv_layers", []))
    if not layers:
        raise CheckpointError(
            f"{type(model).__name__} has no feature_extractor.conv_layers; Hallo's audio path "
            "needs a transformers Wav2Vec2Model"
        )
    return layers


def conv_geometry(model: Any) -> tuple[int, int]:
    """``(receptive_field, stride)`` in samples of the model's convolutional feature encoder.

    Feature step ``t`` is computed from samples ``[t * stride, t * stride + receptive_field)``.
    """
    field, jump = 1, 1
    for layer in _conv_layers(model):
        field += (int(layer.conv.kernel_size[0]) - 1) * jump
        jump *= int(layer.conv.stride[0])
    return field, jump


def _group_norm_of(layer: Any) -> torch.nn.GroupNorm | None:
    norm = getattr(layer, "layer_norm", None)
    if not isinstance(norm, torch.nn.GroupNorm):
        return None
    if norm.num_groups != norm.num_channels:
        raise CheckpointError(
            "Hallo's audio path supports the per-channel GroupNorm of wav2vec2's 'group' "
            f"feature encoder only, got GroupNorm({norm.num_groups}, {norm.num_channels})"
        )
    return norm


def first_conv_moments(
    model: Any, samples: Callable[[int, int], torch.Tensor], length: int
) -> Moments | None:
    """Per-channel mean and variance of the first convolution's output over a whole track.

    wav2vec2 models with ``feat_extract_norm="group"`` (wav2vec2-base, Hallo's model)
    normalise each channel of the first convolution over the *whole* input; these are
    those statistics, accumulated over blocks of :data:`CONV_BLOCK_STEPS` steps.

    Parameters
    ----------
    model
        A transformers ``Wav2Vec2Model``.
    samples
        ``(a, b) -> (b - a,)``: samples ``[a, b)`` of the (normalised, padded) track.
    length
        Samples in the track.

    Returns
    -------
    Moments or None
        ``(c,)`` float64 mean and biased variance; ``None`` when the first layer has no
        GroupNorm (layer-norm models normalise each step on its own).
    """
    first = _conv_layers(model)[0]
    if _group_norm_of(first) is None:
        return None
    conv = first.conv
    kernel, stride = int(conv.kernel_size[0]), int(conv.stride[0])
    steps = (length - kernel) // stride + 1
    count = 0
    mean = torch.zeros(conv.out_channels, dtype=torch.float64)  # on the CPU: MPS has no float64
    m2 = torch.zeros_like(mean)
    per_piece = CONV_BLOCK_STEPS * 64  # first-layer steps: 20 s at wav2vec2-base's stride 5
    for start in range(0, steps, per_piece):
        stop = min(steps, start + per_piece)
        piece = samples(start * stride, (stop - 1) * stride + kernel)
        y = conv(piece.to(device=conv.weight.device, dtype=conv.weight.dtype)[None, None])[0]
        count, mean, m2 = _merge(count, mean, m2, y.float())
    return mean, m2 / max(count, 1)


def _run_layer(layer: Any, x: torch.Tensor, moments: Moments | None) -> torch.Tensor:
    """One convolutional layer on ``(1, c, t)``; a GroupNorm uses the whole track's ``moments``."""
    x = layer.conv(x)
    norm = getattr(layer, "layer_norm", None)
    group = _group_norm_of(layer)
    if group is not None:
        if moments is None:
            raise AudioError("a group-normalised convolution needs the whole track's moments")
        mean, var = (m.to(device=x.device, dtype=x.dtype)[None, :, None] for m in moments)
        x = (x - mean) / torch.sqrt(var + group.eps)
        if group.affine:
            x = x * group.weight[None, :, None] + group.bias[None, :, None]
    elif isinstance(norm, torch.nn.LayerNorm):
        x = norm(x.transpose(-2, -1)).transpose(-2, -1)
    out: torch.Tensor = layer.activation(x)
    return out


def conv_features(
    model: Any,
    samples: Callable[[int, int], torch.Tensor],
    first: int,
    last: int,
    moments: Moments | None,
) -> torch.Tensor:
    """Convolutional features ``first .. last - 1`` of a track, ``(c, last - first)`` float32.

    Step ``t`` depends on samples ``[t * stride, t * stride + receptive_field)`` only
    (:func:`conv_geometry`), so any range of steps is computed from its own samples, in
    pieces of :data:`CONV_BLOCK_STEPS` steps.

    Parameters
    ----------
    model
        A transformers ``Wav2Vec2Model``.
    samples
        ``(a, b) -> (b - a,)``: samples ``[a, b)`` of the (normalised, padded) track.
    first, last
        The steps wanted.
    moments
        :func:`first_conv_moments` of the whole track (``None`` for layer-norm models).
    """
    layers = _conv_layers(model)
    field, jump = conv_geometry(model)
    weight = layers[0].conv.weight
    pieces = []
    for start in range(first, last, CONV_BLOCK_STEPS):
        stop = min(last, start + CONV_BLOCK_STEPS)
        y = samples(start * jump, (stop - 1) * jump + field)
        y = y.to(device=weight.device, dtype=weight.dtype)[None, None]
        for index, layer in enumerate(layers):
            y = _run_layer(layer, y, moments if index == 0 else None)
        pieces.append(y[0, :, : stop - start].float())
    return torch.cat(pieces, dim=1)


def interpolation_weights(
    steps: int, frames: int, first: int, last: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where frames ``first .. last - 1`` sample ``steps`` features resized to ``frames``.

    The arithmetic of ``F.interpolate(mode="linear", align_corners=True)`` on the CPU,
    in float32: ``x = ((steps - 1) / (frames - 1)) * j``, ``i0 = floor(x)``,
    ``i1 = min(i0 + 1, steps - 1)``, ``w = x - i0``; frame ``j`` is
    ``(1 - w) * feature[i0] + w * feature[i1]``.

    Returns
    -------
    tuple of torch.Tensor
        ``i0`` and ``i1`` ``(last - first,)`` int64, ``w`` ``(last - first,)`` float32.
    """
    ratio = (
        torch.tensor(steps - 1, dtype=torch.float32) / (frames - 1)
        if frames > 1
        else torch.zeros((), dtype=torch.float32)
    )
    position = ratio * torch.arange(first, last, dtype=torch.float32)
    i0 = position.to(torch.int64).clamp(0, steps - 1)
    weight = (position - i0.to(torch.float32)).clamp(0, 1)
    i1 = torch.where(i0 < steps - 1, i0 + 1, i0)
    return i0, i1, weight


def interpolate(
    features: torch.Tensor, i0: torch.Tensor, i1: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """Linear interpolation ``(c, T) -> (c, t)`` at :func:`interpolation_weights`, float32.

    Rounded as torch's CPU kernel rounds it, ``fma(x[i0], 1 - w, x[i1] * w)``: the first
    product is exact in float64, so one float64 sum and one rounding to float32 give the
    same bits (a double-rounding tie aside).
    """
    x = features.float()
    near = x[:, i1] * weight
    out = x[:, i0].double() * (1 - weight).double() + near.double()
    return out.float()


def encoder_hidden_states(
    model: Any, hidden: torch.Tensor, layers: tuple[int, ...]
) -> torch.Tensor:
    """The transformer of a ``Wav2Vec2Model`` on projected features; keep some hidden states.

    Hidden state ``0`` is the transformer's input (after the positional convolution; for
    post-norm models also after the encoder's LayerNorm), state ``k`` the output of layer
    ``k``; with ``do_stable_layer_norm`` the last state is layer-normalised (the layout
    transformers 4.x, Hallo's pin, returns as ``hidden_states``).

    Parameters
    ----------
    model
        A transformers ``Wav2Vec2Model`` in eval mode.
    hidden
        ``(1, t, d)`` output of ``model.feature_projection``.
    layers
        Hidden states to keep.

    Returns
    -------
    torch.Tensor
        ``(t, len(layers), d)`` in the model's dtype.
    """
    encoder = model.encoder
    stable = bool(getattr(model.config, "do_stable_layer_norm", False))
    hidden = hidden + encoder.pos_conv_embed(hidden)
    if not stable:
        hidden = encoder.layer_norm(hidden)
    hidden = encoder.dropout(hidden)
    wanted = set(layers)
    states: dict[int, torch.Tensor] = {0: hidden[0]} if 0 in wanted else {}
    last = len(encoder.layers)
    for index, layer in enumerate(encoder.layers, start=1):
        out = layer(hidden, attention_mask=None)
        hidden = out[0] if isinstance(out, tuple) else out
        if index in wanted:
            states[index] = (encoder.layer_norm(hidden) if stable and index == last else hidden)[0]
    return torch.stack([states[i] for i in layers], dim=1)
