"""A writer that keeps the video in memory, for notebooks and tests."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from emo.io.audio_stream import AudioReader
from emo.io.writers.base import VideoWriterBase, WriterSession, WrittenVideo

__all__ = ["MemoryWriter"]


class _MemorySession(WriterSession):
    streams_audio = True  # reads only the samples the video lasts

    def __init__(self, writer: MemoryWriter, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.writer = writer
        self.chunks: list[torch.Tensor] = []

    def set_content_signer(self, signer: Any) -> None:
        """Nothing to sign: the video stays in memory (sign the file you write it to)."""

    def _write_frames(self, frames: np.ndarray) -> None:
        self.chunks.append(torch.from_numpy(frames.copy()))

    def _finish(self) -> WrittenVideo:
        audio = None
        source = self.audio_source()
        if source is not None:
            fitted = AudioReader(source).take(self.audio_samples())  # trimmed or padded
            audio = torch.from_numpy(
                np.array(fitted, dtype=np.float32)
            )  # a copy: never alias the input
        result = WrittenVideo(
            path=None,
            num_frames=self.num_frames,
            fps=self.fps,
            width=self.width,
            height=self.height,
            sample_rate=self.sample_rate if audio is not None else None,
            frames=torch.cat(self.chunks),
            audio=audio,
        )
        self.chunks = []
        self.writer.last = result
        return result

    def _abort(self) -> None:
        self.chunks = []


class MemoryWriter(VideoWriterBase):
    """Keep the frames as a uint8 tensor ``(f, h, w, 3)`` and the audio (registry name ``memory``).

    ``close()`` returns a :class:`~emo.io.writers.base.WrittenVideo` whose ``frames``
    and ``audio`` (float32 ``(c, n)``, trimmed or padded to the video) are set; the
    writer also keeps it as :attr:`last`. Memory grows with the video, unlike the
    file writers. It claims the paths ``"memory"``, ``":memory:"`` and ``"memory://..."``;
    the path is otherwise ignored.

    Attributes
    ----------
    last
        The result of the last closed session, or ``None``.
    """

    name = "memory"
    description = "keep frames and audio in memory (notebooks, tests)"

    def __init__(self) -> None:
        self.last: WrittenVideo | None = None

    def can_write(self, path: str | os.PathLike[str] | None) -> bool:
        """Return true for ``None``, ``"memory"``, ``":memory:"`` and ``"memory://..."``."""
        if path is None:
            return True
        text = path if isinstance(path, str) else None
        return text is not None and (text in ("memory", ":memory:") or text.startswith("memory:"))

    def open(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        fps: Any,
        width: int,
        height: int,
        audio: Any = None,
        sample_rate: int | None = None,
        **options: Any,
    ) -> WriterSession:
        """Start collecting frames; see :meth:`VideoWriterBase.open`. ``path`` is ignored."""
        self.options(options)
        return _MemorySession(
            self, fps=fps, width=width, height=height, audio=audio, sample_rate=sample_rate
        )

    def write(
        self,
        frames: Any,
        path: str | os.PathLike[str] | None = None,
        *,
        fps: Any,
        audio: Any = None,
        sample_rate: int | None = None,
        **options: Any,
    ) -> WrittenVideo:
        """Collect all ``frames`` ``(f, h, w, 3)`` at once; ``path`` may be left out.

        Returns
        -------
        WrittenVideo
            With ``frames`` uint8 ``(f, h, w, 3)`` and ``audio`` float32 ``(c, n)`` set.
        """
        return super().write(
            frames, "memory", fps=fps, audio=audio, sample_rate=sample_rate, **options
        )
