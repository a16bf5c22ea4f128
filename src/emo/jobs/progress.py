"""One progress bar over the whole job list, every process included.

Rank 0 shows it. It counts the records the processes append to their results
files (:mod:`emo.jobs.results`), read again every ``interval`` seconds on a
background thread, so the jobs of every process, on every machine sharing the output
folder, move the bar; tqdm's rate gives the ETA.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from emo.jobs.results import ResultsStore

__all__ = ["BatchProgress"]


class BatchProgress:
    """A tqdm bar: jobs finished of the pending ones, with done / failed counts and the ETA.

    Parameters
    ----------
    store
        The output folder's results files.
    total
        Jobs pending in this run.
    skipped
        Jobs skipped (shown in the bar's text).
    disable
        No bar at all (``--quiet``).
    interval
        Seconds between two reads of the results files.
    """

    def __init__(
        self,
        store: ResultsStore,
        total: int,
        *,
        skipped: int = 0,
        disable: bool = False,
        interval: float = 1.0,
    ) -> None:
        self.store = store
        self.done = 0
        self.failed = 0
        self._skipped = skipped
        self._interval = interval
        self._offsets: dict[Path, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._bar: Any = None
        self._thread: threading.Thread | None = None
        if disable or total == 0:
            return
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc="emo jobs", unit="job", dynamic_ncols=True)
        self._show()
        self._thread = threading.Thread(target=self._poll, name="emo-jobs-progress", daemon=True)
        self._thread.start()

    def refresh(self) -> None:
        """Read what the processes appended since the last time and move the bar."""
        with self._lock:
            for path in self.store.rank_files():
                self._read_new(path)
            if self._bar is not None:
                self._bar.n = self.done + self.failed
                self._show()

    def _read_new(self, path: Path) -> None:
        """Count the complete lines appended to ``path`` since the last read (append-only)."""
        offset = self._offsets.get(path, 0)
        with open(path, "rb") as file:
            file.seek(offset)
            data = file.read()
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next read
        for line in data[:end].splitlines():
            try:
                status = json.loads(line).get("status")
            except (json.JSONDecodeError, AttributeError):
                continue
            self.done += status == "done"
            self.failed += status == "failed"
        self._offsets[path] = offset + end

    def _show(self) -> None:
        text = f"done={self.done} failed={self.failed}"
        if self._skipped:
            text += f" skipped={self._skipped}"
        self._bar.set_postfix_str(text, refresh=False)
        self._bar.refresh()

    def _poll(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.refresh()
            except OSError:  # a file not readable now: read again next time
                continue

    def close(self) -> None:
        """Stop the thread and close the bar; safe to call more than once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> BatchProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
