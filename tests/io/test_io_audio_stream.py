"""Audio streams: files and arrays read block by block at their own rate and channels."""

from __future__ import annotations

import tracemalloc
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from emo.errors import AudioError
from emo.io.audio_stream import (
    BLOCK,
    ArrayAudioStream,
    AudioReader,
    AudioStream,
    FileAudioStream,
    ResampledAudioStream,
    open_audio_stream,
)
from emo.io.writers.memory import MemoryWriter
from emo.io.writers.pyav import MP4Writer


def two_tones(rate: int, seconds: float, left: float, right: float) -> np.ndarray:
    """float32 ``(2, n)``: a different sine in each channel."""
    t = np.arange(int(rate * seconds)) / rate
    return np.stack(
        [0.5 * np.sin(2 * np.pi * left * t), 0.5 * np.sin(2 * np.pi * right * t)]
    ).astype(np.float32)


def peak_hz(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(signal.size)))
    return float(np.fft.rfftfreq(signal.size, 1 / rate)[int(np.argmax(spectrum))])


def test_a_stereo_wav_is_read_at_its_rate_in_blocks(tmp_path: Path) -> None:
    audio = two_tones(44100, 3.0, 440.0, 12000.0)
    path = tmp_path / "song.wav"
    sf.write(str(path), audio.T, 44100, subtype="FLOAT")
    with FileAudioStream(path) as stream:
        assert (stream.sample_rate, stream.channels) == (44100, 2)
        first = stream.read(1000)
        rest = stream.read_all()
        assert stream.read(10).shape == (2, 0)
    np.testing.assert_array_equal(np.concatenate([first, rest], axis=1), audio)


def test_compressed_and_multichannel_files_go_through_ffmpeg(tmp_path: Path) -> None:
    path = tmp_path / "song.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=48000)
        stream.layout = "stereo"
        audio = two_tones(48000, 1.0, 300.0, 5000.0)
        frame = av.AudioFrame.from_ndarray(audio, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = 48000, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    with FileAudioStream(path) as decoded:
        assert (decoded.sample_rate, decoded.channels) == (48000, 2)
        samples = decoded.read_all()
    assert abs(samples.shape[1] - 48000) <= 2048
    assert peak_hz(samples[0, 4800:40000], 48000) == pytest.approx(300, abs=5)
    assert peak_hz(samples[1, 4800:40000], 48000) == pytest.approx(5000, abs=5)

    surround = tmp_path / "six.wav"
    sf.write(str(surround), np.full((4800, 6), 0.1, dtype=np.float32), 48000, subtype="FLOAT")
    with FileAudioStream(surround) as down:
        assert (down.sample_rate, down.channels) == (48000, 2)  # FFmpeg's downmix
        assert down.read_all().shape == (2, 4800)


def test_arrays_keep_their_channels_and_are_not_copied() -> None:
    array = two_tones(22050, 0.5, 100.0, 200.0)
    stream = open_audio_stream(array, source_rate=22050)
    assert isinstance(stream, ArrayAudioStream) and stream.channels == 2
    block = stream.read(100)
    assert np.shares_memory(block, array)
    pcm = (array.T * 32767).astype(np.int16)  # (n, c) int16
    again = open_audio_stream(pcm, source_rate=22050)
    np.testing.assert_allclose(again.read_all(), array, atol=1e-4)
    with pytest.raises(AudioError, match="source_rate"):
        open_audio_stream(array)
    with pytest.raises(AudioError, match="does not exist"):
        open_audio_stream("missing.wav")


def test_resampling_keeps_the_pitch_and_the_duration() -> None:
    source = ArrayAudioStream(two_tones(44100, 2.0, 1000.0, 3000.0), 44100)
    converted = ResampledAudioStream(source, 48000)
    out = converted.read_all()
    assert converted.channels == 2 and abs(out.shape[1] - 96000) <= 64
    assert peak_hz(out[0, 4800:90000], 48000) == pytest.approx(1000, abs=2)
    assert peak_hz(out[1, 4800:90000], 48000) == pytest.approx(3000, abs=2)


def test_reader_gives_exact_counts_and_zeros_past_the_end() -> None:
    reader = AudioReader(ArrayAudioStream(np.ones((1, 10), np.float32), 8000))
    assert reader.take(4).tolist() == [[1, 1, 1, 1]]
    assert reader.take(8).tolist() == [[1] * 6 + [0, 0]]
    assert reader.take(3).tolist() == [[0, 0, 0]]


class _Sine(AudioStream):
    """A long stereo sine made on demand; records the largest block asked for."""

    def __init__(self, seconds: float, rate: int = 48000) -> None:
        self.sample_rate, self.channels = rate, 2
        self.total, self.position, self.largest = int(seconds * rate), 0, 0

    def read(self, count: int) -> np.ndarray:
        self.largest = max(self.largest, count)
        n = max(0, min(count, self.total - self.position))
        t = (self.position + np.arange(n)) / self.sample_rate
        self.position += n
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        return np.stack([tone, -tone])


def test_a_writer_streams_a_long_source_in_bounded_memory(tmp_path: Path) -> None:
    seconds = 40.0  # 15 MB as one float32 stereo array at 48 kHz
    source = _Sine(seconds + 5.0)  # longer than the video: trimmed
    frames = np.zeros((int(seconds * 5), 16, 16, 3), np.uint8)
    tracemalloc.start()
    try:
        with MP4Writer(preset="ultrafast").open(
            tmp_path / "long.mp4", fps=5, width=16, height=16, audio=source
        ) as session:
            for start in range(0, len(frames), 50):
                session.write(frames[start : start + 50])
            written = session.close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4_000_000, f"peak {peak / 1e6:.1f} MB: the audio was not streamed"
    assert source.largest <= BLOCK
    assert source.position == int(seconds * 48000)  # read exactly as long as the video
    assert written.sample_rate == 48000
    with av.open(str(written.path)) as container:
        stream = container.streams.audio[0]
        assert (stream.rate, stream.codec_context.channels) == (48000, 2)


def test_memory_writer_fits_a_stream_to_the_video() -> None:
    source = ArrayAudioStream(two_tones(44100, 2.0, 100.0, 200.0), 44100)
    frames = np.zeros((10, 8, 8, 3), np.uint8)
    written = MemoryWriter().write(frames, "memory", fps=Fraction(10), audio=source)
    assert written.sample_rate == 44100
    assert written.audio is not None and tuple(written.audio.shape) == (2, 44100)
