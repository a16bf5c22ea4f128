"""The performance benchmarks still run (their smoke settings) and print what they promise."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(script: str, *args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_gpu_benchmark_smoke_run_on_the_cpu() -> None:
    text = _run("gpu_seconds_per_frame.py", "--device", "cpu", "--quick")
    assert text.startswith("machine: ") and "torch " in text
    per_frame = re.search(r"end to end into an MP4 : +[\d.]+ s = ([\d.]+) s per frame", text)
    assert per_frame is not None and float(per_frame.group(1)) > 0
    assert "4 frames" in text and "2 DDIM steps" in text


def test_gpu_benchmark_hallo_smoke_run_on_the_cpu() -> None:
    text = _run("gpu_seconds_per_frame.py", "--model", "hallo", "--device", "cpu", "--quick")
    assert text.startswith("machine: ") and "HalloPipeline tiny" in text
    per_frame = re.search(r"end to end into an MP4 : +[\d.]+ s = ([\d.]+) s per frame", text)
    assert per_frame is not None and float(per_frame.group(1)) > 0
    assert "clips of 4 frames" in text and "2 DDIM steps" in text


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux /proc")
def test_loading_benchmark_prints_both_ratios() -> None:
    text = _run("pipeline_loading.py", "--preset", "tiny", "--no-wav2vec2", "--repeat", "1")
    assert text.startswith("saving a random tiny pipeline")
    assert "machine: " in text
    row = re.search(
        r"EMOPipeline.from_pretrained : +[\d.]+ s = ([\d.]+)x the read, ([\d.]+)x load_file.*"
        r"peak RSS [\d.]+ GiB = ([\d.]+)x the weights",
        text,
    )
    assert row is not None, text
    assert all(float(value) > 0 for value in row.groups())
