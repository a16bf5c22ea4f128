"""Hallo's audio path (``Wav2Vec2Encoder(mode="hallo")``): golden tensors, blocks, persistence.

The golden set (``tests/fixtures/hallo_golden``) holds what Hallo's own code computed
from ``inputs/driving_audio.wav`` with the tiny wav2vec2 in its ``pretrained_models``.
Tolerances: the waveform, its normalisation and the interpolation weights are
reproduced bit for bit; the convolutions and the transformer are float noise apart
(stock transformers modules on this machine: 4.0e-6 from the golden features, whose
largest value is 4.94; the golden README measured 9.5e-7 on its machine), so the
features are compared at 2e-5 and every other float tensor at 5e-6. The mistakes
an implementation could make (interpolating after the transformer, keeping hidden
state 0, normalising per block, windows clamped per clip) move them by more than 1e-2.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import emo.plugins
from emo.audio import Wav2Vec2Encoder, load_audio
from emo.audio.hallo_features import (
    conv_features,
    encoder_hidden_states,
    first_conv_moments,
    hallo_frame_count,
    interpolate,
    interpolation_weights,
)
from emo.errors import AudioError, ConfigError, InputError
from emo.models.audio_projection import audio_context_window
from emo.pipelines.hallo_sampler import LazyAudioWindows

pytestmark = pytest.mark.usefixtures("one_thread")

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "hallo_golden"
WAV2VEC = GOLDEN / "pretrained_models" / "wav2vec" / "wav2vec2-base-960h"
SR, FPS, CLIP = 16000, 25, 4
FEATURES_ATOL = 2e-5
FLOAT_ATOL = 5e-6


@pytest.fixture(scope="module")
def golden() -> dict[str, torch.Tensor]:
    return load_file(GOLDEN / "inputs" / "audio.safetensors")


@pytest.fixture(scope="module")
def golden_encoder() -> Wav2Vec2Encoder:
    return Wav2Vec2Encoder(str(WAV2VEC), mode="hallo", chunk_seconds=None)


def _padded_frames(samples: int) -> int:
    return math.ceil(hallo_frame_count(samples, SR, FPS) / CLIP) * CLIP


def test_golden_audio_path(
    golden: dict[str, torch.Tensor], golden_encoder: Wav2Vec2Encoder
) -> None:
    waveform = load_audio(GOLDEN / "inputs" / "driving_audio.wav", sample_rate=SR)
    torch.testing.assert_close(waveform, golden["waveform"], atol=0, rtol=0)
    frames = _padded_frames(waveform.numel())
    assert (hallo_frame_count(waveform.numel(), SR, FPS), frames) == (7, 8)
    seq = golden_encoder.feature_blocks(waveform, SR, num_frames=frames, fps=FPS)
    torch.testing.assert_close(seq.samples(0, seq.length), golden["input_values"], atol=0, rtol=0)

    model = golden_encoder.model
    steps = golden["cnn_features"].shape[1]
    with torch.inference_mode():
        moments = first_conv_moments(model, seq.samples, seq.length)
        cnn = conv_features(model, seq.samples, 0, steps, moments)
    assert seq.steps == steps
    torch.testing.assert_close(cnn, golden["cnn_features"], atol=FLOAT_ATOL, rtol=0)
    # The interpolation is exact: from Hallo's own CNN features it gives Hallo's bits.
    exact = interpolate(golden["cnn_features"], *interpolation_weights(steps, frames, 0, frames))
    torch.testing.assert_close(exact.T, golden["cnn_features_interp"], atol=0, rtol=0)
    ours = interpolate(cnn, *interpolation_weights(steps, frames, 0, frames))
    torch.testing.assert_close(ours.T, golden["cnn_features_interp"], atol=FLOAT_ATOL, rtol=0)
    with torch.inference_mode():
        projected = seq.projected(0, frames)
        hidden = model.feature_projection(golden["cnn_features_interp"][None])[0]
        from_golden_interp = encoder_hidden_states(model, hidden, tuple(range(1, 13)))
    assert projected.shape == (1, frames, 32)
    torch.testing.assert_close(from_golden_interp, golden["features"], atol=FLOAT_ATOL, rtol=0)

    features = golden_encoder.encode(waveform, SR, num_frames=frames, fps=FPS)
    assert features.shape == golden["features"].shape == (8, 12, 32)
    torch.testing.assert_close(features, golden["features"], atol=FEATURES_ATOL, rtol=0)

    # The 5-frame windows, clamped at the ends of the whole padded sequence (they
    # cross the clip boundary): emo's audio_context_window, and the pipeline's lazy
    # windows fed by the block source.
    windows = audio_context_window(features[None], 2)[0]
    lazy = LazyAudioWindows(seq, frames, 2)
    for k in range(frames // CLIP):
        want = golden[f"clip{k}.windows"][0]
        clip = windows[k * CLIP : (k + 1) * CLIP]
        torch.testing.assert_close(clip, want, atol=FEATURES_ATOL, rtol=0)
        torch.testing.assert_close(lazy.windows(k * CLIP, (k + 1) * CLIP), clip, atol=0, rtol=0)
    per_clip = audio_context_window(features[None, CLIP:], 2)[0]  # clamped per clip: wrong
    assert float((per_clip[:2] - golden["clip1.windows"][0, :2]).abs().max()) > 1e-2


def test_golden_mistakes_are_visible(
    golden: dict[str, torch.Tensor], golden_encoder: Wav2Vec2Encoder
) -> None:
    """The tolerance separates Hallo's path from its near misses."""
    waveform = golden["waveform"]
    frames = _padded_frames(waveform.numel())
    emo_mode = Wav2Vec2Encoder(str(WAV2VEC), layers=tuple(range(1, 13)), chunk_seconds=None)
    assert emo_mode.mode == "emo"
    emo_features = emo_mode.encode(waveform, SR, num_frames=frames, fps=FPS)
    assert float((emo_features - golden["features"]).abs().max()) > 1e-2
    state0 = Wav2Vec2Encoder(str(WAV2VEC), mode="hallo", layers=tuple(range(12)))
    shifted = state0.encode(waveform, SR, num_frames=frames, fps=FPS)
    assert float((shifted - golden["features"]).abs().max()) > 1e-2
    unpadded = golden_encoder.encode(waveform, SR, num_frames=7, fps=FPS)
    assert float((unpadded - golden["features"][:7]).abs().max()) > 1e-2


def test_interpolation_is_torchs(golden: dict[str, torch.Tensor]) -> None:
    g = torch.Generator().manual_seed(0)
    for steps, frames in ((15, 8), (1, 5), (2, 1), (100, 48), (37, 300), (5001, 2501)):
        x = torch.randn(3, steps, generator=g)
        ref = F.interpolate(x[None], size=frames, mode="linear", align_corners=True)[0]
        torch.testing.assert_close(
            interpolate(x, *interpolation_weights(steps, frames, 0, frames)), ref, atol=0, rtol=0
        )
        a, b = frames // 3, max(frames // 3 + 1, 2 * frames // 3)  # any range of frames
        i0, i1, w = interpolation_weights(steps, frames, a, b)
        torch.testing.assert_close(interpolate(x, i0, i1, w), ref[:, a:b], atol=0, rtol=0)


def test_hallo_frame_count_is_hallos_float_expression() -> None:
    assert hallo_frame_count(4400, SR, FPS) == 7
    assert hallo_frame_count(640 * 7, SR, FPS) == 8  # 7.000000000000001 in floats
    assert hallo_frame_count(640 * 6, SR, FPS) == 6
    assert hallo_frame_count(1, SR, FPS) == 1


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_encoder_loop_is_the_models(
    norm: str, wav2vec2_dir: Path, wav2vec2_layer_dir: Path
) -> None:
    """Hidden states as transformers 4.x (Hallo's pin) lays them out; the last one of a
    stable-layer-norm model is layer-normalised (transformers 5 keeps it raw)."""
    encoder = Wav2Vec2Encoder(str(wav2vec2_dir if norm == "group" else wav2vec2_layer_dir))
    model = encoder.model
    x = torch.randn(1, SR, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        out = model(x, output_hidden_states=True)
        hidden = model.feature_projection(model.feature_extractor(x).transpose(1, 2))[0]
        ours = encoder_hidden_states(model, hidden, (0, 1, 2))
    for k in (0, 1):
        torch.testing.assert_close(ours[:, k], out.hidden_states[k][0], atol=1e-6, rtol=0)
    last = out.hidden_states[2][0] if norm == "group" else out.last_hidden_state[0]
    torch.testing.assert_close(ours[:, 2], last, atol=1e-6, rtol=0)


def test_long_convolutions_in_pieces_equal_one_shot(
    wav2vec2_2conv_dir: Path, speechlike: torch.Tensor
) -> None:
    """Group norm over the whole track from accumulated moments; ~20 pieces of 5000 steps."""
    encoder = Wav2Vec2Encoder(str(wav2vec2_2conv_dir), mode="hallo")
    model = encoder.model
    x = (speechlike - speechlike.mean()) / speechlike.std()
    with torch.inference_mode():
        whole = model.feature_extractor(x[None])[0]
        moments = first_conv_moments(model, lambda a, b: x[a:b], x.numel())
        pieces = conv_features(model, lambda a, b: x[a:b], 0, whole.shape[1], moments)
        middle = conv_features(model, lambda a, b: x[a:b], 31234, 47000, moments)
    assert whole.shape[1] > 20 * 5000 // 2
    torch.testing.assert_close(pieces, whole, atol=1e-5, rtol=0)
    torch.testing.assert_close(middle, whole[:, 31234:47000], atol=1e-5, rtol=0)


def test_blocks_with_full_context_equal_one_shot(
    wav2vec2_dir: Path, speechlike: torch.Tensor
) -> None:
    x = speechlike[: SR * 4]
    frames = _padded_frames(x.numel())
    whole = Wav2Vec2Encoder(str(wav2vec2_dir), mode="hallo", chunk_seconds=None)
    tiny_blocks = Wav2Vec2Encoder(
        str(wav2vec2_dir), mode="hallo", chunk_seconds=0.28, context_seconds=8.0
    )
    a = whole.encode(x, SR, num_frames=frames, fps=FPS)
    b = tiny_blocks.encode(x, SR, num_frames=frames, fps=FPS)
    assert a.shape == (100, 2, 32)  # layers 1..L by default in Hallo's mode
    torch.testing.assert_close(b, a, atol=1e-5, rtol=0)
    seq = tiny_blocks.feature_blocks(x, SR, num_frames=frames, fps=FPS)
    for start, stop in ((50, 57), (0, 100), (93, 100), (3, 4), (6, 40)):  # any order
        torch.testing.assert_close(seq(start, stop), a[start:stop], atol=1e-5, rtol=0)
    with pytest.raises(InputError, match="range"):
        seq(90, 101)


def test_blocks_on_a_long_track_are_close(
    wav2vec2_2conv_dir: Path, speechlike: torch.Tensor
) -> None:
    frames = _padded_frames(speechlike.numel())
    whole = Wav2Vec2Encoder(str(wav2vec2_2conv_dir), mode="hallo", chunk_seconds=None)
    blocks = Wav2Vec2Encoder(
        str(wav2vec2_2conv_dir), mode="hallo", chunk_seconds=10.0, context_seconds=4.0
    )
    a = whole.encode(speechlike, SR, num_frames=frames, fps=FPS)
    b = blocks.encode(speechlike, SR, num_frames=frames, fps=FPS)
    assert a.shape == b.shape == (1500, 2, 32)
    err = (a - b).abs() / a.std(dim=(0, 2), keepdim=True)
    assert float(err.max()) < 0.5
    assert float(err.mean()) < 0.02
    lazy = blocks.feature_blocks(speechlike, SR, num_frames=frames, fps=FPS)
    torch.testing.assert_close(lazy(740, 780), b[740:780], atol=0, rtol=0)


def test_padding_and_cutting(wav2vec2_dir: Path, speechlike: torch.Tensor) -> None:
    encoder = Wav2Vec2Encoder(str(wav2vec2_dir), mode="hallo")
    x = speechlike[:4400] + 0.25
    seq = encoder.feature_blocks(x, SR, num_frames=16, fps=FPS)
    assert seq.length == 4400 + (16 - 7) * 640
    padded = seq.samples(0, seq.length)
    assert float(padded[:4400].mean()) == pytest.approx(0.0, abs=1e-6)
    assert float(padded[:4400].std(unbiased=False)) == pytest.approx(1.0, abs=1e-3)
    assert not padded[4400:].any()  # zeros after normalisation, not the mean
    cut = encoder.feature_blocks(x, SR, num_frames=5, fps=FPS)
    assert cut.length == 3200
    torch.testing.assert_close(cut.samples(0, 3200), padded[:3200], atol=0, rtol=0)
    assert encoder.encode(x, SR, num_frames=5, fps=FPS).shape == (5, 2, 32)


def test_mode_is_saved_with_the_encoder(wav2vec2_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(wav2vec2_dir, source)
    encoder = Wav2Vec2Encoder(str(source), mode="hallo", chunk_seconds=1.0, context_seconds=0.5)
    assert encoder.config["mode"] == "hallo" and encoder.layer_indices == (1, 2)
    x = torch.randn(SR * 3, generator=torch.Generator().manual_seed(1)) * 0.1
    before = encoder.encode(x, SR, num_frames=76, fps=FPS)
    saved = encoder.save_pretrained(tmp_path / "saved")
    shutil.rmtree(source)
    loaded = emo.plugins.create("audio_encoder", Wav2Vec2Encoder.from_pretrained(saved))
    assert isinstance(loaded, Wav2Vec2Encoder) and loaded.mode == "hallo"
    torch.testing.assert_close(loaded.encode(x, SR, num_frames=76, fps=FPS), before, atol=0, rtol=0)


def test_bad_input_in_hallos_mode(wav2vec2_dir: Path) -> None:
    with pytest.raises(ConfigError, match="mode"):
        Wav2Vec2Encoder(str(wav2vec2_dir), mode="hallo2")
    with pytest.raises(ConfigError, match="mode='hallo'"):
        Wav2Vec2Encoder(str(wav2vec2_dir)).feature_blocks(
            torch.zeros(SR), SR, num_frames=25, fps=FPS
        )
    encoder = Wav2Vec2Encoder(str(wav2vec2_dir), mode="hallo")
    with pytest.raises(AudioError, match="empty"):
        encoder.encode(torch.zeros(0), SR, num_frames=1, fps=FPS)
    with pytest.raises(AudioError, match="NaN"):
        encoder.encode(torch.tensor([0.0, float("nan")] * 400), SR, num_frames=2, fps=FPS)
    with pytest.raises(AudioError, match="too short"):
        encoder.encode(torch.zeros(100), SR, num_frames=1, fps=FPS)
    with pytest.raises(InputError, match="num_frames"):
        encoder.encode(torch.zeros(SR), SR, num_frames=0, fps=FPS)
    silent = encoder.encode(torch.zeros(SR), SR, num_frames=25, fps=FPS)
    assert bool(torch.isfinite(silent).all())
    resampled = encoder.encode(torch.zeros(8000), 8000, num_frames=25, fps=FPS)
    torch.testing.assert_close(resampled, silent)


def test_other_dtypes(golden: dict[str, torch.Tensor]) -> None:
    encoder = Wav2Vec2Encoder(str(WAV2VEC), mode="hallo")
    waveform = golden["waveform"]
    wide = encoder.to(dtype=torch.float64).encode(waveform, SR, num_frames=8, fps=FPS)
    assert wide.dtype == torch.float32
    torch.testing.assert_close(wide, golden["features"], atol=FEATURES_ATOL, rtol=0)
    narrow = encoder.to(dtype=torch.bfloat16).encode(waveform, SR, num_frames=8, fps=FPS)
    assert narrow.dtype == torch.float32
    assert float((narrow - golden["features"]).abs().max()) < 0.25
