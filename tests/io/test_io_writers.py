"""Video writers: round trips through real PyAV, audio sync, atomic publication."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import emo.plugins
from emo.errors import EMOWarning, InputError, VideoError
from emo.io.writers import (
    VideoWriter,
    VideoWriterBase,
    WrittenVideo,
    resolve_writer,
    to_fraction,
    writer_for_path,
)
from emo.io.writers.frames import PNGFramesWriter
from emo.io.writers.memory import MemoryWriter
from emo.io.writers.pyav import GIFWriter, MP4Writer, WebMWriter

H, W, N, FPS, SR = 48, 64, 25, 25, 16000


def make_frames(count: int = N, height: int = H, width: int = W) -> np.ndarray:
    """Blocky moving pattern: compresses well, and each frame differs."""
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 256, ((height + 7) // 8, (width + 7) // 8, 3), dtype=np.uint8)
    out = [np.kron(np.roll(tile, i, axis=1), np.ones((8, 8, 1), np.uint8)) for i in range(count)]
    return np.stack(out)[:, :height, :width]


def tone(seconds: float, rate: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def probe(path: Path) -> dict[str, object]:
    """Streams' start and duration, and the decoded frames."""
    info: dict[str, object] = {}
    with av.open(str(path)) as container:
        info["container"] = container.duration / 1e6 if container.duration else None
        for stream in container.streams:
            start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
            info[f"{stream.type}_start"] = start
            info[f"{stream.type}_codec"] = stream.codec_context.name
        video = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video)]
        info["frames"] = np.stack(frames)
    with av.open(str(path)) as container:
        if container.streams.audio:
            audio = container.streams.audio[0]
            decoded = [f.to_ndarray() for f in container.decode(audio)]
            info["audio_seconds"] = sum(a.shape[-1] for a in decoded) / audio.rate
    return info


def test_pyav_encoders_present() -> None:
    for codec in ("libx264", "aac", "libvpx-vp9", "libopus", "gif", "png"):
        av.codec.Codec(codec, "w")


@pytest.mark.parametrize(
    ("suffix", "options", "max_err", "vcodec", "acodec"),
    [
        (".mp4", {}, None, "h264", "aac"),
        (".mp4", {"crf": 0, "pix_fmt": "yuv444p"}, 3, "h264", "aac"),
        (".mp4", {"crf": 0, "pix_fmt": "rgb24"}, 0, "h264", "aac"),
        (".webm", {"lossless": True, "pix_fmt": "yuv444p"}, 3, "vp9", "opus"),
    ],
)
def test_round_trip_with_audio(
    tmp_path: Path,
    suffix: str,
    options: dict[str, object],
    max_err: int | None,
    vcodec: str,
    acodec: str,
) -> None:
    frames = make_frames()
    path = tmp_path / f"out{suffix}"
    writer = writer_for_path(path)
    result = writer.write(frames, path, fps=FPS, audio=tone(1.3), sample_rate=SR, **options)
    assert isinstance(result, WrittenVideo) and result.path == path and result.num_frames == N
    assert result.duration == pytest.approx(1.0)
    info = probe(path)
    decoded = info["frames"]
    assert isinstance(decoded, np.ndarray) and decoded.shape == (N, H, W, 3)
    assert info["video_codec"] == vcodec and info["audio_codec"] == acodec
    assert info["video_start"] == pytest.approx(0.0, abs=1e-3)
    assert info["audio_start"] == pytest.approx(0.0, abs=1e-3)
    # Audio trimmed to the video: durations within one frame.
    assert info["audio_seconds"] == pytest.approx(N / FPS, abs=1 / FPS)
    assert info["container"] == pytest.approx(N / FPS, abs=1 / FPS)
    error = np.abs(decoded.astype(int) - frames)
    if max_err is None:
        assert error.mean() < 8
    else:
        assert error.max() <= max_err


def test_audio_given_at_close_fractional_fps_and_padding(tmp_path: Path) -> None:
    path = tmp_path / "ntsc.mp4"
    frames = make_frames(30)
    with MP4Writer().open(path, fps=29.97, width=W, height=H) as session:
        for i in range(0, 30, 7):  # float frames in [0, 1], torch, in chunks
            session.write(torch.from_numpy(frames[i : i + 7]).float() / 255)
        result = session.close(audio=torch.from_numpy(tone(0.5)), sample_rate=SR)
    assert result.fps == Fraction(30000, 1001)
    info = probe(path)
    assert info["frames"].shape[0] == 30  # type: ignore[union-attr]
    # Short audio was zero-padded to the video's 1.001 s.
    assert info["audio_seconds"] == pytest.approx(30 / (30000 / 1001), abs=1 / 29.97)
    assert info["audio_start"] == pytest.approx(0.0, abs=1e-3)


def test_stereo_audio_and_no_audio(tmp_path: Path) -> None:
    stereo = np.stack([tone(1.0), -tone(1.0)])
    result = MP4Writer().write(
        make_frames(), tmp_path / "s.mp4", fps=FPS, audio=stereo, sample_rate=SR
    )
    with av.open(str(result.path)) as c:
        assert c.streams.audio[0].codec_context.channels == 2
    silent = MP4Writer().write(make_frames(5), tmp_path / "n.mp4", fps=FPS)
    assert silent.sample_rate is None
    with av.open(str(silent.path)) as c:
        assert not c.streams.audio


def test_odd_size_is_padded_or_refused(tmp_path: Path) -> None:
    frames = make_frames(5, 47, 63)
    result = MP4Writer().write(frames, tmp_path / "odd.mp4", fps=FPS)
    assert (result.width, result.height) == (64, 48)
    decoded = probe(tmp_path / "odd.mp4")["frames"]
    assert decoded.shape == (5, 48, 64, 3)  # type: ignore[union-attr]
    with pytest.raises(InputError, match="even width and height"):
        MP4Writer(odd_size="error").write(frames, tmp_path / "odd2.mp4", fps=FPS)
    assert not (tmp_path / "odd2.mp4").exists()
    assert MP4Writer(pix_fmt="yuv444p").write(frames, tmp_path / "odd3.mp4", fps=FPS).width == 63


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.filterwarnings("ignore:gif files hold no audio")
@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".gif", "_frames"])
def test_exception_mid_stream_leaves_no_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"out{suffix}"
    writer = writer_for_path(path)
    session = writer.open(path, fps=FPS, width=W, height=H, audio=tone(1), sample_rate=SR)
    with pytest.raises(RuntimeError, match="boom"), session:
        session.write(make_frames(3))
        raise RuntimeError("boom")
    assert not path.exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("suffix", [".mp4", "_frames"])
def test_interrupt_keeps_existing_target(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"out{suffix}"
    writer = writer_for_path(path)
    writer.write(make_frames(4), path, fps=FPS)
    before = sorted(os.listdir(path)) if path.is_dir() else path.read_bytes()
    session = writer.open(path, fps=FPS, width=W, height=H)
    with pytest.raises(KeyboardInterrupt), session:
        session.write(make_frames(6))
        raise KeyboardInterrupt
    after = sorted(os.listdir(path)) if path.is_dir() else path.read_bytes()
    assert after == before
    assert leftovers(tmp_path) == []
    # A successful write replaces it.
    writer.write(make_frames(6), path, fps=FPS)
    after = sorted(os.listdir(path)) if path.is_dir() else path.read_bytes()
    assert after != before
    assert leftovers(tmp_path) == []


def test_bad_frames_abort_the_session(tmp_path: Path) -> None:
    path = tmp_path / "bad.mp4"
    session = MP4Writer().open(path, fps=FPS, width=W, height=H)
    session.write(make_frames(2))
    with pytest.raises(InputError, match="do not match"):
        session.write(make_frames(2, 32, 32))
    assert session.closed and not path.exists() and leftovers(tmp_path) == []
    with pytest.raises(VideoError, match="closed"):
        session.write(make_frames(1))


def test_dropped_session_cleans_up(tmp_path: Path) -> None:
    session = MP4Writer().open(tmp_path / "x.mp4", fps=FPS, width=W, height=H)
    session.write(make_frames(2))
    session.abort()
    del session
    assert list(tmp_path.iterdir()) == []


def test_input_errors(tmp_path: Path) -> None:
    writer = MP4Writer()
    frames = make_frames(2)
    with pytest.raises(InputError, match="fps"):
        writer.write(frames, tmp_path / "a.mp4", fps=0)
    with pytest.raises(InputError, match="sample_rate"):
        writer.write(frames, tmp_path / "a.mp4", fps=FPS, audio=tone(1))
    with pytest.raises(InputError, match="NaN"):
        writer.write(frames, tmp_path / "a.mp4", fps=FPS, audio=np.full(10, np.nan), sample_rate=SR)
    with pytest.raises(InputError, match="unknown option"):
        writer.write(frames, tmp_path / "a.mp4", fps=FPS, bitrate=3)
    with pytest.raises(InputError, match="crf"):
        MP4Writer(crf=60)
    with pytest.raises(InputError, match=r"\(f, h, w, 3\)"):
        writer.write(np.zeros((2, 4, 4), np.uint8), tmp_path / "a.mp4", fps=FPS)
    with pytest.raises(VideoError, match="no frames"):
        writer.open(tmp_path / "a.mp4", fps=FPS, width=W, height=H).close()
    with pytest.raises(VideoError, match="is a folder"):
        writer.write(frames, tmp_path, fps=FPS)
    with (
        pytest.raises(InputError, match="only once"),
        writer.open(
            tmp_path / "a.mp4", fps=FPS, width=W, height=H, audio=tone(1), sample_rate=SR
        ) as s,
    ):
        s.write(frames)
        s.close(audio=tone(1), sample_rate=SR)
    assert leftovers(tmp_path) == [] and not (tmp_path / "a.mp4").exists()


def test_gif_drops_audio_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "a.gif"
    with pytest.warns(EMOWarning, match="no audio"):
        result = GIFWriter().write(make_frames(), path, fps=FPS, audio=tone(1), sample_rate=SR)
    assert result.sample_rate is None
    info = probe(path)
    assert info["frames"].shape == (N, H, W, 3)  # type: ignore[union-attr]
    assert info["container"] == pytest.approx(1.0, abs=0.04)


def test_gif_per_frame_palette_beats_fixed(tmp_path: Path) -> None:
    data = pytest.importorskip("skimage.data")
    photo = data.astronaut()[::4, ::4]
    frames = np.stack([np.roll(photo, 3 * i, axis=1) for i in range(4)])
    errors = {}
    for palette in ("per_frame", "fixed"):
        path = tmp_path / f"{palette}.gif"
        GIFWriter(palette=palette).write(frames, path, fps=10)
        decoded = probe(path)["frames"]
        errors[palette] = float(np.abs(decoded.astype(int) - frames).mean())  # type: ignore[union-attr]
    assert errors["per_frame"] < 6 < errors["fixed"]
    with pytest.raises(InputError, match="dither"):
        GIFWriter(dither="fancy")


def test_png_frames_writer(tmp_path: Path) -> None:
    frames = make_frames(5)
    folder = tmp_path / "frames"
    result = PNGFramesWriter().write(frames, folder, fps=FPS, audio=tone(0.1), sample_rate=SR)
    assert result.path == folder
    names = sorted(os.listdir(folder))
    assert names == [f"{i:06d}.png" for i in range(5)] + ["audio.wav"]
    from emo.io.image import load_image

    assert np.array_equal(load_image(folder / "000003.png"), frames[3])
    with av.open(str(folder / "audio.wav")) as c:
        samples = sum(f.samples for f in c.decode(audio=0))
    assert samples == round(5 / FPS * SR)  # padded to the video's length


def test_memory_writer() -> None:
    writer = emo.plugins.create("video_writer", "memory")
    assert isinstance(writer, MemoryWriter)
    with writer.open("memory", fps=FPS, width=W, height=H, audio=tone(2), sample_rate=SR) as s:
        s.write(make_frames(3))
        s.write(torch.from_numpy(make_frames(2)))
    result = writer.last
    assert result is not None and result.frames is not None and result.audio is not None
    assert result.frames.dtype == torch.uint8 and result.frames.shape == (5, H, W, 3)
    assert result.audio.shape == (1, round(5 / FPS * SR))
    again = writer.write(make_frames(2), fps=FPS)
    assert again.frames is not None and again.frames.shape == (2, H, W, 3) and again.audio is None


def test_missing_encoder_is_reported() -> None:
    from emo.io.writers.pyav import check_codec

    check_codec("libx264", "mp4 video")
    with pytest.raises(VideoError, match="no 'no-such-codec' encoder"):
        check_codec("no-such-codec", "a test")


def test_writer_for_path_and_registry() -> None:
    assert isinstance(writer_for_path("a.mp4"), MP4Writer)
    assert isinstance(writer_for_path("a.M4V"), MP4Writer)
    assert isinstance(writer_for_path("a.webm"), WebMWriter)
    assert isinstance(writer_for_path("a.gif"), GIFWriter)
    assert isinstance(writer_for_path("out/frames/"), PNGFramesWriter)
    assert isinstance(writer_for_path("memory"), MemoryWriter)
    with pytest.raises(VideoError, match="no video writer"):
        writer_for_path("a.avi")
    assert isinstance(resolve_writer("webm", "x.mp4"), WebMWriter)
    assert isinstance(resolve_writer(None, "x.mp4"), MP4Writer)
    for status in emo.plugins.check("video_writer"):
        assert status.loads, status.error
    for name in ("mp4", "webm", "gif", "frames", "memory"):
        writer = emo.plugins.create("video_writer", name)
        assert isinstance(writer, VideoWriterBase) and isinstance(writer, VideoWriter)
        assert writer.config["_plugin_name"] == name


def test_writer_config_round_trip(tmp_path: Path) -> None:
    writer = MP4Writer(crf=23, preset="fast")
    writer.save_pretrained(tmp_path)
    again = MP4Writer.from_pretrained(tmp_path)
    assert again.config.public() == writer.config.public()


def test_to_fraction() -> None:
    assert to_fraction(25) == 25
    assert to_fraction(29.97) == Fraction(30000, 1001)
    assert to_fraction(23.976) == Fraction(24000, 1001)
    assert to_fraction(12.5) == Fraction(25, 2)
    assert to_fraction("30000/1001") == Fraction(30000, 1001)
    with pytest.raises(InputError):
        to_fraction(-1)


def test_streaming_memory_stays_bounded(tmp_path: Path) -> None:
    """Writing 10x more frames must not keep them: resident memory grows far less than their size."""
    statm = Path("/proc/self/statm")
    if not statm.exists():
        pytest.skip("needs /proc")
    page = os.sysconf("SC_PAGE_SIZE")
    frame = make_frames(1, 256, 256)
    chunk = np.repeat(frame, 10, axis=0)

    def rss() -> int:
        return int(statm.read_text().split()[1]) * page

    with MP4Writer(preset="ultrafast").open(
        tmp_path / "long.mp4", fps=FPS, width=256, height=256
    ) as s:
        for _ in range(5):
            s.write(chunk)
        before = rss()
        for _ in range(45):  # 450 frames = 88 MB of raw frames
            s.write(chunk)
        grown = rss() - before
    assert grown < 40 * 2**20


def test_writers_do_not_copy_long_audio_needlessly_nor_alias_it_in_memory() -> None:
    from emo.io.writers.base import prepare_audio
    from emo.io.writers.memory import MemoryWriter

    audio = np.linspace(-0.5, 0.5, 48000, dtype=np.float32)
    prepared, rate = prepare_audio(audio, 16000)
    assert rate == 16000 and np.shares_memory(prepared, audio)  # in range: no copy
    loud = audio * 4
    clipped, _ = prepare_audio(loud, 16000)
    assert clipped.max() == 1.0 and loud.max() == 2.0  # the caller's array is untouched
    written = MemoryWriter().write(
        np.zeros((75, 8, 8, 3), np.uint8), "memory", fps=25, audio=audio, sample_rate=16000
    )
    audio[:] = 0.0
    assert written.audio is not None and float(written.audio.abs().max()) > 0.4
