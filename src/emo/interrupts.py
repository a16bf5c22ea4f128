"""Stopping cleanly on SIGTERM and SIGHUP, the way Ctrl-C stops.

``docker stop``, systemd, batch schedulers and ``timeout`` end a process with
SIGTERM; closing a terminal sends SIGHUP. Python's default for both is to die at
once, leaving temporary files behind. Inside :func:`stop_on_signals` they raise
:class:`~emo.errors.Terminated` (a :class:`KeyboardInterrupt`) in the main thread
instead, so the same cleanup as for Ctrl-C runs: the generation stops at the next
Python instruction (between two network calls, at the latest after the current
denoising step's operation), writer sessions delete their temporary files, and the
``emo`` command exits with ``128 + signal number`` (143 for SIGTERM, 129 for SIGHUP).

One operation can take minutes (a convolution of a large model on a CPU), and
Python runs signal handlers only between instructions. So a watcher thread, woken
by the signal itself, gives the main thread ``grace_seconds`` (5 by default) to stop;
if it has not by then (Ctrl-C gets the same deadline), the watcher removes the temporary files of every output this
process is writing (:func:`emo.io.claim.abandon_all`), prints why and ends the process
with the same exit code. Either way nothing is left behind.

The ``emo`` command installs this for every sub-command. A Python program that
embeds emo decides itself how it handles signals; it can use the same context
manager::

    from emo.interrupts import stop_on_signals

    with stop_on_signals():
        pipe(image, audio, output_path="out.mp4")
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any

from emo.errors import Terminated

__all__ = ["DEFAULT_GRACE_SECONDS", "DEFAULT_SIGNALS", "exit_code_for", "stop_on_signals"]

#: The signals turned into :class:`~emo.errors.Terminated` by default (where the platform has them).
DEFAULT_SIGNALS = ("SIGTERM", "SIGHUP")
#: Seconds the main thread gets to stop after a signal before the watcher ends the process.
DEFAULT_GRACE_SECONDS = 5.0


def exit_code_for(signum: int) -> int:
    """The shell's exit status for a process ended by signal ``signum``: ``128 + signum``."""
    return 128 + int(signum)


def _watch(wake: socket.socket, signums: set[int], done: threading.Event, grace: float) -> None:
    """Wait for a signal byte; if the main thread has not finished ``grace`` s later, clean up and exit."""
    from emo.io.claim import abandon_all

    while True:
        try:
            data = wake.recv(1)
        except OSError:
            return
        if done.is_set() or not data:
            return
        signum = data[0]
        if signum not in signums:
            continue
        if done.wait(grace):
            return
        targets = abandon_all()
        name = signal.Signals(signum).name
        written = f" (temporary files of {len(targets)} output(s) removed)" if targets else ""
        print(
            f"emo: terminated by {name}: the running operation did not return within "
            f"{grace:g} s, so emo stopped it{written}",
            file=sys.stderr,
            flush=True,
        )
        os._exit(exit_code_for(signum))


@contextlib.contextmanager
def stop_on_signals(
    names: Sequence[str] = DEFAULT_SIGNALS, *, grace_seconds: float | None = DEFAULT_GRACE_SECONDS
) -> Iterator[None]:
    """Raise :class:`~emo.errors.Terminated` on these signals inside the block.

    After the first signal the others are ignored until the block exits, so a
    second SIGTERM cannot interrupt the cleanup the first one started. The previous
    handlers are restored on exit. Outside the main thread (where Python cannot set
    signal handlers) this does nothing.

    Parameters
    ----------
    names
        Signal names; those the platform lacks (SIGHUP on Windows) are skipped.
    grace_seconds
        How long the main thread may take to stop before a watcher thread removes the
        temporary files of the outputs being written and ends the process
        (``os._exit(128 + signal)``); ``None``: no watcher.
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

    done = threading.Event()
    watcher: threading.Thread | None = None
    sockets: tuple[socket.socket, socket.socket] | None = None
    previous_fd: int | None = None
    try:
        for signum in signums:
            previous[signum] = signal.signal(signum, handler)
        if grace_seconds is not None and signums:
            sockets = socket.socketpair()
            sockets[1].setblocking(False)
            previous_fd = signal.set_wakeup_fd(sockets[1].fileno(), warn_on_full_buffer=False)
            watcher = threading.Thread(
                target=_watch,
                # Ctrl-C (KeyboardInterrupt) gets the same deadline.
                args=(sockets[0], {*signums, signal.SIGINT}, done, float(grace_seconds)),
                name="emo-signal-watcher",
                daemon=True,
            )
            watcher.start()
        yield
    finally:
        done.set()
        if sockets is not None:
            signal.set_wakeup_fd(-1 if previous_fd is None else previous_fd)
            with contextlib.suppress(OSError):
                sockets[1].send(b"\0")
            if watcher is not None:
                watcher.join(timeout=1.0)
            for sock in sockets:
                sock.close()
        for signum, old in previous.items():
            signal.signal(signum, old)
