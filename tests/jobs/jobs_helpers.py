"""Helpers of the job-list tests: job files, results, output trees."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write_jobs(path: Path, jobs: Sequence[dict[str, Any]]) -> Path:
    """Write ``jobs`` as a JSONL job file."""
    path.write_text("".join(json.dumps(job) + "\n" for job in jobs))
    return path


def results(out: Path) -> dict[str, dict[str, Any]]:
    """``results.jsonl`` of ``out`` by job name."""
    lines = (out / "results.jsonl").read_text().splitlines()
    return {r["job"]: r for r in map(json.loads, lines)}


def tree(out: Path) -> dict[str, bytes]:
    """Every file under ``out`` (hidden ones included) -> its bytes, results files aside."""
    skip = {"results.jsonl", "runs.jsonl"}
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name not in skip
    }
