"""Fixtures for the audio tests: real files written with soundfile/PyAV, tiny random models."""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pytest
import torch

SR_FILE = 44100


def chirp(rate: int, seconds: float, f0: float = 200.0, f1: float = 1100.0) -> np.ndarray:
    """A linear chirp (not periodic, so a time shift shows), amplitude 0.5, float64."""
    t = np.arange(round(rate * seconds), dtype=np.float64) / rate
    k = (f1 - f0) / (2 * seconds)
    return 0.5 * np.sin(2 * np.pi * (f0 * t + k * t**2))


def write_av(path: Path, codec: str, rate: int, signal: np.ndarray, video: bool = False) -> None:
    """Encode a stereo copy of ``signal`` with PyAV (optionally with an H.264 video track)."""
    stereo = np.ascontiguousarray(np.stack([signal, signal]).astype(np.float32))
    with av.open(str(path), "w") as container:
        vstream = None
        if video:
            vstream = container.add_stream("libx264", rate=25)
            vstream.width, vstream.height, vstream.pix_fmt = 64, 64, "yuv420p"
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "stereo"
        fmt = stream.codec_context.codec.audio_formats[0].name
        shown = 0
        for i in range(0, stereo.shape[1], 1024):
            block = stereo[:, i : i + 1024]
            if fmt.startswith("s16"):
                frame = av.AudioFrame.from_ndarray(
                    (block * 32767).astype(np.int16).T.reshape(1, -1).copy(),
                    format="s16",
                    layout="stereo",
                )
            else:
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="fltp",
                                                   layout="stereo")  # fmt: skip
            frame.sample_rate = rate
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
            while vstream is not None and shown * rate / 25 <= i:
                image = np.full((64, 64, 3), shown % 255, dtype=np.uint8)
                for packet in vstream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
                shown += 1
        for packet in stream.encode(None):
            container.mux(packet)
        if vstream is not None:
            for packet in vstream.encode(None):
                container.mux(packet)


@pytest.fixture(scope="session")
def tone_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same 1.5 s chirp as WAV (44.1 kHz stereo 16-bit), MP3, M4A, MP4 (+video), Opus."""
    import soundfile as sf

    folder = tmp_path_factory.mktemp("tones")
    signal = chirp(SR_FILE, 1.5)
    files = {"wav": folder / "tone.wav"}
    stereo16 = (np.stack([signal, signal], axis=1) * 32767).round().astype(np.int16)
    sf.write(files["wav"], stereo16, SR_FILE, subtype="PCM_16")
    files["mp3"] = folder / "tone.mp3"
    write_av(files["mp3"], "libmp3lame", SR_FILE, signal)
    files["m4a"] = folder / "tone.m4a"
    write_av(files["m4a"], "aac", SR_FILE, signal)
    files["mp4"] = folder / "tone.mp4"
    write_av(files["mp4"], "aac", SR_FILE, signal, video=True)
    files["opus"] = folder / "tone.opus"
    write_av(files["opus"], "libopus", 48000, chirp(48000, 1.5))
    return files


@pytest.fixture(scope="session")
def whisper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random WhisperModel with a 2 s window (max_source_positions=100)."""
    from transformers import WhisperConfig, WhisperModel

    config = WhisperConfig(
        num_mel_bins=80,
        d_model=32,
        encoder_layers=2,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=100,
        max_target_positions=32,
        vocab_size=100,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("whisper")
    WhisperModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def speechlike() -> torch.Tensor:
    """60 s of a deterministic speech-like signal at 16 kHz: modulated harmonics plus noise."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(16000 * 60, dtype=torch.float64) / 16000
    pitch = 140 + 30 * torch.sin(2 * math.pi * 0.7 * t)
    phase = 2 * math.pi * torch.cumsum(pitch, 0) / 16000
    voice = sum(torch.sin(k * phase) / k for k in range(1, 6))
    envelope = 0.5 + 0.5 * torch.sin(2 * math.pi * 3.0 * t).clamp(min=0)
    noise = 0.05 * torch.randn(t.numel(), generator=g, dtype=torch.float64)
    return (0.3 * envelope * voice + noise).float()


@pytest.fixture(scope="session")
def make_chirp() -> object:
    """The :func:`chirp` generator, for tests that need the reference signal."""
    return chirp
