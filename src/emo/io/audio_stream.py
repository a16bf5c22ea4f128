"""Audio read block by block at its own rate and channels: what the video writers mux.

A generated video keeps the sound of its source: a 48 kHz stereo song is muxed at
48 kHz in stereo, not as the 16 kHz mono copy the audio encoder hears. Reading it
block by block keeps memory bounded by a block (64 Ki samples), whatever the length:

* :class:`FileAudioStream` decodes a file (soundfile for WAV/FLAC/OGG/AIFF, PyAV
  for the rest and for files with more than two channels, which FFmpeg downmixes to
  stereo);
* :class:`ArrayAudioStream` walks an array without copying it;
* :class:`ResampledAudioStream` converts another stream's rate and channel count
  on the fly (FFmpeg's resampler);
* :class:`AudioReader` hands out exactly the number of samples asked for, zeros
  past the end, so a track can be fitted to the video's duration.

Every stream yields float32 ``(c, n)`` blocks with ``c`` = 1 or 2.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from emo.errors import AudioError
from emo.io._closing import ClosingContext

__all__ = [
    "ArrayAudioStream",
    "AudioReader",
    "AudioStream",
    "FileAudioStream",
    "ResampledAudioStream",
    "open_audio_stream",
]

#: Samples per block read from a file.
BLOCK = 1 << 16
_SOUNDFILE_SUFFIXES = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".aifc", ".au", ".snd", ".w64",
     ".rf64", ".caf"}
)  # fmt: skip


class AudioStream(ClosingContext):
    """Audio read once, in order: float32 ``(channels, n)`` blocks at ``sample_rate``.

    Attributes
    ----------
    sample_rate
        Samples per second.
    channels
        1 (mono) or 2 (stereo).
    label
        What to call the source in error messages.
    """

    sample_rate: int
    channels: int
    label: str = "audio"

    @abstractmethod
    def read(self, count: int) -> np.ndarray:
        """Return up to ``count`` next samples, float32 ``(channels, k)``; ``k == 0`` at the end."""

    def close(self) -> None:
        """Release the file or decoder (safe to call more than once)."""
        return None  # nothing to release for in-memory streams

    def read_all(self) -> np.ndarray:
        """Read what is left into one float32 ``(channels, n)`` array."""
        blocks = []
        while True:
            block = self.read(BLOCK)
            if block.shape[1] == 0:
                break
            blocks.append(block)
        if not blocks:
            return np.zeros((self.channels, 0), dtype=np.float32)
        return np.concatenate(blocks, axis=1)


def _checked(block: np.ndarray, label: str, position: int, rate: int) -> np.ndarray:
    finite = np.isfinite(block)
    if not finite.all():
        first = position + int(np.argmin(finite.all(axis=0)))
        raise AudioError(
            f"{label} holds NaN or infinite samples (first at {first / rate:.3f} s); re-export it"
        )
    return np.clip(block, -1.0, 1.0) if block.size and np.abs(block).max() > 1.0 else block


class ArrayAudioStream(AudioStream):
    """A float32 ``(c, n)`` array as a stream; blocks are views, nothing is copied.

    Parameters
    ----------
    audio
        float32 ``(c, n)`` with ``c`` = 1 or 2, in ``[-1, 1]`` (see
        :func:`emo.io.writers.base.prepare_audio`).
    sample_rate
        Its rate in Hz.
    """

    def __init__(self, audio: np.ndarray, sample_rate: int) -> None:
        if audio.ndim != 2 or audio.shape[0] not in (1, 2):
            raise AudioError(f"audio must be (c, n) with c = 1 or 2, got {tuple(audio.shape)}")
        self.audio = audio
        self.sample_rate = int(sample_rate)
        self.channels = int(audio.shape[0])
        self.label = f"audio array of shape {tuple(audio.shape)}"
        self.position = 0

    def read(self, count: int) -> np.ndarray:
        """Next ``count`` samples (a view)."""
        block = self.audio[:, self.position : self.position + max(0, count)]
        self.position += block.shape[1]
        return block


class FileAudioStream(AudioStream):
    """An audio file (or a video's audio track) at its own rate, mono or stereo.

    Parameters
    ----------
    path
        The file. WAV, FLAC, OGG, AIFF... go through soundfile; MP3, M4A, Opus, video
        files and anything with more than two channels through PyAV (FFmpeg), which
        downmixes to stereo.

    Raises
    ------
    AudioError
        If the file is missing, not audio, has no audio track, or is corrupt.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise AudioError(
                f"an audio path must be a str or os.PathLike, got {type(path).__name__}"
            )
        self.path = os.fspath(path)
        self.label = f"audio file {self.path!r}"
        if not Path(self.path).is_file():
            raise AudioError(f"{self.label} does not exist or is not a file")
        self._sf: Any = None
        self._container: Any = None
        self._pending: list[np.ndarray] = []
        self._buffered = 0
        self._done = False
        self.position = 0
        if Path(self.path).suffix.lower() in _SOUNDFILE_SUFFIXES and self._open_soundfile():
            return
        self._open_av()

    def _open_soundfile(self) -> bool:
        import soundfile as sf

        try:
            handle = sf.SoundFile(self.path)
        except (sf.LibsndfileError, RuntimeError, TypeError):
            return False
        if handle.channels > 2:
            handle.close()
            return False
        self._sf = handle
        self.sample_rate = int(handle.samplerate)
        self.channels = int(handle.channels)
        return True

    def _open_av(self) -> None:
        import av

        try:
            container = av.open(self.path, metadata_errors="ignore")
        except av.FFmpegError as exc:
            raise AudioError(
                f"{self.label} is not an audio or video file FFmpeg can read ({exc})"
            ) from exc
        if not container.streams.audio:
            container.close()
            raise AudioError(f"{self.label} has no audio track; pass a file with sound")
        stream = container.streams.audio[0]
        self._container = container
        self.sample_rate = int(stream.rate or stream.codec_context.sample_rate)
        self.channels = 1 if int(stream.channels or 1) == 1 else 2
        layout = "mono" if self.channels == 1 else "stereo"
        self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=self.sample_rate)
        self._frames = container.decode(stream)

    def _decode_more(self) -> None:
        import av

        try:
            frame = next(self._frames, None)
            converted = self._resampler.resample(frame)
        except av.FFmpegError as exc:
            raise AudioError(
                f"{self.label} is corrupt: decoding failed ({exc}); re-export it"
            ) from exc
        if frame is None:
            self._done = True
        for out in converted:
            block = np.ascontiguousarray(out.to_ndarray(), dtype=np.float32)
            self._pending.append(block)
            self._buffered += block.shape[1]

    def read(self, count: int) -> np.ndarray:
        """Next ``count`` samples, fewer only at the end."""
        count = max(0, count)
        if self._sf is not None:
            import soundfile as sf

            try:
                block = self._sf.read(count, dtype="float32", always_2d=True).T
            except sf.LibsndfileError as exc:
                raise AudioError(f"{self.label} is corrupt: decoding failed ({exc})") from exc
        else:
            while self._buffered < count and not self._done:
                self._decode_more()
            joined = (
                np.concatenate(self._pending, axis=1)
                if self._pending
                else np.zeros((self.channels, 0), np.float32)
            )
            block, rest = joined[:, :count], joined[:, count:]
            self._pending = [rest] if rest.shape[1] else []
            self._buffered = rest.shape[1]
        block = _checked(np.ascontiguousarray(block), self.label, self.position, self.sample_rate)
        self.position += block.shape[1]
        return block

    def close(self) -> None:
        """Close the file (safe to call more than once)."""
        if self._sf is not None:
            self._sf.close()
            self._sf = None
            self._done = True
        if self._container is not None:
            self._container.close()
            self._container = None
            self._done = True


class ResampledAudioStream(AudioStream):
    """Another stream converted to ``sample_rate`` and ``channels`` as it is read (FFmpeg).

    Parameters
    ----------
    source
        The stream to convert (closed with this one).
    sample_rate
        Output rate in Hz.
    channels
        Output channels, 1 or 2 (default: the source's).
    """

    def __init__(self, source: AudioStream, sample_rate: int, channels: int | None = None) -> None:
        import av

        self.source = source
        self.sample_rate = int(sample_rate)
        self.channels = int(channels or source.channels)
        if self.sample_rate <= 0 or self.channels not in (1, 2):
            raise AudioError(
                f"cannot resample to {sample_rate} Hz with {channels} channels; give a positive "
                "rate and 1 or 2 channels"
            )
        self.label = source.label
        self._in_layout = "mono" if source.channels == 1 else "stereo"
        out_layout = "mono" if self.channels == 1 else "stereo"
        self._resampler = av.AudioResampler(format="fltp", layout=out_layout, rate=self.sample_rate)
        self._pending: list[np.ndarray] = []
        self._buffered = 0
        self._done = False
        self._pts = 0

    def _convert_more(self) -> None:
        import av

        block = self.source.read(BLOCK)
        if block.shape[1] == 0:
            frames = self._resampler.resample(None)
            self._done = True
        else:
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(block, dtype=np.float32), format="fltp", layout=self._in_layout
            )
            frame.sample_rate = self.source.sample_rate
            frame.pts = self._pts
            self._pts += block.shape[1]
            frames = self._resampler.resample(frame)
        for out in frames:
            converted = np.ascontiguousarray(out.to_ndarray(), dtype=np.float32)
            self._pending.append(converted)
            self._buffered += converted.shape[1]

    def read(self, count: int) -> np.ndarray:
        """Next ``count`` converted samples, fewer only at the end."""
        count = max(0, count)
        while self._buffered < count and not self._done:
            self._convert_more()
        if not self._pending:
            return np.zeros((self.channels, 0), np.float32)
        joined = np.concatenate(self._pending, axis=1)
        block, rest = joined[:, :count], joined[:, count:]
        self._pending = [rest] if rest.shape[1] else []
        self._buffered = rest.shape[1]
        return block

    def close(self) -> None:
        """Close the source."""
        self.source.close()


class AudioReader:
    """Exactly the samples asked for from a stream, zeros once it has ended.

    Parameters
    ----------
    stream
        The stream to read.
    """

    def __init__(self, stream: AudioStream) -> None:
        self.stream = stream
        self.ended = False

    def take(self, count: int) -> np.ndarray:
        """The next ``count`` samples ``(channels, count)``, zero-padded past the stream's end."""
        parts = []
        got = 0
        while got < count and not self.ended:
            block = self.stream.read(count - got)
            if block.shape[1] == 0:
                self.ended = True
                break
            parts.append(block)
            got += block.shape[1]
        if got < count:
            parts.append(np.zeros((self.stream.channels, count - got), dtype=np.float32))
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return np.zeros((self.stream.channels, 0), dtype=np.float32)
        return np.concatenate(parts, axis=1)


def open_audio_stream(source: Any, *, source_rate: int | None = None) -> AudioStream:
    """An :class:`AudioStream` of ``source`` at its own rate and channel count.

    Parameters
    ----------
    source
        A file path, an :class:`AudioStream` (returned as is), or a numpy array / torch
        tensor ``(n,)``, ``(n, c)`` or ``(c, n)`` (the shorter axis is the channels; more
        than two channels are averaged to mono). Integer samples are scaled to ``[-1, 1)``.
    source_rate
        The rate of an array, in Hz (required for arrays).

    Raises
    ------
    AudioError
        On a missing or unreadable file, or an array without ``source_rate``.
    """
    if isinstance(source, AudioStream):
        return source
    if isinstance(source, (str, os.PathLike)):
        return FileAudioStream(source)
    import torch

    if isinstance(source, torch.Tensor):
        tensor = source.detach().cpu()
        source = tensor.numpy() if not tensor.is_floating_point() else tensor.float().numpy()
    if not isinstance(source, np.ndarray):
        raise AudioError(
            f"cannot mux audio from a {type(source).__name__}; pass a path, an array or an AudioStream"
        )
    if source_rate is None:
        raise AudioError(f"audio array of shape {tuple(source.shape)} needs source_rate (Hz)")
    array = source
    if array.dtype == np.uint8:
        array = (array.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.float32) / float(2 ** (np.iinfo(array.dtype).bits - 1))
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 1:
        array = array[None]
    elif array.ndim == 2 and array.shape[1] < array.shape[0]:
        array = array.T  # (n, c) -> (c, n)
    if array.ndim != 2 or array.shape[1] == 0:
        raise AudioError(
            f"audio array of shape {tuple(source.shape)} is not (n,), (n, c) or (c, n)"
        )
    if array.shape[0] > 2:
        array = array.mean(axis=0, keepdims=True)
    array = _checked(array, "audio array", 0, int(source_rate))
    return ArrayAudioStream(np.ascontiguousarray(array), int(source_rate))
