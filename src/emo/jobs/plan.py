"""Which jobs a run makes (resume) and which process makes which (sharding).

A job is skipped when its latest record says it was made, the job is unchanged
(same fingerprint) and its output is there with the recorded SHA-256; it is
skipped when it failed before, unchanged, unless ``retry_failed``. Every other
valid job is pending. Rank 0 plans; every process then takes the pending jobs
``rank, rank + world_size, rank + 2 * world_size, ...``: each job goes to exactly
one process, and the same plan gives the same assignment on any machine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emo.jobs.results import sha256_of, state_of, utc_now
from emo.jobs.spec import Job

__all__ = ["Plan", "failed_record", "make_plan", "shard", "verified"]


def failed_record(
    job: Job,
    error: str,
    message: str,
    *,
    seconds: float = 0.0,
    fingerprint: str = "",
    rank: int = 0,
) -> dict[str, Any]:
    """The record of a job that failed with ``error`` (an exception class name) and ``message``."""
    return {
        "job": job.key,
        "line": job.line,
        "status": "failed",
        "error": error,
        "message": message,
        "seconds": round(seconds, 3),
        "job_sha256": fingerprint,
        "rank": rank,
        "time": utc_now(),
    }


def verified(record: Mapping[str, Any], out_dir: Path, fingerprint: str) -> bool:
    """Whether ``record`` says the job was made, with this fingerprint, and its output checks out."""
    if state_of(record) != "done" or record.get("job_sha256") != fingerprint:
        return False
    target = out_dir / str(record["job"])
    if not target.exists():
        return False
    try:
        return sha256_of(target) == record.get("sha256")
    except OSError:
        return False


@dataclass
class Plan:
    """Rank 0's decision for one run.

    Attributes
    ----------
    pending
        The jobs to make, in list order.
    records
        Records written before any job runs: skipped jobs, and lines that are not
        valid jobs (failed).
    order
        Every job name in list order (the order of the merged results file).
    skipped_done, skipped_failed, invalid
        How many jobs were skipped as done, skipped as failed before, and invalid.
    """

    pending: list[Job]
    records: list[dict[str, Any]] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    skipped_done: int = 0
    skipped_failed: int = 0
    invalid: int = 0

    def to_json(self) -> str:
        """The plan as JSON text (to hand to the other processes)."""
        return json.dumps(
            {
                "pending": [job.to_dict() for job in self.pending],
                "order": self.order,
                "skipped_done": self.skipped_done,
                "skipped_failed": self.skipped_failed,
                "invalid": self.invalid,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """The plan :meth:`to_json` described (without its records: rank 0 wrote them)."""
        data = json.loads(text)
        return cls(
            pending=[Job.from_dict(d) for d in data["pending"]],
            order=list(data["order"]),
            skipped_done=int(data["skipped_done"]),
            skipped_failed=int(data["skipped_failed"]),
            invalid=int(data["invalid"]),
        )


def make_plan(
    jobs: Sequence[Job],
    latest: Mapping[str, Mapping[str, Any]],
    out_dir: Path,
    *,
    defaults: Mapping[str, Any],
    extra: str = "",
    retry_failed: bool = False,
) -> Plan:
    """Sort the jobs into pending, skipped and invalid.

    Parameters
    ----------
    jobs
        The job list.
    latest
        Job name -> its latest record (:meth:`ResultsStore.latest
        <emo.jobs.results.ResultsStore.latest>`).
    out_dir
        The output folder.
    defaults, extra
        What :meth:`Job.fingerprint <emo.jobs.spec.Job.fingerprint>` takes.
    retry_failed
        Run jobs that failed before again (unchanged ones are skipped otherwise).
    """
    plan = Plan(pending=[], order=[job.key for job in jobs])
    for job in jobs:
        if job.error is not None:
            plan.records.append(failed_record(job, "InputError", job.error))
            plan.invalid += 1
            continue
        fingerprint = job.fingerprint(defaults, extra)
        record = latest.get(job.key)
        if record is not None and verified(record, out_dir, fingerprint):
            plan.records.append({**record, "status": "skipped", "was": "done", "line": job.line})
            plan.skipped_done += 1
        elif (
            record is not None
            and not retry_failed
            and state_of(record) == "failed"
            and record.get("job_sha256") == fingerprint
        ):
            plan.records.append({**record, "status": "skipped", "was": "failed", "line": job.line})
            plan.skipped_failed += 1
        else:
            plan.pending.append(job)
    return plan


def shard(pending: Sequence[Job], rank: int, world_size: int) -> list[Job]:
    """The pending jobs of process ``rank``: every ``world_size``-th, from the ``rank``-th."""
    return list(pending[rank::world_size])
