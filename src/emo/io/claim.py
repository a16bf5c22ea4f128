"""Exclusive claims on output paths, and cleanup of what killed runs left behind.

A writer first *claims* its target: it takes an exclusive lock (``flock``) on a
small lock file next to it, ``.<name>.emo-lock``. While the claim is held:

* a second writer of the same path, in this process or another, fails at once
  with :class:`~emo.errors.OutputInUseError` instead of racing for the file;
* no live writer of that path can exist, so every temporary file of the path's
  own pattern (``.<name>.emo-<random>.part`` and the ``.old`` folder of a folder swap)
  was left by a run that was killed (SIGKILL, power loss) and is removed.

The operating system releases the lock when a process dies, however it dies, so a
stale lock file never blocks anyone: the next writer takes it over. Only names of
emo's own pattern for *this* target are ever removed, never another file. On
systems without ``fcntl`` (Windows) the lock file is created exclusively instead,
and a stale one is recognised by the process id written in it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import threading
from pathlib import Path
from typing import Literal

from emo.errors import EMOError, OutputInUseError, VideoError

__all__ = ["TEMP_MARK", "OutputClaim", "abandon_all", "is_own_temporary", "make_temporary"]

#: Marker that every temporary name of emo's writers carries.
TEMP_MARK = ".emo-"
_RANDOM = r"[0-9a-f]{8}"

#: Claims this process holds now (for :func:`abandon_all`).
_HELD: set[OutputClaim] = set()
_HELD_LOCK = threading.Lock()

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def _temp_pattern(target: Path) -> re.Pattern[str]:
    return re.compile(re.escape(f".{target.name}{TEMP_MARK}") + _RANDOM + r"\.(part|old)")


def is_own_temporary(target: Path, name: str) -> bool:
    """Whether ``name`` (an entry of ``target``'s folder) is one of emo's temporaries for ``target``."""
    return _temp_pattern(target).fullmatch(name) is not None


def make_temporary(
    target: Path,
    kind: Literal["file", "folder", "old"] = "file",
    *,
    error: type[EMOError] = VideoError,
) -> Path:
    """Create an empty temporary file (or folder) next to ``target`` under emo's pattern.

    The name is ``.<target name>.emo-<random>.part``. It is created with the
    permissions a new file gets (``0o666`` less the umask), so the published output
    has them too. ``kind="old"`` only reserves a name (``....old``, the folder is
    removed again) for moving an existing folder aside.

    Raises
    ------
    EMOError
        ``error`` (by default :class:`~emo.errors.VideoError`) if the folder cannot be written.
    """
    suffix = ".old" if kind == "old" else ".part"
    for _ in range(100):
        path = target.parent / f".{target.name}{TEMP_MARK}{secrets.token_hex(4)}{suffix}"
        try:
            if kind == "file":
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            else:
                os.mkdir(path, 0o777)
                if kind == "old":
                    os.rmdir(path)
        except FileExistsError:
            continue
        except OSError as exc:
            raise error(f"cannot write in the folder of {str(target)!r}: {exc}") from exc
        return path
    raise error(f"cannot find a free temporary name next to {str(target)!r}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


class OutputClaim:
    """The exclusive right to write ``target``; a context manager.

    Parameters
    ----------
    target
        The output file or folder.
    error
        The error raised when the lock file cannot be created (a folder without write
        permission); :class:`~emo.errors.VideoError` by default.

    Examples
    --------
    >>> with OutputClaim(Path("out.mp4")) as claim:  # doctest: +SKIP
    ...     temp = make_temporary(claim.target)
    """

    def __init__(self, target: Path, *, error: type[EMOError] = VideoError) -> None:
        self.target = target
        self.error = error
        self.lock_path = target.parent / f".{target.name}.emo-lock"
        self._fd: int | None = None
        self.removed: list[Path] = []
        # False on a file system without locks: then nothing proves other writers dead,
        # so no temporary is removed.
        self.exclusive = True

    @property
    def held(self) -> bool:
        """Whether this claim holds the lock now."""
        return self._fd is not None

    def acquire(self) -> OutputClaim:
        """Take the lock and remove what killed runs left for this target.

        Raises
        ------
        OutputInUseError
            If another writer holds the target now.
        VideoError
            If the lock file cannot be created.
        """
        if self._fd is not None:
            return self
        self._fd = self._lock_flock() if fcntl is not None else self._lock_exclusive()
        with _HELD_LOCK:
            _HELD.add(self)
        self._clean_stale()
        return self

    def release(self) -> None:
        """Remove the lock file and release the lock; safe to call more than once."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with _HELD_LOCK:
            _HELD.discard(self)
        with contextlib.suppress(OSError):
            os.unlink(self.lock_path)  # while still locked: nobody can be holding it
        with contextlib.suppress(OSError):
            os.close(fd)

    def abandon(self) -> None:
        """Remove every temporary of this target and release: for a process about to exit.

        Safe while the claim is held (no other writer of the target can exist); an
        output folder moved aside for a swap is moved back if the target is missing.
        """
        if self._fd is None:
            return
        self._clean_stale()
        self.release()

    def __enter__(self) -> OutputClaim:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- internals -------------------------------------------------------------------
    def _busy(self, holder: str) -> OutputInUseError:
        return OutputInUseError(
            f"output {str(self.target)!r} is being written right now by another emo writer "
            f"({holder}); wait until it finishes, or choose another output path"
        )

    def _holder(self) -> str:
        try:
            pid = self.lock_path.read_text().strip()
        except OSError:
            pid = ""
        return f"process {pid}" if pid.isdigit() else "lock file " + str(self.lock_path)

    def _open_lock_file(self, flags: int) -> int:
        try:
            return os.open(self.lock_path, flags, 0o644)
        except FileExistsError:
            raise
        except OSError as exc:
            raise self.error(f"cannot write in the folder of {str(self.target)!r}: {exc}") from exc

    def _lock_flock(self) -> int:
        assert fcntl is not None
        while True:
            fd = self._open_lock_file(os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise self._busy(self._holder()) from None
            except OSError:  # a file system without locks: write unprotected
                self.exclusive = False
                return self._stamp(fd)
            # The previous holder may have unlinked the file between our open and lock:
            # then we hold a lock on a name nobody else sees, so start again.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.lock_path))
            except FileNotFoundError:
                same = False
            if same:
                return self._stamp(fd)
            os.close(fd)

    def _lock_exclusive(self) -> int:  # pragma: no cover - Windows
        for _ in range(2):
            try:
                return self._stamp(self._open_lock_file(os.O_RDWR | os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                holder = self._holder()
                pid = holder.removeprefix("process ")
                if pid.isdigit() and _pid_alive(int(pid)):
                    raise self._busy(holder) from None
                with contextlib.suppress(OSError):
                    os.unlink(self.lock_path)
        raise self._busy(self._holder())

    @staticmethod
    def _stamp(fd: int) -> int:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd

    def _clean_stale(self) -> None:
        """Remove temporaries of this target left by killed runs (we hold the lock)."""
        if not self.exclusive:
            return
        pattern = _temp_pattern(self.target)
        try:
            names = os.listdir(self.target.parent)
        except OSError:
            return
        olds: list[Path] = []
        for name in names:
            match = pattern.fullmatch(name)
            if match is None:
                continue
            path = self.target.parent / name
            if match.group(1) == "old":
                olds.append(path)
                continue
            _remove(path)
            self.removed.append(path)
        for old in olds:
            # A folder swap killed between its two renames: the old folder is the only copy.
            if not self.target.exists():
                with contextlib.suppress(OSError):
                    os.replace(old, self.target)
                continue  # restored, or kept where it is: never deleted
            _remove(old)
            self.removed.append(old)


def abandon_all() -> list[Path]:
    """Abandon every claim this process holds (see :meth:`OutputClaim.abandon`); return the targets.

    Used when the process must exit while its main thread is stuck in a long
    operation (:func:`emo.interrupts.stop_on_signals`).
    """
    with _HELD_LOCK:
        claims = list(_HELD)
    for claim in claims:
        with contextlib.suppress(Exception):
            claim.abandon()
    return [claim.target for claim in claims]
