"""The generated video carries the source audio at its own rate and channels."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch

from emo.errors import InputError
from emo.pipelines.emo_pipeline import EMOPipeline


def _song(rate: int, seconds: float = 0.6) -> np.ndarray:
    """``(n, 2)`` float32: 440 Hz on the left, 11 kHz (above 16 kHz audio's 8 kHz limit) on the right."""
    t = np.arange(int(rate * seconds)) / rate
    left = 0.4 * np.sin(2 * np.pi * 440.0 * t)
    right = 0.4 * np.sin(2 * np.pi * 11000.0 * t)
    return np.stack([left, right], axis=1).astype(np.float32)


def _muxed(path: Path) -> tuple[int, int, np.ndarray]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate, channels = stream.rate, stream.codec_context.channels
        samples = np.concatenate([f.to_ndarray() for f in container.decode(stream)], axis=1)
    return rate, channels, samples


def _peak_hz(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(signal.size)))
    return float(np.fft.rfftfreq(signal.size, 1 / rate)[int(np.argmax(spectrum))])


@pytest.mark.parametrize("rate", [44100, 48000])
def test_a_stereo_song_is_muxed_at_its_rate_in_stereo(
    tiny_pipe: EMOPipeline, portrait_path: Path, tmp_path: Path, rate: int
) -> None:
    song = tmp_path / "song.wav"
    sf.write(str(song), _song(rate), rate)
    out = tiny_pipe(
        portrait_path,
        song,
        generator=torch.Generator().manual_seed(0),
        output_path=tmp_path / "sing.mp4",
        num_inference_steps=1,
    )
    assert out.path is not None
    muxed_rate, channels, samples = _muxed(out.path)
    assert (muxed_rate, channels) == (rate, 2)
    middle = slice(rate // 10, rate // 2)
    assert _peak_hz(samples[0, middle], rate) == pytest.approx(440.0, abs=10)
    # The 11 kHz tone survives: a 16 kHz copy cannot hold anything above 8 kHz.
    assert _peak_hz(samples[1, middle], rate) == pytest.approx(11000.0, abs=10)
    assert np.sqrt(np.mean(samples[1, middle] ** 2)) > 0.2


def test_arrays_keep_their_rate_and_mux_sample_rate_resamples(
    tiny_pipe: EMOPipeline, portrait_path: Path, tmp_path: Path
) -> None:
    song = _song(44100)
    common = {"generator": torch.Generator().manual_seed(0), "num_inference_steps": 1}
    out = tiny_pipe(portrait_path, song, audio_rate=44100, output_path=tmp_path / "a.mp4", **common)
    assert out.path is not None and _muxed(out.path)[:2] == (44100, 2)
    mono = tiny_pipe(
        portrait_path, song[:, 0], audio_rate=44100, output_path=tmp_path / "m.mp4", **common
    )
    assert mono.path is not None and _muxed(mono.path)[:2] == (44100, 1)
    low = tiny_pipe(
        portrait_path,
        song,
        audio_rate=44100,
        mux_sample_rate=16000,
        output_path=tmp_path / "low.mp4",
        **common,
    )
    assert low.path is not None
    rate, channels, samples = _muxed(low.path)
    assert (rate, channels) == (16000, 2)
    assert _peak_hz(samples[0, 1600:8000], 16000) == pytest.approx(440.0, abs=10)
    with pytest.raises(InputError, match="mux_sample_rate"):
        tiny_pipe(portrait_path, song, audio_rate=44100, mux_sample_rate=0, output_path="x.mp4")
