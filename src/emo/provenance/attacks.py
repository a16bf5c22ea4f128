"""The edits the watermark is tested against, as functions on frames (PyAV/FFmpeg).

They are what a video meets on its way around: a platform re-encodes it, someone
shrinks it, crops the borders, turns it into a GIF. The tests and
``benchmarks/watermark_robustness.py`` apply them one at a time and chained.
"""

from __future__ import annotations

import io
from fractions import Fraction

import numpy as np

__all__ = ["crop_borders", "reencode_h264", "resize", "to_gif"]


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
