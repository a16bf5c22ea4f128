"""emo.load_audio / audio_duration / resample / frame alignment, on real files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

import emo
from emo.audio import (
    StreamingResampler,
    audio_duration,
    frame_to_sample,
    load_audio,
    num_video_frames,
    resample,
)
from emo.errors import AudioError, InputError

SR = 16000


def _reference(make_chirp: Any, seconds: float = 1.5) -> np.ndarray:
    return np.asarray(make_chirp(SR, seconds), dtype=np.float32)


@pytest.mark.parametrize(
    ("kind", "tol"), [("wav", 2e-3), ("mp3", 0.05), ("m4a", 0.05), ("mp4", 0.05), ("opus", 0.05)]
)
def test_formats_load_to_the_same_signal(
    tone_files: dict[str, Path], make_chirp: Any, kind: str, tol: float
) -> None:
    ref = _reference(make_chirp)
    x = load_audio(tone_files[kind], sample_rate=SR)
    assert x.dtype == torch.float32 and x.dim() == 1
    assert abs(x.numel() - ref.size) <= 0.02 * SR  # codecs may pad the end a little
    inner = slice(int(0.1 * SR), int(1.4 * SR))  # same time axis: no shift allowed
    err = np.abs(x.numpy()[inner] - ref[inner]).max()
    assert err < tol, f"{kind}: max error {err}"


def test_wav_is_exactly_ceil_length(tone_files: dict[str, Path]) -> None:
    x = load_audio(tone_files["wav"], sample_rate=SR)
    assert x.numel() == math.ceil(int(1.5 * 44100) * SR / 44100)
    assert emo.load_audio is load_audio


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_sample_formats(tmp_path: Path, make_chirp: Any, subtype: str) -> None:
    signal = make_chirp(22050, 0.5)
    path = tmp_path / "x.wav"
    sf.write(path, signal, 22050, subtype=subtype)
    x = load_audio(path, sample_rate=SR)
    ref = make_chirp(SR, 0.5)
    tol = 0.02 if subtype == "PCM_U8" else 1e-3
    assert np.abs(x.numpy()[400:-400] - ref[400:-400]).max() < tol


def test_flac_ogg_and_multichannel_downmix(tmp_path: Path, make_chirp: Any) -> None:
    signal = make_chirp(SR, 0.5)
    six = np.stack([signal * (k % 2) * 2 for k in range(6)], axis=1)  # mean = signal
    for name in ("six.flac", "six.wav"):
        sf.write(tmp_path / name, six, SR, subtype="PCM_24")
        x = load_audio(tmp_path / name, sample_rate=SR)
        assert np.abs(x.numpy() - signal).max() < 1e-4
    sf.write(tmp_path / "mono.ogg", signal, SR)
    x = load_audio(tmp_path / "mono.ogg", sample_rate=SR)
    assert np.abs(x.numpy()[400:-400] - signal[400:-400]).max() < 0.1  # Vorbis is lossy


def test_arrays(make_chirp: Any) -> None:
    signal = make_chirp(48000, 0.25)
    as_int = (np.stack([signal, signal], axis=1) * 32768).round().clip(-32768, 32767)
    a = load_audio(as_int.astype(np.int16), sample_rate=SR, source_rate=48000)
    b = load_audio(torch.from_numpy(signal).float()[None].repeat(2, 1), sample_rate=SR,
                   source_rate=48000)  # fmt: skip
    c = load_audio(torch.from_numpy(signal), sample_rate=48000, source_rate=48000)
    assert a.shape == b.shape == (4000,) and c.shape == (12000,)
    assert torch.allclose(a, b, atol=1e-4)
    assert c.dtype == torch.float32
    with pytest.raises(AudioError, match="source_rate"):
        load_audio(signal, sample_rate=SR)
    with pytest.raises(AudioError, match="shape"):
        load_audio(np.zeros((2, 3, 4)), sample_rate=SR, source_rate=SR)
    with pytest.raises(AudioError, match="NaN"):
        load_audio(np.array([0.0, np.nan]), sample_rate=SR, source_rate=SR)
    with pytest.raises(AudioError, match="no samples"):
        load_audio(np.zeros(0), sample_rate=SR, source_rate=SR)
    with pytest.raises(AudioError, match="sample_rate"):
        load_audio(signal, sample_rate=0, source_rate=SR)


def test_long_file_streams_blockwise_like_the_array_path(tmp_path: Path) -> None:
    g = np.random.default_rng(0)
    stereo = (g.standard_normal((44100 * 20, 2)) * 0.1).astype(np.float32)  # > 3 blocks
    sf.write(tmp_path / "long.wav", stereo, 44100, subtype="FLOAT")
    from_file = load_audio(tmp_path / "long.wav", sample_rate=SR)
    from_array = load_audio(stereo, sample_rate=SR, source_rate=44100)
    assert from_file.shape == from_array.shape == (320000,)
    assert torch.allclose(from_file, from_array, atol=1e-5)


def test_silence_is_valid(tmp_path: Path) -> None:
    sf.write(tmp_path / "silent.wav", np.zeros(8000, dtype=np.int16), 8000)
    x = load_audio(tmp_path / "silent.wav", sample_rate=SR)
    assert x.shape == (16000,) and bool((x == 0).all())


def test_resampler_is_anti_aliased_and_streams_exactly() -> None:
    t = torch.arange(44100, dtype=torch.float64) / 44100
    alias = torch.sin(2 * math.pi * 12000 * t).float()  # above the new Nyquist (8 kHz)
    assert resample(alias, 44100, SR)[500:-500].abs().max() < 1e-3
    tone = torch.sin(2 * math.pi * 1000 * t).float()
    out = resample(tone, 44100, SR)
    ref = torch.sin(2 * math.pi * 1000 * torch.arange(out.numel(), dtype=torch.float64) / SR)
    assert (out - ref)[500:-500].abs().max() < 1e-3
    streamer = StreamingResampler(44100, SR)
    parts = [streamer.push(tone[i : i + 777]) for i in range(0, tone.numel(), 777)]
    streamed = torch.cat([*parts, streamer.flush()])
    assert streamed.shape == out.shape
    assert torch.allclose(streamed, out, atol=1e-5)
    assert resample(tone, 44100, 44100) is tone
    with pytest.raises(InputError):
        resample(tone, 0, SR)


def test_audio_duration(tone_files: dict[str, Path]) -> None:
    assert audio_duration(tone_files["wav"]) == pytest.approx(1.5)
    for kind in ("mp3", "m4a", "mp4", "opus"):
        assert audio_duration(tone_files[kind]) == pytest.approx(1.5, abs=0.1)


def test_frame_counts() -> None:
    assert num_video_frames(16000, SR, 25) == 25
    assert num_video_frames(16001, SR, 25) == 26
    assert num_video_frames(1, SR, 30) == 1
    assert num_video_frames(0, SR, 30) == 0
    assert num_video_frames(16000 * 1001, SR, 29.97) == 30000  # 29.97 is 30000/1001
    assert frame_to_sample(25, SR, 25) == 16000
    assert frame_to_sample(1, SR, 30) == 534
    with pytest.raises(InputError):
        num_video_frames(100, SR, 0)
    with pytest.raises(InputError):
        num_video_frames(100, SR, float("nan"))


# -- bad inputs --------------------------------------------------------------------------


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"nope\.wav.*does not exist"):
        load_audio(tmp_path / "nope.wav", sample_rate=SR)
    with pytest.raises(AudioError, match="directory"):
        load_audio(tmp_path, sample_rate=SR)
    with pytest.raises(AudioError, match="does not exist"):
        audio_duration(tmp_path / "nope.mp3")
    with pytest.raises(AudioError, match="cannot load audio from a list"):
        load_audio([0.0, 1.0], sample_rate=SR)  # type: ignore[arg-type]


def test_not_audio(tmp_path: Path) -> None:
    (tmp_path / "notes.wav").write_text("this is not audio at all\n" * 20)
    with pytest.raises(AudioError, match=r"notes\.wav"):
        load_audio(tmp_path / "notes.wav", sample_rate=SR)
    (tmp_path / "empty.mp3").write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.mp3.*empty"):
        load_audio(tmp_path / "empty.mp3", sample_rate=SR)


def test_video_without_audio_track(tmp_path: Path) -> None:
    import av

    path = tmp_path / "silent_video.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with pytest.raises(AudioError, match="no audio track"):
        load_audio(path, sample_rate=SR)
    with pytest.raises(AudioError, match="no audio track"):
        audio_duration(path)


def test_corrupt_files(tmp_path: Path, tone_files: dict[str, Path]) -> None:
    data = tone_files["m4a"].read_bytes()
    (tmp_path / "cut.m4a").write_bytes(data[: len(data) // 2])  # the index (moov) is lost
    with pytest.raises(AudioError, match=r"cut\.m4a"):
        load_audio(tmp_path / "cut.m4a", sample_rate=SR)
    wav = tone_files["wav"].read_bytes()
    (tmp_path / "garbled.wav").write_bytes(wav[:4] + bytes(range(256)) * 4 + wav[1100:])
    with pytest.raises(AudioError, match=r"garbled\.wav"):
        load_audio(tmp_path / "garbled.wav", sample_rate=SR)


def test_zero_length_and_nonfinite(tmp_path: Path) -> None:
    sf.write(tmp_path / "zero.wav", np.zeros((0, 1), dtype=np.int16), SR)
    with pytest.raises(AudioError, match=r"zero\.wav.*zero length"):
        load_audio(tmp_path / "zero.wav", sample_rate=SR)
    for bad in (np.nan, np.inf):
        samples = np.zeros(SR, dtype=np.float32)
        samples[12345] = bad
        sf.write(tmp_path / "bad.wav", samples, SR, subtype="FLOAT")
        with pytest.raises(AudioError, match=r"bad\.wav.*NaN or infinite.*0\.772 s"):
            load_audio(tmp_path / "bad.wav", sample_rate=SR)
