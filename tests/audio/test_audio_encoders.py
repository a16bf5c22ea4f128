"""The audio-encoder plugins: contract, shapes, frame alignment, slicing, chunking, persistence."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import emo.plugins
from emo.audio import (
    AudioEncoder,
    AudioEncoderBase,
    MelSpectrogramEncoder,
    Wav2Vec2Encoder,
    WhisperEncoder,
    frame_to_sample,
    num_video_frames,
)
from emo.errors import AudioError, CheckpointError, ConfigError, InputError

SR = 16000


def _make(name: str, wav2vec2_dir: Path, whisper_dir: Path) -> AudioEncoderBase:
    if name == "mel":
        return MelSpectrogramEncoder(n_mels=40, sub_frames=2)
    if name == "wav2vec2":
        return Wav2Vec2Encoder(str(wav2vec2_dir), chunk_seconds=4.0, context_seconds=1.0)
    return WhisperEncoder(str(whisper_dir), context_seconds=0.4)


@pytest.fixture(scope="module")
def encoders(wav2vec2_dir: Path, whisper_dir: Path) -> dict[str, AudioEncoderBase]:
    return {n: _make(n, wav2vec2_dir, whisper_dir) for n in ("mel", "wav2vec2", "whisper")}


def test_builtins_by_name_class_and_instance(wav2vec2_dir: Path) -> None:
    assert {"mel", "wav2vec2", "whisper"} <= set(emo.plugins.available("audio_encoder"))
    by_name = emo.plugins.create("audio_encoder", "mel")
    by_class = emo.plugins.create("audio_encoder", MelSpectrogramEncoder, n_mels=20)
    assert by_class.feature_dim == 20
    assert emo.plugins.create("audio_encoder", by_name) is by_name
    w2v = emo.plugins.create("audio_encoder", "wav2vec2", model_path=str(wav2vec2_dir))
    assert isinstance(w2v, Wav2Vec2Encoder)
    for enc in (by_name, w2v):
        assert isinstance(enc, AudioEncoder)
        assert isinstance(enc, AudioEncoderBase)
    assert emo.plugins.load("audio_encoder", "whisper") is WhisperEncoder


@pytest.mark.parametrize("name", ["mel", "wav2vec2", "whisper"])
@pytest.mark.parametrize("fps", [25, 30])
@pytest.mark.parametrize("samples", [1, 333, 534, 16000, 16001, 40123])
def test_shapes_and_frame_counts(
    encoders: dict[str, AudioEncoderBase], name: str, fps: int, samples: int
) -> None:
    enc = encoders[name]
    x = torch.randn(samples, generator=torch.Generator().manual_seed(samples)) * 0.1
    frames = num_video_frames(samples, SR, fps)
    out = enc.encode(x, SR, num_frames=frames, fps=fps)
    assert out.shape == (frames, enc.num_layers, enc.feature_dim)
    assert out.dtype == torch.float32 and bool(torch.isfinite(out).all())


def test_layer_counts(encoders: dict[str, AudioEncoderBase], wav2vec2_dir: Path) -> None:
    assert encoders["mel"].num_layers == 2 and encoders["mel"].feature_dim == 40
    assert encoders["wav2vec2"].num_layers == 3 and encoders["wav2vec2"].feature_dim == 32
    assert encoders["whisper"].num_layers == 3
    picked = Wav2Vec2Encoder(str(wav2vec2_dir), layers=(-1, 0))
    assert picked.layer_indices == (2, 0) and picked.num_layers == 2
    x = torch.randn(8000) * 0.1
    full = Wav2Vec2Encoder(str(wav2vec2_dir)).encode(x, SR, num_frames=13, fps=25)
    part = picked.encode(x, SR, num_frames=13, fps=25)
    assert torch.allclose(part[:, 0], full[:, 2], atol=1e-5)
    assert torch.allclose(part[:, 1], full[:, 0], atol=1e-5)


def test_mel_frame_alignment_follows_i_over_fps() -> None:
    enc = MelSpectrogramEncoder(n_mels=40, n_fft=256)
    for fps in (25, 30):
        x = torch.zeros(SR * 2)
        burst_frame = 37
        start = frame_to_sample(burst_frame, SR, fps)
        x[start - 40 : start + 40] = torch.sin(torch.arange(80) * 0.8)
        feats = enc.encode(x, SR, num_frames=num_video_frames(x.numel(), SR, fps), fps=fps)
        energy = feats[:, 0].exp().sum(-1)
        assert int(energy.argmax()) == burst_frame
    # The last frame hears the last audio.
    x = torch.zeros(16001)
    x[-60:] = 0.5 * torch.sin(torch.arange(60) * 0.8)
    feats = enc.encode(x, SR, num_frames=num_video_frames(16001, SR, 25), fps=25)
    assert feats.shape[0] == 26 and int(feats[:, 0].exp().sum(-1).argmax()) == 25


@pytest.mark.parametrize(("fps", "a", "b"), [(25, 113, 371), (30, 99, 402), (25, 0, 40)])
def test_mel_is_exact_under_slicing(speechlike: torch.Tensor, fps: int, a: int, b: int) -> None:
    enc = MelSpectrogramEncoder()
    x = speechlike[: SR * 20]
    whole = enc.encode(x, SR, num_frames=num_video_frames(x.numel(), SR, fps), fps=fps)
    s0, s1 = frame_to_sample(a, SR, fps), frame_to_sample(b, SR, fps)
    assert s0 * fps == a * SR  # the slice starts exactly on frame a
    part = enc.encode(x[s0:s1], SR, num_frames=b - a, fps=fps)
    edge = math.ceil(enc.n_fft / 2 * fps / SR)
    lo = edge if a > 0 else 0
    torch.testing.assert_close(part[lo:-edge], whole[a + lo : b - edge], atol=1e-5, rtol=0)


def test_wav2vec2_close_under_slicing(wav2vec2_dir: Path, speechlike: torch.Tensor) -> None:
    enc = Wav2Vec2Encoder(str(wav2vec2_dir), chunk_seconds=None)
    x = speechlike[: SR * 12]
    fps = 25
    whole = enc.encode(x, SR, num_frames=num_video_frames(x.numel(), SR, fps), fps=fps)
    a, b = 100, 200  # 4 s .. 8 s: slice plus 4 s either side is the whole context
    pad = 50  # the pipeline encodes a slice with 2 s of context each side, keeps the inside
    s0, s1 = frame_to_sample(a - pad, SR, fps), frame_to_sample(b + pad, SR, fps)
    part = enc.encode(x[s0:s1], SR, num_frames=b - a + 2 * pad, fps=fps)[pad:-pad]
    err = (part - whole[a:b]).abs()
    assert float(err.max()) < 0.15 * float(whole.std())
    assert float(err.mean()) < 0.02 * float(whole.std())


def test_wav2vec2_chunked_equals_one_shot_on_60s(
    wav2vec2_dir: Path, wav2vec2_layer_dir: Path, speechlike: torch.Tensor
) -> None:
    frames = num_video_frames(speechlike.numel(), SR, 25)
    for folder, exact_layer0 in ((wav2vec2_dir, False), (wav2vec2_layer_dir, True)):
        # Per-chunk waveform normalisation would add its own (small) chunk dependence.
        kw = {"normalize": False}
        chunked = Wav2Vec2Encoder(str(folder), chunk_seconds=10.0, context_seconds=2.0, **kw)
        one_shot = Wav2Vec2Encoder(str(folder), chunk_seconds=None, **kw)
        a = chunked.encode(speechlike, SR, num_frames=frames, fps=25)
        b = one_shot.encode(speechlike, SR, num_frames=frames, fps=25)
        assert a.shape == b.shape == (1500, 3, 32)
        err = (a - b).abs()
        assert float(err.max()) < 0.1 * float(b.std())
        assert float(err.mean()) < 0.01 * float(b.std())
        if exact_layer0:  # convolutions + positional conv only: local, so exact
            torch.testing.assert_close(a[:, 0], b[:, 0], atol=2e-4, rtol=0)


def test_whisper_stitches_windows_exactly(whisper_dir: Path, speechlike: torch.Tensor) -> None:
    # 2 s window = 100 features; 0.4 s context = 20 features each side; 60 kept per window.
    enc = WhisperEncoder(str(whisper_dir), context_seconds=0.4)
    x = speechlike[: SR * 5]
    out = enc.encode(x, SR, num_frames=125, fps=25)  # frame i <-> feature 2 i
    assert out.shape == (125, 3, 32)
    with torch.inference_mode():
        window = enc._run(x[40 * 320 : 139 * 320 + 1])  # features 40..139 (second window)
    frames = torch.arange(30, 60)  # features 60..118: kept by the second window
    torch.testing.assert_close(out[frames], window[2 * frames - 40], atol=1e-5, rtol=0)
    with torch.inference_mode():
        first = enc._run(x[: 79 * 320 + 1])
    torch.testing.assert_close(out[:30], first[0:60:2], atol=1e-5, rtol=0)


def test_whisper_front_end_matches_the_feature_extractor(
    whisper_dir: Path, tmp_path: Path, speechlike: torch.Tensor
) -> None:
    from transformers import WhisperFeatureExtractor

    own = WhisperEncoder(str(whisper_dir), context_seconds=0.4)
    extractor = WhisperFeatureExtractor(feature_size=80, chunk_length=2)
    chunk = speechlike[:25000]
    ref = extractor(chunk.numpy(), sampling_rate=SR, return_tensors="np").input_features[0]
    torch.testing.assert_close(own.log_mel(chunk), torch.from_numpy(ref), atol=1e-4, rtol=0)
    folder = tmp_path / "with_fe"
    shutil.copytree(whisper_dir, folder)
    extractor.save_pretrained(folder)
    with_fe = WhisperEncoder(str(folder), context_seconds=0.4)
    assert with_fe._extractor is not None
    x = speechlike[: SR * 5]
    torch.testing.assert_close(
        with_fe.encode(x, SR, num_frames=125, fps=25),
        own.encode(x, SR, num_frames=125, fps=25),
        atol=1e-4,
        rtol=0,
    )
    WhisperFeatureExtractor(feature_size=80, chunk_length=3).save_pretrained(folder)
    with pytest.raises(ConfigError, match="window"):
        WhisperEncoder(str(folder))


@pytest.mark.parametrize("name", ["mel", "wav2vec2", "whisper"])
def test_save_and_load_round_trip(
    name: str, wav2vec2_dir: Path, whisper_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    shutil.copytree(wav2vec2_dir if name == "wav2vec2" else whisper_dir, source)
    enc = _make(name, source, source)
    x = torch.randn(SR * 3, generator=torch.Generator().manual_seed(1)) * 0.1
    before = enc.encode(x, SR, num_frames=75, fps=25)
    saved = enc.save_pretrained(tmp_path / "saved")
    shutil.rmtree(source)  # the saved folder must stand on its own
    loaded = type(enc).from_pretrained(saved)
    assert loaded.config.public() == {**enc.config.public(), **(
        {"model_path": str(saved / "model")} if name != "mel" else {})}  # fmt: skip
    torch.testing.assert_close(loaded.encode(x, SR, num_frames=75, fps=25), before)
    assert emo.plugins.create("audio_encoder", loaded) is loaded


def test_resamples_input_and_moves(encoders: dict[str, AudioEncoderBase]) -> None:
    enc = encoders["wav2vec2"]
    x8k = torch.randn(8000, generator=torch.Generator().manual_seed(2)) * 0.1
    from emo.audio import resample

    direct = enc.encode(resample(x8k, 8000, SR), SR, num_frames=25, fps=25)
    torch.testing.assert_close(enc.encode(x8k, 8000, num_frames=25, fps=25), direct)
    assert enc.to("cpu", torch.float64) is enc and enc.device.type == "cpu"
    assert enc.encode(x8k.numpy(), 8000, num_frames=25, fps=25).dtype == torch.float32
    enc.to(dtype=torch.float32)
    mel = encoders["mel"]
    assert mel.to("cpu") is mel and mel.device == torch.device("cpu")


def test_bad_encoder_inputs(encoders: dict[str, AudioEncoderBase], tmp_path: Path) -> None:
    enc = encoders["mel"]
    with pytest.raises(AudioError, match="mono"):
        enc.encode(torch.zeros(2, 100), SR, num_frames=1, fps=25)
    with pytest.raises(AudioError, match="empty"):
        enc.encode(torch.zeros(0), SR, num_frames=1, fps=25)
    with pytest.raises(AudioError, match="NaN"):
        enc.encode(torch.tensor([0.0, float("inf")]), SR, num_frames=1, fps=25)
    with pytest.raises(AudioError, match="float"):
        enc.encode(torch.zeros(10, dtype=torch.int16), SR, num_frames=1, fps=25)
    with pytest.raises(InputError, match="num_frames"):
        enc.encode(torch.zeros(100), SR, num_frames=0, fps=25)
    with pytest.raises(InputError, match="fps"):
        enc.encode(torch.zeros(100), SR, num_frames=1, fps=-1)
    with pytest.raises(CheckpointError, match="does not exist"):
        Wav2Vec2Encoder(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="config.json"):
        WhisperEncoder(str(tmp_path / "empty"))
    with pytest.raises(ConfigError):
        MelSpectrogramEncoder(n_mels=0)
    with pytest.raises(ConfigError):
        MelSpectrogramEncoder(f_max=9000.0)


def test_wrong_layers_and_wrong_model(wav2vec2_dir: Path, whisper_dir: Path) -> None:
    with pytest.raises(ConfigError, match="layer 7"):
        Wav2Vec2Encoder(str(wav2vec2_dir), layers=(7,))
    with pytest.raises(CheckpointError):
        WhisperEncoder(str(wav2vec2_dir))


def test_silence_gives_constant_features(encoders: dict[str, AudioEncoderBase]) -> None:
    for enc in encoders.values():
        out = enc.encode(torch.zeros(SR * 3), SR, num_frames=75, fps=25)
        assert bool(torch.isfinite(out).all())
    mel = encoders["mel"].encode(torch.zeros(SR), SR, num_frames=25, fps=25)
    assert float(mel.max()) == pytest.approx(float(np.log(1e-5)))


def test_build_on_meta_device_reads_no_weights(wav2vec2_dir: Path, whisper_dir: Path) -> None:
    with torch.device("meta"):
        w2v = Wav2Vec2Encoder(str(wav2vec2_dir))
        whisper = WhisperEncoder(str(whisper_dir), context_seconds=0.4)
        mel = MelSpectrogramEncoder()
    assert (w2v.num_layers, w2v.feature_dim) == (3, 32)
    assert (whisper.num_layers, whisper.feature_dim) == (3, 32)
    assert mel.encode(torch.zeros(800), SR, num_frames=2, fps=25).shape == (2, 1, 80)


def test_real_speech_example(wav2vec2_dir: Path) -> None:
    path = Path(__file__).resolve().parents[2] / "examples" / "speech.wav"
    if not path.is_file():
        pytest.skip("examples/speech.wav is not in this checkout")
    wave = emo.load_audio(path, sample_rate=SR)
    frames = num_video_frames(wave.numel(), SR, 25)
    mel = MelSpectrogramEncoder().encode(wave, SR, num_frames=frames, fps=25)
    # Louder frames have more mel energy: the features follow the speech envelope.
    idx = torch.tensor([frame_to_sample(i, SR, 25) for i in range(frames)])
    padded = torch.nn.functional.pad(wave, (320, 320))
    rms = torch.stack([padded[i : i + 640].pow(2).mean() for i in idx])
    energy = mel[:, 0].exp().sum(-1)
    corr = torch.corrcoef(torch.stack([rms.log1p() * 1e3, energy.log()]))[0, 1]
    assert float(corr) > 0.5
    w2v = Wav2Vec2Encoder(str(wav2vec2_dir)).encode(wave, SR, num_frames=frames, fps=25)
    assert w2v.shape == (frames, 3, 32)
