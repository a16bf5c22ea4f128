"""The results file of a job run, and the per-process files it is merged from.

``OUT_DIR/results.jsonl`` holds one JSON object per job, its latest state:

- ``"status": "done"``: ``output``, ``path``, ``frames``, ``fps``, ``seconds`` (time to
  make it), ``sha256`` (of the output file; of a frames folder: of its file names and
  contents), ``portrait_sha256``, ``audio_sha256``, ``job_sha256`` (the job's
  fingerprint, :meth:`Job.fingerprint <emo.jobs.spec.Job.fingerprint>`), ``rank``, ``time``;
- ``"status": "failed"``: ``error`` (the exception's class, an :mod:`emo.errors` one for
  a bad input) and ``message``;
- ``"status": "skipped"``: the job was not run again; ``was`` says why (``"done"``:
  its output was verified; ``"failed"``: it failed before and ``--retry-failed`` was
  not given) and the earlier record's fields are kept.

While a run goes, each process appends its records to its own file
``results.rank-NNNNN.jsonl`` (one ``write`` and ``fsync`` per record, so a killed process
loses at most the job it was making). Rank 0 merges them into ``results.jsonl`` at the
end of the run, and at the start of the next one whatever a killed run left; a torn
last line is ignored. Rank 0 also appends the run's :class:`BatchSummary` to
``runs.jsonl``: counts per process, time, jobs per minute.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emo.errors import InputError
from emo.jobs.spec import is_line_key

__all__ = [
    "RANK_GLOB",
    "RESULTS_NAME",
    "RUNS_NAME",
    "BatchSummary",
    "RankLog",
    "ResultsStore",
    "read_records",
    "sha256_of",
    "state_of",
    "utc_now",
]

#: The merged results file in the output folder.
RESULTS_NAME = "results.jsonl"
#: Name pattern of the per-process results files (``results.rank-00003.jsonl``).
RANK_GLOB = "results.rank-*.jsonl"
#: One line per finished run: its :class:`BatchSummary` and when it ended.
RUNS_NAME = "runs.jsonl"
_CHUNK = 1 << 20


def utc_now() -> str:
    """The time now, UTC, ISO 8601 to the second (``2025-01-31T12:00:00Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _file_sha256(path: Path, digest: Any) -> None:
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)


def sha256_of(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, or of a folder (its files' relative names and contents, sorted by name)."""
    target = Path(path)
    digest = hashlib.sha256()
    if target.is_dir():
        for file in sorted(p for p in target.rglob("*") if p.is_file()):
            name = file.relative_to(target).as_posix().encode()
            digest.update(len(name).to_bytes(8, "little") + name)
            digest.update(file.stat().st_size.to_bytes(8, "little"))
            _file_sha256(file, digest)
    else:
        _file_sha256(target, digest)
    return digest.hexdigest()


def state_of(record: Mapping[str, Any]) -> str:
    """A record's effective state: ``"done"`` or ``"failed"`` (a skipped record's ``was``)."""
    status = str(record.get("status", ""))
    return str(record.get("was", "")) if status == "skipped" else status


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a JSONL results file in order; unreadable (torn) lines are skipped."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("job"), str):
            yield record


class RankLog:
    """A JSONL file appended to record by record: a process's results, ``runs.jsonl`` (a context manager).

    Parameters
    ----------
    path
        The file; created if missing. If a killed run left it ending in a torn line,
        a newline is written first so the next record stands on its own line.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        size = os.fstat(self._fd).st_size
        if size:
            with open(path, "rb") as file:
                file.seek(size - 1)
                if file.read(1) != b"\n":
                    os.write(self._fd, b"\n")

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one record as one line and flush it to disk."""
        os.write(self._fd, (json.dumps(record, sort_keys=True) + "\n").encode())
        os.fsync(self._fd)

    def close(self) -> None:
        """Close the file; safe to call more than once."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> RankLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ResultsStore:
    """The results files of one output folder.

    Parameters
    ----------
    folder
        The output folder of the run.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.results_path = folder / RESULTS_NAME

    @property
    def runs_path(self) -> Path:
        """The log of finished runs (:data:`RUNS_NAME`)."""
        return self.folder / RUNS_NAME

    def rank_path(self, rank: int) -> Path:
        """The results file of process ``rank``."""
        return self.folder / f"results.rank-{rank:05d}.jsonl"

    def rank_files(self) -> list[Path]:
        """The per-process results files present now, by rank."""
        return sorted(self.folder.glob(RANK_GLOB))

    def rank_records(self) -> list[tuple[int, dict[str, Any]]]:
        """Every record of the per-process files with the rank of its file."""
        out: list[tuple[int, dict[str, Any]]] = []
        for path in self.rank_files():
            rank = int(path.name.split(".")[1].removeprefix("rank-"))
            out.extend((rank, record) for record in read_records(path))
        return out

    def latest(self) -> dict[str, dict[str, Any]]:
        """Job name -> its latest record: ``results.jsonl``, then the per-process files."""
        merged: dict[str, dict[str, Any]] = {}
        for record in read_records(self.results_path):
            merged[record["job"]] = record
        for _, record in self.rank_records():
            merged[record["job"]] = record
        return merged

    def consolidate(
        self, order: Sequence[str], records: Iterable[Mapping[str, Any]] = ()
    ) -> dict[str, dict[str, Any]]:
        """Merge the per-process files (and ``records``) into ``results.jsonl``; remove them.

        ``results.jsonl`` is replaced atomically, jobs in ``order`` first, then records of
        jobs no longer in the list, so no job's record is ever lost (those of lines that
        were not valid jobs, :func:`~emo.jobs.spec.line_key`, go when not listed). Only the caller
        (rank 0) may call it, and never while other processes append.

        Returns
        -------
        dict
            Job name -> latest record, as written.
        """
        rank_files = self.rank_files()
        merged = self.latest()
        for record in records:
            merged[str(record["job"])] = dict(record)
        ordered = [merged[k] for k in dict.fromkeys(order) if k in merged]
        listed = set(order)
        # Lines that were not valid jobs are keyed by line number: stale once not listed.
        ordered += [r for k, r in merged.items() if k not in listed and not is_line_key(k)]
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in ordered)
        self._replace(text)
        for path in rank_files:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return {str(r["job"]): r for r in ordered}

    def _replace(self, text: str) -> None:
        from emo.io.claim import make_temporary

        temp = make_temporary(self.results_path, error=InputError)
        try:
            with open(temp, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, self.results_path)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise


@dataclass
class BatchSummary:
    """What one :func:`~emo.jobs.runner.generate_many` run did, over every process.

    Attributes
    ----------
    total
        Jobs in the list.
    done, failed
        Jobs made, and jobs that failed, in this run (a line that is not a valid job
        counts as failed).
    skipped_done, skipped_failed
        Jobs not run: output verified from an earlier run; failed in an earlier run
        (run them again with ``retry_failed``).
    seconds
        Wall time of the run, from the plan to the merged results.
    processes
        Processes that shared the jobs.
    results_path
        The merged results file.
    failures
        The records of every job whose latest state is failed (this run's and earlier).
    invalid
        Of :attr:`failed`, the lines that are not valid jobs (never run).
    per_rank
        Jobs each process made or failed in this run (rank -> count).
    """

    total: int
    done: int
    failed: int
    skipped_done: int
    skipped_failed: int
    seconds: float
    processes: int
    results_path: Path
    failures: list[dict[str, Any]] = field(default_factory=list)
    invalid: int = 0
    per_rank: dict[int, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether no job of the list is in the failed state."""
        return not self.failures

    @property
    def jobs_per_minute(self) -> float:
        """Jobs run (made or failed, not the invalid lines) per minute of :attr:`seconds`."""
        run = self.done + self.failed - self.invalid
        return 60.0 * run / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "skipped_done": self.skipped_done,
            "skipped_failed": self.skipped_failed,
            "seconds": self.seconds,
            "processes": self.processes,
            "results_path": str(self.results_path),
            "failures": self.failures,
            "invalid": self.invalid,
            "per_rank": {str(k): v for k, v in self.per_rank.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchSummary:
        """The summary :meth:`to_dict` described."""
        return cls(
            **{
                **data,
                "results_path": Path(data["results_path"]),
                "failures": list(data["failures"]),
                "per_rank": {int(k): int(v) for k, v in data["per_rank"].items()},
            }
        )

    def format(self, max_failures: int = 10) -> str:
        """A few lines for people: the counts, the speed, and the first failures."""
        parts = [f"{self.done} done"]
        if self.skipped_done:
            parts.append(f"{self.skipped_done} done before (skipped)")
        parts.append(f"{self.failed} failed")
        if self.skipped_failed:
            parts.append(f"{self.skipped_failed} failed before (not retried: --retry-failed)")
        minutes, seconds = divmod(self.seconds, 60.0)
        jobs = f"{self.total} job{'s' if self.total != 1 else ''}"
        lines = [
            f"emo: {jobs}: {', '.join(parts)}; {int(minutes)}m{seconds:04.1f}s, "
            f"{self.jobs_per_minute:.1f} jobs/min on {self.processes} process"
            f"{'es' if self.processes != 1 else ''}; results: {self.results_path}"
        ]
        for record in self.failures[:max_failures]:
            where = f" (line {record['line']})" if record.get("line") else ""
            lines.append(
                f"  failed: {record['job']}{where}: {record.get('error', 'Error')}: "
                f"{record.get('message', '')}"
            )
        if len(self.failures) > max_failures:
            lines.append(f"  ... and {len(self.failures) - max_failures} more failed jobs")
        return "\n".join(lines)
