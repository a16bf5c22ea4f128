"""The video-writer contract, its base classes and the input checks they share.

A writer plugin streams frames to a target: ``open()`` returns a session,
``session.write(frames)`` adds frames as they are generated and
``session.close(audio=...)`` finishes the file. Sessions are context managers;
an exception (Ctrl-C included) inside the ``with`` block aborts the session, and
an aborted session leaves nothing at the target path. File writers write
under a temporary name in the target's folder and rename it into place only on
a successful close, so an existing file at the target survives until the new one
is complete.

Every file session first claims its target (:class:`emo.io.claim.OutputClaim`): a
second writer of the same path fails with :class:`~emo.errors.OutputInUseError`
instead of mixing files, and temporaries that killed runs left for that path are
removed. Frame sizes above ``max_frame_pixels`` (:mod:`emo.limits`) are refused.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
import torch

from emo.errors import EMOWarning, InputError, VideoError
from emo.io.audio_stream import ArrayAudioStream, AudioStream
from emo.io.claim import OutputClaim, make_temporary
from emo.limits import check_frame_size
from emo.plugins.base import PluginBase

__all__ = [
    "FileSession",
    "FileSigner",
    "FolderSession",
    "VideoWriter",
    "VideoWriterBase",
    "VideoWriterSession",
    "WriterSession",
    "WrittenVideo",
    "as_video_frames",
    "fit_audio",
    "prepare_audio",
    "to_fraction",
]


@dataclass(frozen=True)
class WrittenVideo:
    """What a closed session wrote.

    Attributes
    ----------
    path
        The final file or folder (``None`` for the in-memory writer).
    num_frames
        Frames written.
    fps
        Frame rate, exact.
    width, height
        Frame size as stored (after any padding to even sizes).
    sample_rate
        Sample rate of the stored audio, ``None`` when there is no audio.
    frames
        Only for the in-memory writer: uint8 ``(f, h, w, 3)``.
    audio
        Only for the in-memory writer: float32 ``(c, n)`` trimmed or padded to the video.
    """

    path: Path | None
    num_frames: int
    fps: Fraction
    width: int
    height: int
    sample_rate: int | None = None
    frames: torch.Tensor | None = None
    audio: torch.Tensor | None = None

    @property
    def duration(self) -> float:
        """Video duration in seconds, ``num_frames / fps``."""
        return float(self.num_frames / self.fps)


def to_fraction(fps: Any) -> Fraction:
    """Return ``fps`` as an exact :class:`~fractions.Fraction`.

    NTSC rates given as floats map to their exact value: ``29.97`` becomes
    ``30000/1001`` and ``23.976`` becomes ``24000/1001``.

    Raises
    ------
    InputError
        If ``fps`` is not a positive finite number.
    """
    if isinstance(fps, bool):
        raise InputError(f"fps must be a positive number, got {fps!r}")
    if isinstance(fps, Fraction):
        value = fps
    else:
        try:
            value = Fraction(str(fps)) if isinstance(fps, str) else Fraction(fps)
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"fps must be a positive number, got {fps!r}") from None
        if isinstance(fps, float):
            ntsc = round(fps * 1.001)
            if ntsc > 0 and abs(fps * 1.001 - ntsc) < 5e-3 and abs(fps - ntsc) > 1e-6:
                value = Fraction(ntsc * 1000, 1001)
            else:
                value = value.limit_denominator(1001)
    if value <= 0 or value > 1000:
        raise InputError(f"fps must be in (0, 1000], got {fps!r}")
    return value


def as_video_frames(frames: Any, *, name: str = "frames") -> np.ndarray:
    """Validate frames for a writer; return a contiguous uint8 numpy array ``(f, h, w, 3)``.

    Parameters
    ----------
    frames
        numpy or torch, uint8 or float in ``[0, 1]`` (clipped), ``(f, h, w, 3)``
        or one frame ``(h, w, 3)``.
    name
        What to call the input in error messages.

    Raises
    ------
    InputError
        On another type, shape or dtype, or NaN/inf values.
    """
    if isinstance(frames, torch.Tensor):
        tensor = frames.detach()
        if tensor.is_meta:
            raise InputError(f"{name} are a tensor on the meta device (no data); pass real frames")
        if tensor.dtype.is_floating_point:
            if not torch.isfinite(tensor).all():
                raise InputError(f"{name} hold NaN or inf values")
            tensor = (tensor.float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
        array = tensor.cpu().numpy()
    elif isinstance(frames, np.ndarray):
        array = frames
        if array.dtype.kind == "f":
            if not np.isfinite(array).all():
                raise InputError(f"{name} hold NaN or inf values")
            array = np.rint(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        raise InputError(
            f"{name} must be a numpy array or torch tensor (f, h, w, 3), got {type(frames).__name__}"
        )
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3:
        raise InputError(
            f"{name} must have shape (f, h, w, 3) (RGB, channels last), got {tuple(array.shape)}"
        )
    if array.dtype != np.uint8:
        raise InputError(f"{name} must be uint8 or float in [0, 1], got dtype {array.dtype}")
    if 0 in array.shape[1:]:
        raise InputError(f"{name} have an empty size {tuple(array.shape)}")
    return np.ascontiguousarray(array)


def prepare_audio(audio: Any, sample_rate: Any) -> tuple[np.ndarray, int]:
    """Validate audio for muxing; return float32 ``(c, n)`` (``c`` = 1 or 2) and the rate.

    Parameters
    ----------
    audio
        numpy or torch ``(n,)`` mono, ``(c, n)`` or ``(n, c)`` with ``c`` in {1, 2};
        float in ``[-1, 1]`` or int16.
    sample_rate
        Samples per second (positive int).

    Raises
    ------
    InputError
        If the sample rate is missing or not positive, or the audio has a bad
        shape, dtype or NaN/inf values.
    """
    if sample_rate is None:
        raise InputError("audio was given without sample_rate; pass sample_rate=... (Hz)")
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, (int, float, np.integer, np.floating))
        or not np.isfinite(sample_rate)
        or not float(sample_rate).is_integer()
        or sample_rate <= 0
    ):
        raise InputError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    rate = int(sample_rate)
    if isinstance(audio, torch.Tensor) and audio.is_meta:
        raise InputError("audio is a tensor on the meta device (no data); pass real samples")
    if isinstance(audio, torch.Tensor):
        array = (
            audio.detach().cpu().float().numpy()
            if audio.is_floating_point()
            else (audio.detach().cpu().numpy())
        )
    elif isinstance(audio, np.ndarray):
        array = audio
    else:
        raise InputError(
            f"audio must be a numpy array or torch tensor (n,) or (c, n), got {type(audio).__name__}"
        )
    if array.ndim == 1:
        array = array[None]
    if array.ndim == 2 and array.shape[0] > 2 and array.shape[1] in (1, 2):
        array = array.T
    if array.ndim != 2 or array.shape[0] not in (1, 2):
        raise InputError(
            f"audio must be mono (n,) or (c, n) with 1 or 2 channels, got shape {tuple(array.shape)}"
        )
    if array.shape[1] == 0:
        raise InputError(
            "audio holds no samples (shape "
            f"{tuple(array.shape)}); pass audio=None for a silent video"
        )
    if array.dtype == np.int16:
        array = array.astype(np.float32) / 32768.0
    elif array.dtype.kind == "f":
        array = array.astype(np.float32, copy=False)
        if not np.isfinite(array).all():
            raise InputError("audio holds NaN or inf samples")
    else:
        raise InputError(f"audio must be float in [-1, 1] or int16, got dtype {array.dtype}")
    # Copy only when something must change: hours of audio are not duplicated needlessly.
    if array.min() < -1.0 or array.max() > 1.0:
        array = np.clip(array, -1.0, 1.0)
    return np.ascontiguousarray(array), rate


def fit_audio(audio: np.ndarray, sample_rate: int, num_frames: int, fps: Fraction) -> np.ndarray:
    """Trim or zero-pad ``(c, n)`` audio to exactly the video's duration ``num_frames / fps``."""
    target = round(Fraction(num_frames) / fps * sample_rate)
    if audio.shape[1] >= target:
        return audio[:, :target]
    return np.pad(audio, ((0, 0), (0, target - audio.shape[1])))


@runtime_checkable
class FileSigner(Protocol):
    """Signs a finished file into a new one (C2PA Content Credentials: :class:`emo.provenance.signing.ContentSigner`)."""

    def media_type(self, path: str | os.PathLike[str]) -> str | None:
        """The media type ``path`` is signed as, or ``None`` when its format cannot be signed."""
        ...

    def sign(self, source: Path, dest: Path, *, title: str, media_type: str | None = None) -> None:
        """Write ``source`` to ``dest`` signed; ``title`` is the published file's name."""
        ...


@runtime_checkable
class VideoWriterSession(Protocol):
    """An open, streaming write: ``write`` frames, then ``close``."""

    def write(self, frames: Any) -> None:
        """Append frames, uint8 or float in ``[0, 1]`` ``(f, h, w, 3)``."""
        ...

    def close(self, audio: Any = None, sample_rate: int | None = None) -> Any:
        """Finish the target, muxing ``audio`` if given."""
        ...


@runtime_checkable
class VideoWriter(Protocol):
    """The minimum contract of a video-writer plugin."""

    def can_write(self, path: str | os.PathLike[str]) -> bool:
        """Return true if this writer handles ``path`` (usually by its suffix)."""
        ...

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
    ) -> VideoWriterSession:
        """Start a streaming write to ``path``."""
        ...

    def write(
        self,
        frames: Any,
        path: str | os.PathLike[str],
        *,
        fps: Any,
        audio: Any = None,
        sample_rate: int | None = None,
        **options: Any,
    ) -> Any:
        """Write all ``frames`` ``(f, h, w, 3)`` to ``path`` in one call."""
        ...


class WriterSession(ABC):
    """Base class of writer sessions: checks inputs, counts frames, aborts on errors.

    Subclasses implement :meth:`_write_frames`, :meth:`_finish` and :meth:`_abort`.

    Parameters
    ----------
    fps
        Frame rate (any number; see :func:`to_fraction`).
    width, height
        Size of every frame.
    audio, sample_rate
        Audio known upfront (see :func:`prepare_audio`), an
        :class:`~emo.io.audio_stream.AudioStream` (read as the video is written; its rate
        is its own), or ``None``.

    Attributes
    ----------
    streams_audio
        True for sessions that read an ``AudioStream`` block by block; other sessions
        get it read into one array first (third-party subclasses keep working).
    """

    streams_audio: ClassVar[bool] = False

    def __init__(
        self, *, fps: Any, width: int, height: int, audio: Any = None, sample_rate: Any = None
    ) -> None:
        self.fps = to_fraction(fps)
        if isinstance(width, bool) or isinstance(height, bool):
            raise InputError("width and height must be integers")
        try:
            valid = int(width) > 0 and int(height) > 0
        except (TypeError, ValueError, OverflowError):
            valid = False
        if not valid:
            raise InputError(f"width and height must be positive integers, got {width}x{height}")
        self.width, self.height = int(width), int(height)
        check_frame_size(self.width, self.height, "video frame size")
        self.audio: np.ndarray | AudioStream | None = None
        self.sample_rate: int | None = None
        if audio is not None:
            self.audio, self.sample_rate = self._take_audio(audio, sample_rate)
        self.num_frames = 0
        self._closed = False
        self.metadata: dict[str, str] = {}

    def set_metadata(self, tags: Mapping[str, str]) -> None:
        """Tags for the file: MP4/WebM container tags, PNG text chunks, a GIF comment.

        The pipeline labels every generated video this way (see :mod:`emo.provenance`).

        Raises
        ------
        VideoError
            If frames were already written (the header is written with the first frame).
        """
        if self.num_frames:
            raise VideoError("set_metadata() must be called before the first write()")
        self.metadata.update({str(key): str(value) for key, value in tags.items()})

    @property
    def closed(self) -> bool:
        """True once the session was closed or aborted."""
        return self._closed

    def write(self, frames: Any) -> None:
        """Append frames.

        Parameters
        ----------
        frames
            uint8 or float in ``[0, 1]``, numpy or torch, ``(f, h, w, 3)`` or one
            frame ``(h, w, 3)``, of the size given to ``open``.

        Raises
        ------
        InputError
            On a bad array or a size that differs from the one given to ``open``
            (the session is then aborted).
        VideoError
            If the session is closed, or encoding fails (the session is then aborted).
        """
        if self._closed:
            raise VideoError("this writer session is closed; open a new one to write more frames")
        try:
            array = as_video_frames(frames)
            if array.shape[1:3] != (self.height, self.width):
                raise InputError(
                    f"frames of size {array.shape[2]}x{array.shape[1]} (w x h) do not match the "
                    f"{self.width}x{self.height} given to open()"
                )
            self._write_frames(array)
        except BaseException:
            self.abort()
            raise
        self.num_frames += array.shape[0]

    def close(self, audio: Any = None, sample_rate: Any = None) -> WrittenVideo:
        """Finish the video, mux the audio (trimmed or padded to the video) and publish it.

        Parameters
        ----------
        audio, sample_rate
            Audio to mux, if it was not given to ``open`` (give it to one of them, not both).

        Returns
        -------
        WrittenVideo
            What was written.

        Raises
        ------
        VideoError
            If no frame was written or encoding fails; nothing is left at the target.
        """
        if self._closed:
            raise VideoError("this writer session is already closed")
        try:
            if audio is not None:
                if self.audio is not None:
                    raise InputError("audio was already given to open(); give it only once")
                self.audio, self.sample_rate = self._take_audio(audio, sample_rate)
            if self.num_frames == 0:
                raise VideoError("no frames were written; call write(frames) before close()")
            result = self._finish()
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self._release_audio()
        return result

    def _take_audio(self, audio: Any, sample_rate: Any) -> tuple[np.ndarray | AudioStream, int]:
        if not isinstance(audio, AudioStream):
            return prepare_audio(audio, sample_rate)
        if sample_rate is not None and sample_rate != audio.sample_rate:
            raise InputError(
                f"sample_rate={sample_rate!r} contradicts the audio stream's own "
                f"{audio.sample_rate} Hz; leave sample_rate out for a stream"
            )
        if self.streams_audio:
            return audio, audio.sample_rate
        with audio:
            return prepare_audio(audio.read_all(), audio.sample_rate)

    def audio_source(self) -> AudioStream | None:
        """The session's audio as a stream from its start (arrays are wrapped, not copied)."""
        if self.audio is None or self.sample_rate is None:
            return None
        if isinstance(self.audio, AudioStream):
            return self.audio
        return ArrayAudioStream(self.audio, self.sample_rate)

    def audio_samples(self, rate: int | None = None) -> int:
        """Samples of audio that last exactly as long as the video, at ``rate`` (default: the audio's)."""
        return round(Fraction(self.num_frames) / self.fps * (rate or self.sample_rate or 0))

    def _release_audio(self) -> None:
        if isinstance(self.audio, AudioStream):
            with contextlib.suppress(Exception):
                self.audio.close()

    def abort(self) -> None:
        """Stop without publishing anything; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):  # cleanup must not hide the original error
            self._abort()
        self._release_audio()

    def __enter__(self) -> WriterSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.close()

    @abstractmethod
    def _write_frames(self, frames: np.ndarray) -> None:
        """Encode uint8 ``(f, h, w, 3)`` frames of the opened size."""

    @abstractmethod
    def _finish(self) -> WrittenVideo:
        """Flush, mux ``self.audio`` and publish the result."""

    @abstractmethod
    def _abort(self) -> None:
        """Release resources and delete partial output."""


def _check_target(path: str | os.PathLike[str], *, folder: bool) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not isinstance(os.fspath(path), str):
        raise VideoError(
            f"the output path must be a str or os.PathLike, got {type(path).__name__}; "
            "give a file name such as 'out.mp4'"
        )
    if not os.fspath(path):
        raise VideoError("the output path is an empty string; give a file name")
    target = Path(path).expanduser()
    if not folder and target.is_dir():
        raise VideoError(f"output path {os.fspath(path)!r} is a folder; give a file name")
    if not folder and target.exists() and not target.is_file():
        # A device (/dev/null), FIFO or socket: renaming the finished file onto it
        # would replace the special file itself.
        raise VideoError(
            f"output path {os.fspath(path)!r} is not a regular file (a device, pipe or "
            "socket); give the name of a regular file"
        )
    if folder and target.exists() and not target.is_dir():
        raise VideoError(
            f"output path {os.fspath(path)!r} is a file; the frames writer needs a folder"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VideoError(f"cannot create the folder of {os.fspath(path)!r}: {exc}") from exc
    return target


def _remove(path: str, claim: OutputClaim | None = None) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    if claim is not None:
        claim.release()


class _StagedSession(WriterSession):
    """A session that claims its target and writes to a temporary beside it (file or folder)."""

    target: Path
    claim: OutputClaim
    temp_path: Path
    content_signer: FileSigner | None = None

    def set_content_signer(self, signer: FileSigner) -> None:
        """Sign the finished output with ``signer`` before it is published.

        The pipeline gives one when C2PA signing is on (:mod:`emo.provenance.signing`):
        the finished temporary file (or each frame of a folder) is signed into a new
        temporary, which is what gets renamed into place, so the target is either
        signed or absent. A format the signer cannot sign (WebM) is published
        unsigned, with an :class:`~emo.errors.EMOWarning` now.

        Raises
        ------
        VideoError
            If the session is already closed.
        """
        if self.closed:
            raise VideoError("set_content_signer() must be called before close()")
        self.content_signer = signer
        if not self._signable(signer):
            warnings.warn(
                f"C2PA defines no Content Credentials for {self.target.suffix or 'this'} files: "
                f"{str(self.target)!r} is written unsigned (the watermark and label are "
                "written as always); write .mp4, .gif or PNG frames to sign",
                EMOWarning,
                stacklevel=2,
            )

    def _signable(self, signer: FileSigner) -> bool:
        return True

    def _claim_and_stage(
        self,
        path: str | os.PathLike[str],
        kind: Literal["file", "folder"],
        check: Callable[[], None] | None = None,
    ) -> None:
        self.target = _check_target(path, folder=kind == "folder")
        self.claim = OutputClaim(self.target).acquire()
        try:
            if check is not None:
                check()
            self.temp_path = make_temporary(self.target, kind)
        except BaseException:
            self.claim.release()
            raise
        # A session dropped without close() removes its temporary and releases the claim.
        self._finalizer = weakref.finalize(self, _remove, os.fspath(self.temp_path), self.claim)


class FileSession(_StagedSession):
    """A session that writes one file under a temporary name and renames it on success.

    The temporary file lives next to the target (``.<name>.emo-<random>.part``), so
    the final :func:`os.replace` is atomic; an existing target is replaced only then.
    The target is claimed (:class:`~emo.io.claim.OutputClaim`) for the session's
    life. A session dropped without ``close()`` deletes its temporary file.

    Parameters
    ----------
    path
        The target file.
    **kwargs
        See :class:`WriterSession`.
    """

    def __init__(self, path: str | os.PathLike[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._claim_and_stage(path, "file")

    def new_temporary(self) -> Path:
        """Create another temporary file next to the target (removed by the next run if killed)."""
        return make_temporary(self.target)

    def _signable(self, signer: FileSigner) -> bool:
        return signer.media_type(self.target) is not None

    def _signed(self, source: Path) -> Path:
        """``source`` signed into a new temporary (``source`` removed), or ``source`` unsigned."""
        signer = self.content_signer
        kind = signer.media_type(self.target) if signer is not None else None
        if signer is None or kind is None:
            return source
        signed = self.new_temporary()
        try:
            signer.sign(source, signed, title=self.target.name, media_type=kind)
        except BaseException:
            signed.unlink(missing_ok=True)
            raise
        os.unlink(source)
        return signed

    def _publish(self, source: Path | None = None) -> Path:
        """Sign (if a content signer was set) and rename ``source`` (default: the temporary file) onto the target."""
        final = self._signed(source or self.temp_path)
        try:
            os.replace(final, self.target)
        except OSError as exc:
            final.unlink(missing_ok=True)
            raise VideoError(
                f"cannot move the finished video to {str(self.target)!r}: {exc}"
            ) from exc
        self._finalizer.detach()
        self.claim.release()
        return self.target

    def _abort(self) -> None:
        self._finalizer()


class FolderSession(_StagedSession):
    """A session that fills a temporary folder and swaps it into place on success.

    An existing folder at the target is moved aside, the new one renamed in, and
    the old one deleted; it is never touched if the session fails.

    Parameters
    ----------
    path
        The target folder.
    **kwargs
        See :class:`WriterSession`.
    """

    def __init__(self, path: str | os.PathLike[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._claim_and_stage(path, "folder", check=self._check_replaceable)

    def owns(self, name: str) -> bool:
        """Whether an entry ``name`` of an existing target folder is this writer's output.

        An existing folder is replaced only when every entry in it is a regular file
        it owns (or it is empty), so a folder of other files is never deleted. The
        default owns nothing; subclasses name their own files.
        """
        return False

    def _check_replaceable(self) -> None:
        if not self.target.is_dir():
            return
        foreign = sorted(
            entry.name
            for entry in os.scandir(self.target)
            if not (entry.is_file(follow_symlinks=False) and self.owns(entry.name))
        )
        if foreign:
            raise VideoError(
                f"output folder {str(self.target)!r} already holds other files (e.g. "
                f"{foreign[0]!r}); writing replaces the whole folder, so give a new or empty "
                "folder"
            )

    def _sign_files(self) -> None:
        """Sign every file of the temporary folder that the content signer can sign, in place."""
        signer = self.content_signer
        if signer is None:
            return
        for entry in sorted(os.scandir(self.temp_path), key=lambda e: e.name):
            kind = signer.media_type(entry.name)
            if kind is None or not entry.is_file(follow_symlinks=False):
                continue
            signed = self.temp_path / f".{entry.name}.signed"
            signer.sign(Path(entry.path), signed, title=entry.name, media_type=kind)
            os.replace(signed, entry.path)

    def _publish(self) -> Path:
        """Sign the files (if a content signer was set) and swap the temporary folder into place."""
        self._sign_files()
        old: str | None = None
        try:
            if self.target.exists():
                old = os.fspath(make_temporary(self.target, "old"))
                os.replace(self.target, old)
            os.replace(self.temp_path, self.target)
        except OSError as exc:
            if old is not None and not self.target.exists():
                os.replace(old, self.target)
            raise VideoError(
                f"cannot move the finished frames to {str(self.target)!r}: {exc}"
            ) from exc
        self._finalizer.detach()
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self.claim.release()
        return self.target

    def _abort(self) -> None:
        self._finalizer()


class VideoWriterBase(PluginBase, ABC):
    """Base class of video-writer plugins.

    Subclasses set :attr:`suffixes` and implement :meth:`open`; :meth:`can_write`
    and the one-shot :meth:`write` come for free. ``__init__`` arguments are the
    writer's default options (its config); ``open(..., **options)`` overrides them
    for one video.

    Attributes
    ----------
    suffixes
        Lower-case file suffixes this writer claims (``(".mp4",)``).
    """

    suffixes: ClassVar[tuple[str, ...]] = ()

    def can_write(self, path: str | os.PathLike[str]) -> bool:
        """Return true if ``path`` ends with one of :attr:`suffixes` (case-insensitive)."""
        try:
            suffix = Path(path).suffix.lower()
        except TypeError:
            return False
        return bool(suffix) and suffix in self.suffixes

    def options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """Merge per-call ``overrides`` into the configured options.

        Raises
        ------
        InputError
            If an override is not one of this writer's options.
        """
        settings = self.config.public()
        unknown = sorted(set(overrides) - set(settings))
        if unknown:
            raise InputError(
                f"unknown option(s) {unknown} for the {self.name or type(self).__name__!r} video "
                f"writer; its options are {sorted(settings)}"
            )
        settings.update(overrides)
        return settings

    @abstractmethod
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
    ) -> WriterSession:
        """Start a streaming write.

        Parameters
        ----------
        path
            Target file or folder.
        fps
            Frame rate; ``29.97`` and ``Fraction(30000, 1001)`` are both exact NTSC.
        width, height
            Frame size in pixels.
        audio
            Optional audio ``(n,)`` or ``(c, n)``, float in ``[-1, 1]``, or an
            :class:`~emo.io.audio_stream.AudioStream` read block by block (then leave
            ``sample_rate`` out); it can also be given to ``close``.
        sample_rate
            Its sample rate in Hz.
        **options
            Per-video overrides of the writer's ``__init__`` options.

        Returns
        -------
        WriterSession
            Call ``write(frames)`` then ``close()``, or use it as a context manager.
        """

    def write(
        self,
        frames: Any,
        path: str | os.PathLike[str],
        *,
        fps: Any,
        audio: Any = None,
        sample_rate: int | None = None,
        **options: Any,
    ) -> WrittenVideo:
        """Write all ``frames`` at once.

        Parameters
        ----------
        frames
            uint8 or float in ``[0, 1]``, numpy or torch, ``(f, h, w, 3)``.
        path, fps, audio, sample_rate, **options
            As for :meth:`open`.

        Returns
        -------
        WrittenVideo
            What was written.
        """
        array = as_video_frames(frames)
        height, width = array.shape[1:3]
        session = self.open(
            path,
            fps=fps,
            width=width,
            height=height,
            audio=audio,
            sample_rate=sample_rate,
            **options,
        )
        with session:
            session.write(array)
            return session.close()
