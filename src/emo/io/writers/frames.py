"""Numbered PNG frames in a folder, plus the audio as a WAV file."""

from __future__ import annotations

import os
import re
from fractions import Fraction
from typing import Any

import numpy as np

from emo.errors import InputError, VideoError
from emo.io.audio_stream import BLOCK, AudioReader, AudioStream
from emo.io.writers.base import FolderSession, VideoWriterBase, WrittenVideo

__all__ = ["PNGFramesWriter"]


class _FramesSession(FolderSession):
    streams_audio = True

    def __init__(self, settings: dict[str, Any], **kwargs: Any) -> None:
        self.pattern = str(settings["pattern"])
        self.compression = int(settings["compression_level"])
        self.audio_name = str(settings["audio_name"])
        super().__init__(**kwargs)

    def owns(self, name: str) -> bool:
        # Only the frame files of an earlier run (named by the pattern) and its audio file.
        if name == self.audio_name:
            return True
        return any(self.pattern.format(int(digits)) == name for digits in re.findall(r"\d+", name))

    def _write_frames(self, frames: np.ndarray) -> None:
        import av

        codec = av.CodecContext.create("png", "w")
        codec.width, codec.height = self.width, self.height
        codec.pix_fmt = "rgb24"
        codec.time_base = Fraction(1, 1)
        codec.options = {"compression_level": str(self.compression)}
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            data = b"".join(bytes(packet) for packet in codec.encode(frame))
            if self.metadata:
                from emo.provenance.label import add_png_text

                data = add_png_text(data, self.metadata)
            name = self.pattern.format(self.num_frames + i)
            with open(self.temp_path / name, "wb") as handle:
                handle.write(data)

    def _finish(self) -> WrittenVideo:
        rate = None
        source = self.audio_source()
        if source is not None:
            rate = source.sample_rate
            self._write_wav(AudioReader(source), self.audio_samples(rate), source)
        path = self._publish()
        return WrittenVideo(path, self.num_frames, self.fps, self.width, self.height, rate)

    def _write_wav(self, reader: AudioReader, total: int, source: AudioStream) -> None:
        """16-bit WAV of ``total`` samples (trimmed or zero-padded), written block by block."""
        import av

        layout = "stereo" if source.channels == 2 else "mono"
        path = os.fspath(self.temp_path / self.audio_name)
        try:
            with av.open(path, "w", format="wav") as container:
                stream = container.add_stream("pcm_s16le", rate=source.sample_rate)
                stream.layout = layout
                for start in range(0, total, BLOCK):
                    block = reader.take(min(BLOCK, total - start))
                    pcm = np.clip(np.rint(block.T * 32767.0), -32768, 32767).astype(np.int16)
                    frame = av.AudioFrame.from_ndarray(
                        pcm.reshape(1, -1), format="s16", layout=layout
                    )
                    frame.sample_rate = source.sample_rate
                    frame.pts = start
                    for packet in stream.encode(frame):
                        container.mux(packet)
                for packet in stream.encode(None):
                    container.mux(packet)
        except av.error.FFmpegError as exc:
            raise VideoError(f"cannot write the audio of {str(self.target)!r}: {exc}") from exc


class PNGFramesWriter(VideoWriterBase):
    """Numbered PNG files in a folder (registry name ``frames``).

    The target is a folder (a path without a suffix, or ending in ``/``); it is
    written as a whole and swapped into place on close. Audio, if any, is saved
    next to the frames as 16-bit PCM WAV, trimmed or padded to the video's length.

    Parameters
    ----------
    pattern
        File name of frame ``i``, a :meth:`str.format` pattern (``"{:06d}.png"``).
    compression_level
        zlib level 0 (fastest) to 9 (smallest); PNG is lossless at every level.
    audio_name
        File name of the audio.
    """

    name = "frames"
    description = "numbered PNG frames in a folder (+ audio.wav)"

    def __init__(
        self, pattern: str = "{:06d}.png", compression_level: int = 3, audio_name: str = "audio.wav"
    ) -> None:
        self._validate(pattern, compression_level, audio_name)

    @staticmethod
    def _validate(pattern: Any, level: Any, audio_name: Any) -> None:
        try:
            first, second = str(pattern).format(0), str(pattern).format(1)
        except (IndexError, KeyError, ValueError):
            raise InputError(
                f"frames pattern must format one integer, e.g. '{{:06d}}.png', got {pattern!r}"
            ) from None
        if first == second or "/" in first or os.sep in first:
            raise InputError(f"frames pattern {pattern!r} must give a distinct file name per frame")
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 9:
            raise InputError(f"compression_level must be an integer in [0, 9], got {level!r}")
        if not str(audio_name) or "/" in str(audio_name):
            raise InputError(f"audio_name must be a plain file name, got {audio_name!r}")

    def can_write(self, path: str | os.PathLike[str]) -> bool:
        """Return true for a folder: an existing directory, or a path with no suffix or ending in ``/``."""
        try:
            text = os.fspath(path)
        except TypeError:
            return False
        if not isinstance(text, str) or not text or text.startswith("memory"):
            return False
        if text.endswith(("/", os.sep)) or os.path.isdir(text):
            return True
        return not os.path.splitext(os.path.basename(text))[1]

    def open(
        self,
        path: str | os.PathLike[str],
        *,
        fps: Any,
        width: int,
        height: int,
        audio: Any = None,
        sample_rate: int | None = None,
        **options: Any,
    ) -> FolderSession:
        """Start writing frames into the folder ``path``; see :meth:`VideoWriterBase.open`."""
        settings = self.options(options)
        self._validate(settings["pattern"], settings["compression_level"], settings["audio_name"])
        return _FramesSession(
            settings,
            path=path,
            fps=fps,
            width=width,
            height=height,
            audio=audio,
            sample_rate=sample_rate,
        )
