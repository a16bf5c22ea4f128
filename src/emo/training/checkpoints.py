"""Training checkpoints: written atomically, verified by checksums, resumed exactly.

A checkpoint is a folder ``OUTPUT/checkpoints/step-00000100/``:

- ``trained.safetensors``: the trained parameters (frozen ones are rebuilt from the
  stage's starting model and checked by their fingerprint);
- ``ema.safetensors``: the EMA weights, when kept;
- ``optimizer.pt``: optimizer, LR-scheduler and gradient-scaler states, and the RNG
  states (read back with ``torch.load(weights_only=True)``);
- ``state.json``: step, data position (epoch, batch), global batch, fingerprints;
- ``checksums.json``: SHA-256 of every other file, written last.

The folder is written under a temporary name and renamed when complete, so a
killed run never leaves a half checkpoint under a real name. On resume the newest
checkpoint whose checksums match is used; a corrupt one is reported and skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from emo.errors import CheckpointError

__all__ = [
    "CHECKSUMS",
    "find_resumable",
    "list_checkpoints",
    "prune_checkpoints",
    "read_checkpoint",
    "verify_checkpoint",
    "write_checkpoint",
]

logger = logging.getLogger("emo.training")

CHECKSUMS = "checksums.json"
_PREFIX = "step-"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_name(step: int) -> str:
    """Folder name of the checkpoint after ``step`` optimizer steps."""
    return f"{_PREFIX}{step:08d}"


def write_checkpoint(
    folder: Path,
    step: int,
    *,
    trained: dict[str, torch.Tensor],
    ema: dict[str, torch.Tensor] | None,
    training_state: dict[str, Any],
    state: dict[str, Any],
) -> Path:
    """Write a checkpoint atomically; returns its folder.

    Parameters
    ----------
    folder
        ``OUTPUT/checkpoints``.
    step
        Optimizer steps done.
    trained
        Trained parameters by name.
    ema
        EMA weights by name, or ``None``.
    training_state
        Optimizer / LR scheduler / scaler / RNG states (tensors and plain values).
    state
        JSON-ready position and fingerprints.
    """
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    final = folder / checkpoint_name(step)
    tmp = folder / f".{final.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in trained.items()},
            tmp / "trained.safetensors",
        )
        if ema is not None:
            save_file(
                {k: v.detach().cpu().contiguous() for k, v in ema.items()}, tmp / "ema.safetensors"
            )
        torch.save(training_state, tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
        sums = {p.name: _sha256(p) for p in sorted(tmp.iterdir())}
        (tmp / CHECKSUMS).write_text(json.dumps(sums, indent=1, sort_keys=True) + "\n")
        for path in tmp.iterdir():
            with path.open("rb") as f:
                os.fsync(f.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoint folders, oldest first (temporary leftovers of killed runs are removed)."""
    if not folder.is_dir():
        return []
    for leftover in folder.glob(f".{_PREFIX}*.tmp"):
        shutil.rmtree(leftover, ignore_errors=True)
    found = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith(_PREFIX)]
    return sorted(found, key=lambda p: p.name)


def verify_checkpoint(path: Path) -> str | None:
    """``None`` when every file of the checkpoint matches its checksum, else what is wrong."""
    sums_path = path / CHECKSUMS
    if not sums_path.is_file():
        return f"{CHECKSUMS} is missing"
    try:
        sums = json.loads(sums_path.read_text())
    except ValueError:
        return f"{CHECKSUMS} is not valid JSON"
    for name in ("trained.safetensors", "optimizer.pt", "state.json"):
        if name not in sums:
            return f"{name} is not listed in {CHECKSUMS}"
    for name, expected in sums.items():
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if _sha256(file) != expected:
            return f"{name} does not match its checksum"
    return None


def find_resumable(folder: Path, warn: Callable[[str], None] | None = None) -> Path | None:
    """The newest valid checkpoint, skipping (and reporting) corrupt ones.

    Raises
    ------
    CheckpointError
        If checkpoints exist but none is valid (resuming from scratch would silently
        throw away the run).
    """
    found = list_checkpoints(folder)
    for path in reversed(found):
        problem = verify_checkpoint(path)
        if problem is None:
            return path
        message = f"checkpoint {os.fspath(path)!r} is corrupt ({problem}); trying the previous one"
        logger.warning(message)
        if warn is not None:
            warn(message)
    if found:
        raise CheckpointError(
            f"every checkpoint in {os.fspath(folder)!r} is corrupt; remove them to start over"
        )
    return None


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Read a verified checkpoint: ``trained``, ``ema`` (or ``None``), ``training_state``, ``state``."""
    from safetensors.torch import load_file

    ema_path = path / "ema.safetensors"
    return {
        "trained": load_file(path / "trained.safetensors"),
        "ema": load_file(ema_path) if ema_path.is_file() else None,
        "training_state": torch.load(path / "optimizer.pt", weights_only=True),
        "state": json.loads((path / "state.json").read_text()),
    }


def prune_checkpoints(folder: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints."""
    found = list_checkpoints(folder)
    for path in found[: max(0, len(found) - keep)]:
        shutil.rmtree(path, ignore_errors=True)
