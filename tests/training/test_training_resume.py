"""Exact resume: stop or kill at any step, resume, and reach the weights of an uninterrupted run.

Also issue 18 item 5: a corrupt checkpoint is detected by its checksums and the previous one used.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import stage_config, trained_weights

from emo.errors import CheckpointError
from emo.training.checkpoints import list_checkpoints, verify_checkpoint
from emo.training.settings import load_config
from emo.training.trainer import train

SECTIONS = {
    "training": {
        "max_steps": 6,
        "batch_size": 2,
        "gradient_accumulation": 2,
        "device": "cpu",
        "ema_decay": 0.8,
        "threads": 1,
    },
    "checkpoints": {"every": 2, "keep": 5},
    "logging": {"every": 1, "progress_bar": False, "tensorboard": False},
    "optimizer": {"learning_rate": 1e-3, "warmup_steps": 2, "schedule": "cosine"},
}


def _config(prepared: Path, out: Path) -> dict:  # type: ignore[type-arg]
    return stage_config(2, prepared, out, **SECTIONS)


@pytest.fixture(scope="module")
def uninterrupted(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted")
    train(load_config(_config(prepared, out)))
    return out


def _assert_same_run(a: Path, b: Path) -> None:
    wa, wb = trained_weights(a), trained_weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name
    newest = sorted((a / "checkpoints").glob("step-*"))[-1].name
    ema_a = (a / "checkpoints" / newest / "ema.safetensors").read_bytes()
    assert ema_a == (b / "checkpoints" / newest / "ema.safetensors").read_bytes()


def test_stop_at_any_step_and_resume_equals_an_uninterrupted_run(
    prepared: Path, uninterrupted: Path, tmp_path: Path
) -> None:
    config = load_config(_config(prepared, tmp_path))
    first = train(config, stop_after=3)  # stops between checkpoints: saves step 3 too
    assert first.step == 3 and first.pipeline_dir is None
    state = json.loads((tmp_path / "checkpoints" / "step-00000003" / "state.json").read_text())
    # 3 steps x 2 micro-batches of 2 samples over 8 clips: epoch 1, batch 2 (4 per epoch).
    assert (state["epoch"], state["batch_in_epoch"]) == (1, 2)
    second = train(config, stop_after=5)
    assert second.resumed_from is not None and second.resumed_from.name == "step-00000003"
    last = train(config)
    assert last.step == 6 and last.pipeline_dir is not None
    _assert_same_run(uninterrupted, tmp_path)


def test_a_corrupt_checkpoint_is_detected_and_the_previous_one_used(
    prepared: Path, uninterrupted: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(_config(prepared, tmp_path))
    train(config, stop_after=4)
    newest = tmp_path / "checkpoints" / "step-00000004"
    assert verify_checkpoint(newest) is None
    weights = newest / "trained.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF  # one flipped bit pattern in a tensor: still a loadable file
    weights.write_bytes(bytes(data))
    assert verify_checkpoint(newest) == "trained.safetensors does not match its checksum"
    with caplog.at_level(logging.WARNING, logger="emo.training"):
        result = train(config)
    assert result.resumed_from is not None and result.resumed_from.name == "step-00000002"
    assert "step-00000004" in caplog.text and "corrupt" in caplog.text
    _assert_same_run(uninterrupted, tmp_path)


def test_only_corrupt_checkpoints_stop_the_run_with_a_clear_error(
    prepared: Path, tmp_path: Path
) -> None:
    config = load_config(_config(prepared, tmp_path))
    train(config, stop_after=2)
    for folder in list_checkpoints(tmp_path / "checkpoints"):
        (folder / "state.json").write_text("{}")
    with pytest.raises(CheckpointError, match="every checkpoint .* is corrupt"):
        train(config)


def test_resuming_with_another_global_batch_is_refused(prepared: Path, tmp_path: Path) -> None:
    train(load_config(_config(prepared, tmp_path)), stop_after=2)
    changed = _config(prepared, tmp_path)
    changed["training"]["batch_size"] = 1
    with pytest.raises(CheckpointError, match="global batch"):
        train(load_config(changed))


def test_a_killed_run_resumes_from_its_last_checkpoint(
    prepared: Path, uninterrupted: Path, tmp_path: Path
) -> None:
    config = _config(prepared, tmp_path)
    config["checkpoints"]["every"] = 1
    config_path = tmp_path / "stage2.json"
    config_path.write_text(json.dumps(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "emo.train", str(config_path)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "checkpoints" / "step-00000003").exists():
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resumed from" in done.stderr
    leftovers = [p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    _assert_same_run(uninterrupted, tmp_path)
