"""torchrun with 2 CPU processes (gloo): the same videos as 1 process, and a killed rank repaired.

Every run here is a real ``python -m emo.generate_many`` process tree with one torch
thread per process (torch's CPU results depend on the thread count, so the
1-process reference uses one thread too).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from jobs_helpers import results, tree, write_jobs

pytestmark = pytest.mark.slow

LONG_JOB = 3  # rank 1's second job: long enough to be killed while it is written


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(jobs: Path, out: Path, model: Path, processes: int) -> list[str]:
    launcher = ["-m", "emo.generate_many"]
    if processes > 1:
        launcher = [
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(processes),
            "--master_port",
            str(_free_port()),
            *launcher,
        ]
    tail = ["-o", str(out), "--model", str(model), "--quiet", "--threads", "1"]
    return [sys.executable, *launcher, str(jobs), *tail]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _run(jobs: Path, out: Path, model: Path, processes: int) -> subprocess.CompletedProcess[str]:
    command = _command(jobs, out, model, processes)
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def _last_run(out: Path) -> dict[str, Any]:
    lines = (out / "runs.jsonl").read_text().splitlines()
    return dict(json.loads(lines[-1]))


@pytest.fixture(scope="module")
def job_file(tmp_path_factory: pytest.TempPathFactory, portrait: Path, clips: list[Path]) -> Path:
    """Six jobs; the fourth (rank 1's second of two processes) has 6 s of audio."""
    audio = [clips[0], clips[1], clips[2], clips[4], clips[3], clips[0]]
    jobs = [
        {"portrait": str(portrait), "audio": str(a), "output": f"v{i}.mp4", "seed": i}
        for i, a in enumerate(audio)
    ]
    jobs[1]["output"] = "sub/v1.mp4"
    return write_jobs(tmp_path_factory.mktemp("jobs") / "jobs.jsonl", jobs)


@pytest.fixture(scope="module")
def one_process(job_file: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: the job list made by one process."""
    out = tmp_path_factory.mktemp("one") / "out"
    _run(job_file, out, model_dir, processes=1)
    return out


def test_two_processes_make_the_same_videos_as_one_each_job_once(
    job_file: Path, model_dir: Path, one_process: Path, tmp_path: Path
) -> None:
    out = tmp_path / "two"
    done = _run(job_file, out, model_dir, processes=2)
    assert "emo: 6 jobs: 6 done, 0 failed" in done.stdout and "2 processes" in done.stdout
    reference = tree(one_process)
    assert len(reference) == 6
    assert tree(out) == reference  # byte for byte, and nothing else (no temporaries)

    two, one = results(out), results(one_process)
    assert two.keys() == one.keys()
    for name, record in one.items():
        for key in ("status", "sha256", "frames", "job_sha256", "audio_sha256"):
            assert two[name][key] == record[key], (name, key)
    # The plan's order decides: job i goes to rank i % 2, and every job ran exactly once.
    assert [two[f"v{i}.mp4" if i != 1 else "sub/v1.mp4"]["rank"] for i in range(6)] == [
        0,
        1,
        0,
        1,
        0,
        1,
    ]
    run = _last_run(out)
    assert (run["done"], run["per_rank"], run["processes"]) == (6, {"0": 3, "1": 3}, 2)
    assert not list(out.glob("results.rank-*"))


def test_a_rank_killed_mid_video_leaves_nothing_a_rerun_does_not_repair(
    job_file: Path, model_dir: Path, one_process: Path, tmp_path: Path
) -> None:
    out = tmp_path / "killed"
    lock = out / f".v{LONG_JOB}.mp4.emo-lock"  # the claim of the video rank 1 writes
    command = _command(job_file, out, model_dir, processes=2)
    run = subprocess.Popen(
        command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    killed = None
    try:
        deadline = time.monotonic() + 300
        while killed is None and time.monotonic() < deadline and run.poll() is None:
            text = lock.read_text().strip() if lock.exists() else ""
            if text.isdigit():
                killed = int(text)  # the writer's process id, in its lock file
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.01)
        output, _ = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert killed is not None, "the long video was never written: " + (output or "")[-2000:]
    assert run.returncode != 0  # torchrun reports the killed rank (and stops the other)
    left = tree(out)
    assert f"v{LONG_JOB}.mp4" not in left and "v5.mp4" not in left  # no partial video
    assert any(name.endswith(".part") for name in left)  # what the kill left
    assert "sub/v1.mp4" in left  # rank 1 finished its first job before
    before = {k for k, r in _records_left(out).items() if r["status"] == "done"}
    assert "sub/v1.mp4" in before

    done = _run(job_file, out, model_dir, processes=1)  # any number of processes repairs it
    assert f"{len(before)} done before (skipped)" in done.stdout
    assert tree(out) == tree(one_process)  # complete, byte for byte, no temporaries left
    final = results(out)
    assert {k for k, r in final.items() if r["status"] == "skipped"} == before
    assert {r["status"] for r in final.values()} <= {"done", "skipped"}
    assert _last_run(out)["done"] == 6 - len(before)


def _records_left(out: Path) -> dict[str, dict[str, Any]]:
    """The records the killed run's processes appended (nothing was merged yet)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(out.glob("results.*jsonl")):
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            found[record["job"]] = record
    return found
