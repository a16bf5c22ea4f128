"""The edits the watermark is tested against, as functions on frames (PyAV/FFmpeg).

They are what a video meets on its way around: a platform re-encodes it, someone
shrinks it, crops the borders, turns it into a GIF. The tests and
``benchmarks/watermark_robustness.py`` apply them one at a time and chained.
"""

from __future__ import annotations

import io
import os
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = ["crop_borders", "reencode_h264", "reencode_h264_file", "resize", "to_gif"]


def _decode(data: io.BytesIO) -> np.ndarray:
    import av

    data.seek(0)
    with av.open(data) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def reencode_h264(frames: np.ndarray, crf: int = 28, preset: str = "medium") -> np.ndarray:
    """Encode uint8 ``(f, h, w, 3)`` as H.264 (libx264, yuv420p, ``crf``) and decode it again."""
    import av

    frames = frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]
    data = io.BytesIO()
    with av.open(data, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset}
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, 25)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return _decode(data)


def reencode_h264_file(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    crf: int = 28,
    preset: str = "medium",
) -> None:
    """Re-encode a video file's frames as an H.264 MP4 (what ``ffmpeg -i s -crf 28 t`` does).

    The frames go one by one from ``source`` through libx264 (yuv420p, ``crf``,
    ``preset``) into ``target``; the audio and every tag are dropped, as a platform's
    re-encode often drops them. It lets ``emo detect`` be checked on a re-encoded file
    where the ``ffmpeg`` program is not installed.

    Raises
    ------
    emo.errors.VideoError
        If ``source`` cannot be read as a video.
    """
    import av

    from emo.errors import VideoError

    try:
        source_container = av.open(os.fspath(source))
    except (OSError, av.error.FFmpegError) as exc:
        raise VideoError(f"cannot read {os.fspath(source)!r} as a video: {exc}") from exc
    with source_container:
        if not source_container.streams.video:
            raise VideoError(f"{os.fspath(source)!r} has no video stream")
        _transcode(source_container, os.fspath(target), crf, preset)


def _transcode(source: Any, target: str, crf: int, preset: str) -> None:
    """The frames of the open container ``source`` into ``target`` (H.264 MP4)."""
    import av

    def encode(stream: Any, frame: Any, container: Any) -> None:
        for packet in stream.encode(frame):
            container.mux(packet)

    with av.open(target, "w", format="mp4") as out:
        video = source.streams.video[0]
        rate = video.average_rate or Fraction(25)
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height = video.width // 2 * 2, video.height // 2 * 2
        stream.pix_fmt = "yuv420p"
        # Off AVX-512 like emo's writer, so a test's re-encode gives the same bytes each run.
        from emo.io.writers.x264_cpu import deterministic_x264_params

        stream.options = {"crf": str(crf), "preset": preset, **deterministic_x264_params()}
        for index, decoded in enumerate(source.decode(video=0)):
            image = decoded.to_ndarray(format="rgb24")[: stream.height, : stream.width]
            pixels = np.ascontiguousarray(image, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            frame.time_base = 1 / Fraction(rate)
            encode(stream, frame, out)
        encode(stream, None, out)


def resize(frames: np.ndarray, scale: float = 0.5) -> np.ndarray:
    """Resize uint8 ``(f, h, w, 3)`` by ``scale`` with FFmpeg's bicubic scaler."""
    import av

    height = max(2, round(frames.shape[1] * scale))
    width = max(2, round(frames.shape[2] * scale))
    out = []
    for image in frames:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        out.append(
            frame.reformat(
                width=width, height=height, format="rgb24", interpolation="BICUBIC"
            ).to_ndarray()
        )
    return np.stack(out)


def crop_borders(frames: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """Cut ``fraction`` of the height and width off every border of ``(f, h, w, 3)``."""
    h, w = frames.shape[1:3]
    top, left = round(h * fraction), round(w * fraction)
    return frames[:, top : h - top, left : w - left]


def to_gif(frames: np.ndarray) -> np.ndarray:
    """Convert to an animated GIF (per-frame 256-colour palettes, dithered) and decode it."""
    import tempfile
    from pathlib import Path

    from emo.io.writers.pyav import GIFWriter

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.gif"
        GIFWriter().write(frames, path, fps=25)
        return _decode(io.BytesIO(path.read_bytes()))
