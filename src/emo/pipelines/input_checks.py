"""Size checks on a generation's inputs, run before any work (see :mod:`emo.limits`).

Only headers and shapes are read: an image file's stated size, an audio file's
stated duration, an array's length. ``emo generate`` runs them before it loads a
model, the pipeline before it decodes anything.
"""

from __future__ import annotations

import os
from typing import Any

from emo.limits import check_audio_seconds, check_frame_size, check_image_size

__all__ = ["check_generation_inputs"]


def _check_image(image: Any) -> None:
    if isinstance(image, (str, os.PathLike)) and os.path.isfile(image):
        from emo.io.image_header import image_dimensions

        stated = image_dimensions(image)
        if stated is not None:
            check_image_size(*stated, repr(os.fspath(image)))


def _check_audio(audio: Any, audio_rate: int | None) -> None:
    if isinstance(audio, (str, os.PathLike)):
        if not os.path.isfile(audio) or os.path.getsize(audio) == 0:
            return  # load_audio explains what is wrong with it
        from emo.audio.loading import audio_duration
        from emo.errors import AudioError

        try:
            seconds = audio_duration(audio)
        except AudioError:
            return  # the same error comes, with its full message, from load_audio
        check_audio_seconds(seconds, f"audio file {os.fspath(audio)!r}")
        return
    shape = getattr(audio, "shape", None)
    if shape is None or not shape or audio_rate is None or isinstance(audio_rate, bool):
        return
    if not isinstance(audio_rate, int) or audio_rate <= 0:
        return
    samples = max(int(n) for n in shape) if len(shape) <= 2 else 0
    check_audio_seconds(samples / audio_rate, f"audio array of shape {tuple(shape)}")


def check_generation_inputs(
    image: Any, audio: Any, *, width: int, height: int, audio_rate: int | None = None
) -> None:
    """Refuse inputs beyond the limits of :mod:`emo.limits`, reading only headers and shapes.

    Parameters
    ----------
    image
        The portrait (only a file path is checked here; arrays are checked on loading).
    audio
        An audio file path, or an array ``(n,)`` / ``(n, c)`` / ``(c, n)`` at ``audio_rate``.
    width, height
        The frame size to generate.
    audio_rate
        Sample rate of an audio array.

    Raises
    ------
    emo.errors.InputTooLargeError
        :class:`~emo.errors.ImageTooLargeError`, :class:`~emo.errors.AudioTooLongError`, or
        the base class for a frame size; each says the limit and how to raise it.
    """
    check_frame_size(int(width), int(height), "output size")
    _check_image(image)
    _check_audio(audio, audio_rate)
