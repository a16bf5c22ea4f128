"""The sound a generated video is muxed with: the source audio at its own rate and channels."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from emo.errors import InputError
from emo.io.audio_stream import AudioStream, ResampledAudioStream, open_audio_stream

__all__ = ["audio_for_mux"]


@contextmanager
def audio_for_mux(
    writer: Any, audio: Any, *, audio_rate: int | None, mux_sample_rate: int | None
) -> Iterator[tuple[Any, int | None]]:
    """The audio to hand ``writer.open``: the source itself, not the encoder's 16 kHz mono copy.

    A context manager: the source file is closed when the block ends.

    Parameters
    ----------
    writer
        The video-writer plugin instance.
    audio
        What the user passed to the pipeline: a path, an array or an
        :class:`~emo.io.audio_stream.AudioStream`.
    audio_rate
        The rate of an array ``audio``.
    mux_sample_rate
        Resample to this rate (Hz); ``None`` keeps the source's rate.

    Yields
    ------
    tuple
        ``(audio, sample_rate)`` for ``writer.open``. emo's writers get an
        :class:`~emo.io.audio_stream.AudioStream` that they read block by block as the
        video is written (memory bounded by a block, whatever the length) and
        ``sample_rate=None`` (the stream knows its rate); a duck-typed third-party
        writer gets one float32 ``(c, n)`` array and its rate.

    Raises
    ------
    InputError
        If ``mux_sample_rate`` is not a positive integer.
    """
    from emo.io.writers.base import VideoWriterBase

    if mux_sample_rate is not None and (
        isinstance(mux_sample_rate, bool)
        or not isinstance(mux_sample_rate, int)
        or mux_sample_rate <= 0
    ):
        raise InputError(
            f"mux_sample_rate must be a positive int (Hz) or None, got {mux_sample_rate!r}"
        )
    stream: AudioStream = open_audio_stream(audio, source_rate=audio_rate)
    if mux_sample_rate is not None and mux_sample_rate != stream.sample_rate:
        stream = ResampledAudioStream(stream, mux_sample_rate)
    with stream:
        if isinstance(writer, VideoWriterBase):
            yield stream, None
        else:
            yield stream.read_all(), stream.sample_rate
