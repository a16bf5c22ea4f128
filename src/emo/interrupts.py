"""Stopping cleanly on SIGTERM and SIGHUP, the way Ctrl-C stops.

``docker stop``, systemd, batch schedulers and ``timeout`` end a process with
SIGTERM; closing a terminal sends SIGHUP. Python's default for both is to die at
once, leaving temporary files behind. Inside :func:`stop_on_signals` they raise
:class:`~emo.errors.Terminated` (a :class:`KeyboardInterrupt`) in the main thread
instead, so the same cleanup as for Ctrl-C runs: the generation stops at the next
Python instruction (between two network calls, at the latest after the current
denoising step's operation), writer sessions delete their temporary files, and the
``emo`` command exits with ``128 + signal number`` (143 for SIGTERM, 129 for SIGHUP).

The ``emo`` command installs this for every sub-command. A Python program that
embeds emo decides itself how it handles signals; it can use the same context
manager::

    from emo.interrupts import stop_on_signals

    with stop_on_signals():
        pipe(image, audio, output_path="out.mp4")
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any

from emo.errors import Terminated

__all__ = ["DEFAULT_SIGNALS", "exit_code_for", "stop_on_signals"]

#: The signals turned into :class:`~emo.errors.Terminated` by default (where the platform has them).
DEFAULT_SIGNALS = ("SIGTERM", "SIGHUP")


def exit_code_for(signum: int) -> int:
    """The shell's exit status for a process ended by signal ``signum``: ``128 + signum``."""
    return 128 + int(signum)


@contextlib.contextmanager
def stop_on_signals(names: Sequence[str] = DEFAULT_SIGNALS) -> Iterator[None]:
    """Raise :class:`~emo.errors.Terminated` on these signals inside the block.

    After the first signal the others are ignored until the block exits, so a
    second SIGTERM cannot interrupt the cleanup the first one started. The previous
    handlers are restored on exit. Outside the main thread (where Python cannot set
    signal handlers) this does nothing.

    Parameters
    ----------
    names
        Signal names; those the platform lacks (SIGHUP on Windows) are skipped.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signums = [getattr(signal, name) for name in names if hasattr(signal, name)]
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        for other in signums:
            signal.signal(other, signal.SIG_IGN)
        raise Terminated(signum, signal.Signals(signum).name)

    try:
        for signum in signums:
            previous[signum] = signal.signal(signum, handler)
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
