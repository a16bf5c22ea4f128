"""Reading video frames for training data, with random access to clips.

:class:`VideoReader` opens a file once and seeks to the clip it is asked for, so
a dataset decodes only the frames it needs. The audio track of a video is read
with :func:`emo.load_audio` (it accepts video files), not here.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emo.errors import InputError, VideoError
from emo.io._closing import ClosingContext

__all__ = ["VideoReader", "read_video"]


def _is_count(value: Any) -> bool:
    """True for a non-negative integer (int, numpy integer, or a float with no fraction)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, np.integer)):
        return int(value) >= 0
    if isinstance(value, (float, np.floating)):
        return bool(np.isfinite(value)) and float(value).is_integer() and float(value) >= 0
    return False


class VideoReader(ClosingContext):
    """Random access to the frames of a video file (decoded with PyAV).

    Parameters
    ----------
    path
        Any video FFmpeg reads: MP4, WebM, MOV, MKV, AVI, GIF...
    threads
        Let FFmpeg decode with several threads (``"AUTO"``); ``False`` decodes on one.

    Attributes
    ----------
    path
        The file.
    fps
        Frames per second (float).
    rate
        Frames per second, exact.
    width, height
        Frame size in pixels.
    has_audio
        Whether the file has an audio stream (read it with :func:`emo.load_audio`).

    Raises
    ------
    VideoError
        If the file is missing, not a video, or corrupt.

    Examples
    --------
    ::

        with VideoReader("talk.mp4") as video:
            clip = video.read(start=100, num_frames=12)   # uint8 (12, h, w, 3)
            first = video[0]                              # uint8 (h, w, 3)
    """

    def __init__(self, path: str | os.PathLike[str], *, threads: bool = True) -> None:
        import av

        if not isinstance(path, (str, os.PathLike)) or not isinstance(os.fspath(path), str):
            raise VideoError(
                f"video path must be a str or os.PathLike, got {type(path).__name__}; give the "
                "path of a video file"
            )
        if not os.fspath(path):
            raise VideoError("video path is an empty string; give the path of a video file")
        self.path = Path(path)
        label = repr(os.fspath(path))
        if not self.path.exists():
            raise VideoError(f"video {label} does not exist; check the path")
        if self.path.is_dir():
            raise VideoError(f"video {label} is a folder; give the path of a video file")
        try:
            self._container = av.open(os.fspath(self.path), "r")
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
            raise VideoError(
                f"cannot open {label} as a video ({type(exc).__name__}: {exc}); is it a video "
                "file and not corrupt?"
            ) from exc
        if not self._container.streams.video:
            self._container.close()
            raise VideoError(f"{label} has no video stream")
        self._label = label
        self._stream = self._container.streams.video[0]
        if threads:
            self._stream.thread_type = "AUTO"
        rate: Any = self._stream.average_rate or self._stream.guessed_rate or self._stream.base_rate
        if not rate:
            self._container.close()
            raise VideoError(f"{label} does not say its frame rate")
        self.rate = Fraction(str(rate))
        self.fps = float(self.rate)
        self.width = int(self._stream.codec_context.width)
        self.height = int(self._stream.codec_context.height)
        self.has_audio = bool(self._container.streams.audio)
        self._time_base = Fraction(str(self._stream.time_base))
        self._start = int(self._stream.start_time or 0)
        self._length: int | None = int(self._stream.frames) or None

    # -- metadata ------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of frames (from the header, else counted by demuxing once, without decoding)."""
        if self._length is None:
            count = 0
            try:
                self._container.seek(0)
                for packet in self._container.demux(self._stream):
                    if packet.size > 0:
                        count += 1
            except Exception as exc:
                raise VideoError(f"cannot count the frames of {self._label}: {exc}") from exc
            self._length = count
        return self._length

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        return self.height, self.width

    @property
    def duration(self) -> float:
        """``len(self) / fps`` in seconds."""
        return len(self) / self.fps

    # -- decoding ------------------------------------------------------------------
    def _index(self, frame: Any, fallback: int) -> int:
        if frame.pts is None:
            return fallback
        index: int = round((frame.pts - self._start) * self._time_base * self.rate)
        return index

    def _decode_from(self, start: int) -> Any:
        """Yield ``(index, frame)`` from a keyframe at or before ``start``."""
        import av

        target = self._start + round(Fraction(start) / self.rate / self._time_base)
        seek_to = target if start > 0 else self._start
        try:
            self._container.seek(seek_to, stream=self._stream, backward=True, any_frame=False)
        except av.error.FFmpegError:
            self._container.seek(0)
            seek_to = self._start
        index = -1
        first = True
        for frame in self._container.decode(self._stream):
            index = self._index(frame, index + 1)
            if first and index > start and seek_to != self._start:
                # The seek overshot (inexact index): start again from the beginning.
                yield from self._decode_all()
                return
            first = False
            yield index, frame

    def _decode_all(self) -> Any:
        self._container.seek(self._start, stream=self._stream, backward=True, any_frame=False)
        index = -1
        for frame in self._container.decode(self._stream):
            index = self._index(frame, index + 1)
            yield index, frame

    def read(self, start: int = 0, num_frames: int | None = None) -> torch.Tensor:
        """Decode frames ``start, ..., start + num_frames - 1``.

        Parameters
        ----------
        start
            Index of the first frame (0-based).
        num_frames
            How many; ``None`` reads to the end. Fewer are returned if the video ends first.

        Returns
        -------
        torch.Tensor
            uint8 ``(f, h, w, 3)``.

        Raises
        ------
        VideoError
            If ``start`` is past the last frame, or decoding fails.
        InputError
            If ``start`` or ``num_frames`` is negative.
        """
        import av

        if not _is_count(start):
            raise InputError(f"start frame must be an int >= 0, got {start!r}")
        if num_frames is not None and not _is_count(num_frames):
            raise InputError(f"num_frames must be an int >= 0 or None, got {num_frames!r}")
        if not self._container_open():
            raise VideoError(f"{self._label} was closed; open a new VideoReader to read it")
        start = int(start)
        if self._length is not None and start >= self._length:
            raise VideoError(
                f"start frame {start} is past the end of {self._label} ({self._length} frames)"
            )
        stop = None if num_frames is None else start + int(num_frames)
        frames: list[np.ndarray] = []
        if stop is not None and stop <= start:
            return torch.zeros((0, self.height, self.width, 3), dtype=torch.uint8)
        try:
            for index, frame in self._decode_from(start):
                if index < start:
                    continue
                if stop is not None and index >= stop:
                    break
                frames.append(frame.to_ndarray(format="rgb24"))
        except av.error.FFmpegError as exc:
            raise VideoError(f"decoding {self._label} failed: {exc}") from exc
        if not frames:
            raise VideoError(f"start frame {start} is past the end of {self._label}")
        return torch.from_numpy(np.stack(frames))

    def __getitem__(self, key: int | slice) -> torch.Tensor:
        """``reader[i]`` -> uint8 ``(h, w, 3)``; ``reader[a:b]`` -> uint8 ``(f, h, w, 3)`` (step 1)."""
        if isinstance(key, slice):
            begin, end, step = key.indices(len(self))
            if step != 1:
                raise InputError("VideoReader slices support step 1 only")
            return self.read(begin, max(0, end - begin))
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
            raise InputError(f"frame index must be an int or a slice, got {key!r}")
        index = int(key)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"frame {key} out of range for {self._label} ({len(self)} frames)")
        return self.read(index, 1)[0]

    def __iter__(self) -> Any:
        """Yield frames uint8 ``(h, w, 3)`` from the first, decoding one at a time."""
        for _, frame in self._decode_all():
            yield torch.from_numpy(frame.to_ndarray(format="rgb24"))

    def close(self) -> None:
        """Close the file."""
        self._closed = True
        self._container.close()

    def _container_open(self) -> bool:
        return not getattr(self, "_closed", False)

    def __repr__(self) -> str:
        return (
            f"VideoReader({os.fspath(self.path)!r}, {self.width}x{self.height}, "
            f"fps={self.fps:g}, frames={self._length if self._length is not None else '?'})"
        )


def read_video(
    path: str | os.PathLike[str], *, start_frame: int = 0, num_frames: int | None = None
) -> tuple[torch.Tensor, float]:
    """Read the frames of a video file.

    Parameters
    ----------
    path
        A video file.
    start_frame
        Index of the first frame to read.
    num_frames
        How many frames; ``None`` reads to the end.

    Returns
    -------
    frames : torch.Tensor
        uint8 ``(f, h, w, 3)``.
    fps : float
        Frames per second.

    Raises
    ------
    VideoError
        If the file cannot be read or ``start_frame`` is past its end.

    Notes
    -----
    The audio track is read with ``emo.load_audio(path)``.
    """
    with VideoReader(path) as reader:
        return reader.read(start_frame, num_frames), reader.fps
