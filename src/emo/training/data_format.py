"""The prepared-data format ``emo prepare`` writes and the trainer reads.

An open layout, one safetensors file per clip::

    DATA_DIR/
      dataset.json              what was prepared and how (format, fps, size, audio encoder, VAE)
      clips.jsonl               one line per clip: {"id", "source", "start_seconds", "frames", "has_speed"}
      clips/<id>.safetensors    the tensors of one clip (below); metadata: source, times
      progress/<video>.json     per source video: "done" (its clips) or "skipped" (the reason)
      skipped.jsonl             every skipped video or clip with its reason

Tensors of a clip of ``f`` frames at ``dataset.json["resolution"]`` pixels:

- ``frames`` uint8 ``(f, s, s, 3)``: the face crop, RGB;
- ``boxes`` float32 ``(f, 4)``: face box ``x0, y0, x1, y1`` per frame, crop pixels;
- ``speed`` float32 ``(f,)``: head-rotation speed in degrees per frame (absent when
  no head pose was available);
- ``audio_features`` float32 ``(f, layers, dim)``: the audio-encoder features per frame;
- ``audio`` float32 ``(samples,)``: the clip's mono audio at the encoder's rate;
- ``latents`` float32 ``(f, c, s/k, s/k)``: VAE latents (mode x scaling factor), only
  when prepared with a VAE;
- ``mouth_boxes`` float32 ``(f, 4)``: box ``x0, y0, x1, y1`` around the lip landmarks
  per frame, crop pixels (absent without the face extra; ``emo mouth-boxes`` adds it
  to an existing data set), for the loss's mouth weight.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from emo.configuration import atomic_write_text
from emo.errors import CheckpointError, InputError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "clip_metadata",
    "read_clip",
    "read_clip_index",
    "read_dataset_info",
    "write_clip",
    "write_dataset_info",
]

FORMAT_NAME = "emo-clips"
FORMAT_VERSION = 1


def write_clip(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write one clip file atomically (a temporary name, then a rename)."""
    from safetensors.torch import save_file

    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, os.fspath(tmp), metadata)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def clip_metadata(row: dict[str, Any]) -> dict[str, str]:
    """The string metadata of a clip file (source video, start time) from its ``clips.jsonl`` row.

    What ``emo prepare`` writes, for tools that rewrite a clip file with more tensors.
    """
    return {
        "source": str(row.get("source", "")),
        "start_seconds": f"{float(row.get('start_seconds', 0.0)):.6f}",
    }


def read_clip(path: Path) -> dict[str, torch.Tensor]:
    """Read the tensors of one clip file.

    Raises
    ------
    CheckpointError
        If the file is missing or not a readable safetensors file.
    """
    from safetensors.torch import load_file

    try:
        return load_file(os.fspath(path))
    except (OSError, ValueError, RuntimeError) as exc:  # safetensors raises several kinds
        raise CheckpointError(
            f"prepared clip {os.fspath(path)!r} cannot be read ({exc}); run emo prepare again"
        ) from exc
    except Exception as exc:  # SafetensorError is not exported as a stable class
        raise CheckpointError(
            f"prepared clip {os.fspath(path)!r} cannot be read ({exc}); run emo prepare again"
        ) from exc


def read_dataset_info(root: Path) -> dict[str, Any]:
    """Read ``DATA_DIR/dataset.json``, checking it is a prepared data set of a known version."""
    path = root / "dataset.json"
    if not path.is_file():
        raise InputError(
            f"{os.fspath(root)!r} is not a prepared data set (no dataset.json); run "
            "emo prepare VIDEO_DIR -o DATA_DIR first"
        )
    try:
        info: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"{os.fspath(path)!r} is not valid JSON: {exc}") from None
    if info.get("format") != FORMAT_NAME or int(info.get("version", 0)) > FORMAT_VERSION:
        raise InputError(
            f"{os.fspath(path)!r} is format {info.get('format')!r} version {info.get('version')}; "
            f"this emo reads {FORMAT_NAME!r} up to version {FORMAT_VERSION}"
        )
    return info


def write_dataset_info(root: Path, info: dict[str, Any]) -> None:
    """Write ``DATA_DIR/dataset.json`` atomically."""
    atomic_write_text(root / "dataset.json", json.dumps(info, indent=2, sort_keys=True) + "\n")


def read_clip_index(root: Path) -> list[dict[str, Any]]:
    """The clips of a prepared data set (``clips.jsonl``), in their stored order."""
    path = root / "clips.jsonl"
    if not path.is_file():
        raise InputError(
            f"{os.fspath(root)!r} has no clips.jsonl; emo prepare did not finish there, run it again"
        )
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows
