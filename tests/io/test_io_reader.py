"""VideoReader / read_video: frame counts, fps, random access with real seeks."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from emo.errors import InputError, VideoError
from emo.io.reader import VideoReader, read_video
from emo.io.writers.pyav import GIFWriter, MP4Writer, WebMWriter

H, W, N = 32, 48, 60


def numbered(count: int = N) -> np.ndarray:
    """Frame i shows i in binary as 8 big black/white blocks: survives lossy coding."""
    frames = np.zeros((count, H, W, 3), np.uint8)
    for i in range(count):
        for bit in range(8):
            if i >> bit & 1:
                frames[i, :, bit * 6 : bit * 6 + 6] = 255
    return frames


def indices(frames: torch.Tensor) -> list[int]:
    bits = frames[:, H // 2, 3::6, 0].float() > 127
    return [int(sum(int(b) << k for k, b in enumerate(row))) for row in bits]


@pytest.fixture(scope="module")
def short_gop_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An H.264 file with a keyframe every 8 frames and B-frames, so reads really seek."""
    path = tmp_path_factory.mktemp("reader") / "gop.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"g": "8", "crf": "18", "bf": "2"}
        for i, image in enumerate(numbered()):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def test_metadata(short_gop_mp4: Path) -> None:
    with VideoReader(short_gop_mp4) as video:
        assert len(video) == N
        assert video.fps == 25.0 and video.size == (H, W)
        assert video.duration == pytest.approx(N / 25)
        assert not video.has_audio
        assert "48x32" in repr(video)


@pytest.mark.parametrize(
    ("start", "count"), [(0, 5), (17, 4), (8, 8), (41, 12), (55, None), (59, 1)]
)
def test_random_access(short_gop_mp4: Path, start: int, count: int | None) -> None:
    with VideoReader(short_gop_mp4) as video:
        clip = video.read(start, count)
    end = N if count is None else start + count
    assert clip.dtype == torch.uint8 and clip.shape == (end - start, H, W, 3)
    assert indices(clip) == list(range(start, end))


def test_seeks_in_any_order_on_one_reader(short_gop_mp4: Path) -> None:
    with VideoReader(short_gop_mp4) as video:
        for start in (50, 3, 30, 0, 58, 12):
            assert indices(video.read(start, 2)) == [start, start + 1]
        assert indices(video[-1][None]) == [N - 1]
        assert indices(video[10:13]) == [10, 11, 12]
        assert indices(torch.stack(list(video))) == list(range(N))


@pytest.mark.parametrize("suffix", [".webm", ".gif"])
def test_other_containers(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"v{suffix}"
    writer = WebMWriter() if suffix == ".webm" else GIFWriter()
    writer.write(numbered(), path, fps=25)
    with VideoReader(path) as video:
        assert len(video) == N and video.fps == pytest.approx(25.0)
        assert indices(video.read(33, 5)) == list(range(33, 38))


def test_read_video_and_audio_flag(tmp_path: Path) -> None:
    path = tmp_path / "a.mp4"
    audio = np.zeros(16000, np.float32)
    MP4Writer().write(numbered(30), path, fps=30000 / 1001, audio=audio, sample_rate=16000)
    frames, fps = read_video(path, start_frame=10, num_frames=3)
    assert fps == pytest.approx(29.97, abs=1e-3)
    assert indices(frames) == [10, 11, 12]
    all_frames, _ = read_video(path)
    assert all_frames.shape == (30, H, W, 3)
    with VideoReader(path) as video:
        assert video.has_audio


def test_errors(tmp_path: Path, short_gop_mp4: Path) -> None:
    with pytest.raises(VideoError, match="does not exist"):
        VideoReader(tmp_path / "nope.mp4")
    with pytest.raises(VideoError, match="folder"):
        VideoReader(tmp_path)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(VideoError, match="cannot open"):
        VideoReader(bad)
    with pytest.raises(VideoError, match="past the end"):
        read_video(short_gop_mp4, start_frame=N)
    with pytest.raises(InputError, match=">= 0"):
        read_video(short_gop_mp4, start_frame=-1)
    with VideoReader(short_gop_mp4) as video, pytest.raises(IndexError):
        video[N]
    assert read_video(short_gop_mp4, num_frames=0)[0].shape == (0, H, W, 3)
