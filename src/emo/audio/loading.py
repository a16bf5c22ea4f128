"""Loading audio from files and arrays: mono float32 at the rate you ask for.

Files are decoded block by block and resampled on the fly, so even hours of audio
never sit in memory twice: only the output (mono, at the requested rate) grows.

* WAV, FLAC, OGG/Vorbis, AIFF, ... are read with ``soundfile`` (libsndfile);
* MP3, M4A/AAC, Opus and the audio track of video files (MP4, MOV, WebM, MKV, ...)
  are decoded with PyAV (FFmpeg); a file soundfile cannot read goes to PyAV too;
* channels are averaged to mono; integer samples are scaled to ``[-1, 1)``;
* rates are converted with :func:`emo.audio.resampling.resample` (anti-aliased
  polyphase windowed sinc).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import torch

from emo.audio.resampling import StreamingResampler, resample
from emo.errors import AudioError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["SOUNDFILE_EXTENSIONS", "AudioSource", "audio_duration", "load_audio"]

AudioSource = Union[str, "os.PathLike[str]", np.ndarray, torch.Tensor]
"""What :func:`load_audio` accepts: a file path, a numpy array or a torch tensor."""

SOUNDFILE_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".aifc", ".au", ".snd", ".w64",
     ".rf64", ".caf"}
)  # fmt: skip
"""File suffixes read with soundfile first; everything else goes to PyAV."""

_BLOCK = 1 << 18  # input frames per decoded block


#: Output beyond this many bytes is kept in a temporary file mapped into memory (see _Growing).
_FILE_BACKED_BYTES = 64 << 20  # about 17 minutes at 16 kHz


class _Growing:
    """A float32 buffer that grows in place, then is trimmed.

    Long audio (more than :data:`_FILE_BACKED_BYTES`) is kept in an anonymous
    temporary file mapped into memory: the kernel pages it in and out as needed, so
    a 2-hour audio book costs disk space, not resident memory. The file has no name
    (it is unlinked as it is created), so nothing is left behind even on SIGKILL.
    """

    def __init__(self, capacity: int) -> None:
        self.size = 0
        self._file: Any = None
        self.array: np.ndarray = np.empty(0, dtype=np.float32)
        self._allocate(max(capacity, 1024))

    def _allocate(self, capacity: int) -> None:
        if self._file is None and capacity * 4 <= _FILE_BACKED_BYTES:
            self.array.resize(capacity, refcheck=False)
            return
        if self._file is None:
            import tempfile

            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the buffer
        else:
            self.array.flush()  # type: ignore[attr-defined]
        self._file.truncate(capacity * 4)
        mapped = np.memmap(self._file, dtype=np.float32, mode="r+", shape=(capacity,))
        if not isinstance(self.array, np.memmap):
            mapped[: self.size] = self.array[: self.size]
        self.array = mapped

    def append(self, values: torch.Tensor) -> None:
        n = values.numel()
        if self.size + n > self.array.size:
            self._allocate(max(2 * self.array.size, self.size + n))
        self.array[self.size : self.size + n] = values.numpy()
        self.size += n

    def finish(self) -> torch.Tensor:
        if self._file is None:
            self.array.resize(self.size, refcheck=False)
            return torch.from_numpy(self.array)
        # The map keeps the (nameless) file alive; the tensor keeps the map alive.
        return torch.from_numpy(self.array[: self.size])


def _check_rate(name: str, rate: Any) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise AudioError(f"{name} must be a positive int (Hz), got {rate!r}")
    return int(rate)


class _Sink:
    """Down-mixed blocks in, resampled mono out; checks every block for NaN/inf."""

    def __init__(self, label: str, out_rate: int, estimate_frames: int) -> None:
        self.label = label
        self.out_rate = out_rate
        self.resampler: StreamingResampler | None = None
        self.in_rate = 0
        self.frames = 0
        self.out = _Growing(estimate_frames)

    def push(self, mono: np.ndarray, rate: int) -> None:
        if self.resampler is None:
            self.resampler = StreamingResampler(rate, self.out_rate)
            self.in_rate = rate
        elif rate != self.in_rate:
            raise AudioError(
                f"{self.label} changes sample rate mid-stream ({self.in_rate} -> {rate} Hz); "
                "convert it to a constant rate first"
            )
        finite = np.isfinite(mono)
        if not finite.all():
            first = self.frames + int(np.argmin(finite))
            raise AudioError(
                f"{self.label} holds NaN or infinite samples (first at {first / rate:.3f} s); "
                "the file is corrupt or was written from broken data; re-export it"
            )
        self.frames += mono.shape[0]
        self.out.append(self.resampler.push(torch.from_numpy(np.ascontiguousarray(mono))))

    def finish(self) -> torch.Tensor:
        if self.resampler is None or self.frames == 0:
            raise AudioError(
                f"{self.label} has no audio samples (zero length); pass a non-empty file"
            )
        self.out.append(self.resampler.flush())
        return self.out.finish()


def _soundfile_blocks(path: str, label: str) -> tuple[int, int, Iterator[np.ndarray]]:
    """Open with soundfile; return ``(rate, frames, blocks)`` or raise ``RuntimeError``."""
    import soundfile as sf

    handle = sf.SoundFile(path)

    def blocks() -> Iterator[np.ndarray]:
        with handle:
            try:
                while True:
                    block = handle.read(_BLOCK, dtype="float32", always_2d=True)
                    if block.shape[0] == 0:
                        return
                    yield block.mean(axis=1, dtype=np.float32)
            except sf.LibsndfileError as exc:
                raise AudioError(f"{label} is corrupt: decoding failed ({exc})") from exc

    return int(handle.samplerate), int(handle.frames), blocks()


def _load_soundfile(path: str, label: str, sample_rate: int) -> torch.Tensor | None:
    """Load through soundfile; ``None`` if libsndfile does not recognise the file."""
    import soundfile as sf

    try:
        rate, frames, blocks = _soundfile_blocks(path, label)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return None
    sink = _Sink(label, sample_rate, math.ceil(frames * sample_rate / max(rate, 1)) + 16)
    for mono in blocks:
        sink.push(mono, rate)
    return sink.finish()


def _open_av(path: str, label: str) -> Any:
    import av

    try:
        return av.open(path, metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise AudioError(
            f"{label} is not an audio or video file FFmpeg can read, or it is corrupt ({exc}); "
            "pass a WAV, FLAC, OGG, MP3, M4A, Opus or video file"
        ) from exc


def _load_av(path: str, label: str, sample_rate: int) -> torch.Tensor:
    import av

    container = _open_av(path, label)
    with container:
        if not container.streams.audio:
            raise AudioError(f"{label} has no audio track; pass a file with sound")
        stream = container.streams.audio[0]
        duration = _av_duration(container, stream) or 0.0
        sink = _Sink(label, sample_rate, int(duration * sample_rate) + 1024)
        planar = av.AudioResampler(format="fltp")
        try:
            for frame in container.decode(stream):
                for converted in planar.resample(frame):
                    array = converted.to_ndarray()  # (channels, samples)
                    sink.push(array.mean(axis=0, dtype=np.float32), converted.sample_rate)
            for converted in planar.resample(None):
                sink.push(
                    converted.to_ndarray().mean(axis=0, dtype=np.float32), converted.sample_rate
                )
        except av.FFmpegError as exc:
            raise AudioError(f"{label} is corrupt: decoding failed ({exc}); re-export it") from exc
        return _trim_codec_padding(sink.finish(), stream, sample_rate)


def _trim_codec_padding(waveform: torch.Tensor, stream: Any, sample_rate: int) -> torch.Tensor:
    """Drop the silence a codec pads its last frame with (AAC: up to 1024 samples).

    Only the stream's own duration is trusted, and only an excess shorter than two codec
    frames is cut, so a wrong duration estimate never removes real audio.
    """
    if stream.duration is None or stream.time_base is None or not stream.rate:
        return waveform
    expected = round(float(stream.duration * stream.time_base) * sample_rate)
    slack = math.ceil(2048 * sample_rate / int(stream.rate))
    if 0 < waveform.shape[0] - expected <= slack:
        view = waveform[:expected]
        # A file-backed waveform (long audio) stays so; a short one drops the padding's memory.
        return view if expected * 4 > _FILE_BACKED_BYTES else view.clone()
    return waveform


def _av_duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / 1_000_000
    return None


def _file_label(source: str | os.PathLike[str]) -> tuple[str, str]:
    if not isinstance(source, (str, os.PathLike)) or not isinstance(os.fspath(source), str):
        raise AudioError(
            f"an audio file path must be a str or os.PathLike, got {type(source).__name__}"
        )
    path = os.fspath(source)
    label = f"audio file {path!r}"
    p = Path(path)
    if not p.exists():
        raise AudioError(f"{label} does not exist; check the path")
    if p.is_dir():
        raise AudioError(f"{label} is a directory; pass an audio or video file")
    return path, label


def _array_to_mono(array: np.ndarray | torch.Tensor, label: str) -> torch.Tensor:
    if isinstance(array, np.ndarray):
        if array.dtype == np.uint8:
            array = (array.astype(np.float32) - 128.0) / 128.0
        elif np.issubdtype(array.dtype, np.integer):
            bits = np.iinfo(array.dtype).bits
            array = array.astype(np.float32) / float(2 ** (bits - 1))
        elif not np.issubdtype(array.dtype, np.floating):
            raise AudioError(f"{label} has dtype {array.dtype}; pass float or integer samples")
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    else:
        if array.is_meta:
            raise AudioError(f"{label} is on the meta device (no data); pass real samples")
        tensor = array.detach().cpu()
        if tensor.dtype == torch.uint8:
            tensor = (tensor.float() - 128.0) / 128.0
        elif tensor.dtype in (torch.int8, torch.int16, torch.int32, torch.int64):
            bits = torch.iinfo(tensor.dtype).bits
            tensor = tensor.float() / float(2 ** (bits - 1))
        elif not tensor.is_floating_point():
            raise AudioError(f"{label} has dtype {tensor.dtype}; pass float or integer samples")
        tensor = tensor.float()
    if tensor.dim() == 2:
        # The shorter axis holds the channels: (samples, channels) or (channels, samples).
        channel_axis = 1 if tensor.shape[1] <= tensor.shape[0] else 0
        tensor = tensor.mean(dim=channel_axis)
    elif tensor.dim() != 1:
        raise AudioError(
            f"{label} has {tensor.dim()} dimensions; pass (samples,), (samples, channels) "
            "or (channels, samples)"
        )
    if tensor.numel() == 0:
        raise AudioError(f"{label} has no samples (zero length)")
    finite = torch.isfinite(tensor)
    if not bool(finite.all()):
        first = int(torch.argmin(finite.to(torch.uint8)))
        raise AudioError(f"{label} holds NaN or infinite samples (first at index {first})")
    return tensor.contiguous()


def load_audio(
    source: AudioSource, *, sample_rate: int, source_rate: int | None = None
) -> torch.Tensor:
    """Load audio as a mono float32 tensor at ``sample_rate``.

    Parameters
    ----------
    source
        A path to an audio file (WAV, FLAC, OGG, MP3, M4A/AAC, Opus, ...) or to a video
        file with an audio track (MP4, MOV, WebM, MKV); or a numpy array / torch tensor
        of shape ``(samples,)``, ``(samples, channels)`` or ``(channels, samples)`` (the
        shorter axis is taken as channels), float or integer (integers are scaled to
        ``[-1, 1)``).
    sample_rate
        Rate of the returned signal in Hz (the audio encoder's ``sample_rate``).
    source_rate
        Rate of an array ``source`` in Hz; required for arrays. Ignored for files,
        which state their own rate.

    Returns
    -------
    torch.Tensor
        ``(samples,)`` float32 on the CPU, ``samples = ceil(n * sample_rate / rate)``
        for ``n`` input samples at ``rate``. A silent input gives zeros (a still face).

    Raises
    ------
    AudioError
        If the file is missing, a directory, not audio (or has no audio track), corrupt,
        zero-length, holds NaN/inf samples; if an array comes without ``source_rate``
        or has an unsupported shape or dtype.

    Examples
    --------
    >>> import numpy as np
    >>> stereo = np.zeros((44100, 2), dtype=np.int16)
    >>> load_audio(stereo, sample_rate=16000, source_rate=44100).shape
    torch.Size([16000])
    """
    rate = _check_rate("sample_rate", sample_rate)
    if isinstance(source, (np.ndarray, torch.Tensor)):
        label = f"audio array of shape {tuple(source.shape)}"
        if source_rate is None:
            raise AudioError(f"{label} needs source_rate=<its sample rate in Hz>")
        src = _check_rate("source_rate", source_rate)
        mono = _array_to_mono(source, label)
        return resample(mono, src, rate).contiguous()
    if not isinstance(source, (str, os.PathLike)):
        raise AudioError(
            f"cannot load audio from a {type(source).__name__}; pass a path, a numpy array "
            "or a torch tensor"
        )
    path, label = _file_label(source)
    if os.path.getsize(path) == 0:
        raise AudioError(f"{label} is empty (0 bytes)")
    waveform = None
    if Path(path).suffix.lower() in SOUNDFILE_EXTENSIONS:
        waveform = _load_soundfile(path, label, rate)
    if waveform is None:
        waveform = _load_av(path, label, rate)
    return waveform


def audio_duration(source: str | os.PathLike[str]) -> float:
    """Duration of an audio (or video's audio) file in seconds, read from its headers.

    Falls back to decoding when the container does not state a duration.

    Parameters
    ----------
    source
        Path to the file.

    Raises
    ------
    AudioError
        If the file is missing, not audio or has no audio track.
    """
    path, label = _file_label(source)
    if Path(path).suffix.lower() in SOUNDFILE_EXTENSIONS:
        import soundfile as sf

        try:
            info = sf.info(path)
            return float(info.frames) / float(info.samplerate)
        except (sf.LibsndfileError, RuntimeError, TypeError):
            pass
    container = _open_av(path, label)
    with container:
        if not container.streams.audio:
            raise AudioError(f"{label} has no audio track; pass a file with sound")
        stream = container.streams.audio[0]
        duration = _av_duration(container, stream)
    if duration is not None:
        return duration
    return load_audio(path, sample_rate=8000).numel() / 8000.0
