"""Pack a prepared data set small, to move it to a machine without PyAV or with little room.

``emo prepare`` stores every frame raw (96x96 RGB: 2 MB per 3-s clip). This packs a
prepared folder into

- ``videos/<id>.mp4``: the frames, H.264 4:4:4 at CRF 10 by default (``--crf``; 15-40 kB
  per 3-s 96-px clip, mean error about 0.6 grey levels; CRF 16, used for the shipped
  model's GPU run to fit the transfer limit: about 1 grey level);
- ``tensors/<id>.safetensors``: every other tensor of the clip but the raw audio, audio
  features in float16 (relative rounding 5e-4);
- ``dataset.json``, ``clips.jsonl``, ``skipped.jsonl`` as they were.

``unpack`` rebuilds a prepared folder from it, decoding with PyAV when installed, else with
OpenCV (the GPU image this project is lent has OpenCV, not PyAV). The raw ``audio`` tensor
is left out: only validation reads it (``validation.every``), the stages read the features.

Usage::

    python examples/training/pack_prepared.py pack runs/demo/data bundle/
    python examples/training/pack_prepared.py unpack bundle/ runs/demo/data
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

INDEX_FILES = ("dataset.json", "clips.jsonl", "skipped.jsonl")


def _encode(frames: np.ndarray, path: Path, fps: float, crf: int) -> None:
    import av

    with av.open(os.fspath(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv444p"
        stream.options = {"crf": str(crf), "preset": "slow"}
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _decode(path: Path) -> np.ndarray:
    try:
        import av
    except ImportError:
        import cv2  # the fallback where PyAV is missing

        capture = cv2.VideoCapture(os.fspath(path))
        images = []
        while True:
            ok, image = capture.read()
            if not ok:
                break
            images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        capture.release()
        return np.stack(images)
    with av.open(os.fspath(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def pack(data: Path, bundle: Path, crf: int = 10) -> int:
    """Pack the prepared folder ``data`` into ``bundle``; returns the clip count."""
    info = json.loads((data / "dataset.json").read_text())
    rows = [json.loads(line) for line in (data / "clips.jsonl").read_text().splitlines() if line]
    (bundle / "videos").mkdir(parents=True, exist_ok=True)
    (bundle / "tensors").mkdir(exist_ok=True)
    for row in rows:
        tensors = load_file(os.fspath(data / "clips" / f"{row['id']}.safetensors"))
        _encode(
            tensors.pop("frames").numpy(), bundle / "videos" / f"{row['id']}.mp4", info["fps"], crf
        )
        tensors.pop("audio", None)
        tensors.pop("latents", None)
        tensors["audio_features"] = tensors["audio_features"].half()
        save_file(tensors, os.fspath(bundle / "tensors" / f"{row['id']}.safetensors"))
    for name in INDEX_FILES:
        if (data / name).is_file():
            shutil.copyfile(data / name, bundle / name)
    return len(rows)


def unpack(bundle: Path, data: Path, limit: int | None = None) -> int:
    """Rebuild a prepared folder ``data`` from ``bundle`` (its first ``limit`` clips)."""
    lines = [line for line in (bundle / "clips.jsonl").read_text().splitlines() if line]
    rows = [json.loads(line) for line in lines[:limit]]
    (data / "clips").mkdir(parents=True, exist_ok=True)
    for row in rows:
        tensors = load_file(os.fspath(bundle / "tensors" / f"{row['id']}.safetensors"))
        frames = _decode(bundle / "videos" / f"{row['id']}.mp4")
        if frames.shape[0] != int(row["frames"]):
            raise SystemExit(f"{row['id']}: {frames.shape[0]} frames decoded, {row['frames']} kept")
        tensors["frames"] = torch.from_numpy(frames)
        tensors["audio_features"] = tensors["audio_features"].float()
        metadata = {"source": row["source"], "start_seconds": f"{row['start_seconds']:.6f}"}
        save_file(tensors, os.fspath(data / "clips" / f"{row['id']}.safetensors"), metadata)
    for name in INDEX_FILES:
        if (bundle / name).is_file():
            shutil.copyfile(bundle / name, data / name)
    (data / "clips.jsonl").write_text("".join(line + "\n" for line in lines[:limit]))
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("pack", "unpack"))
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="unpack only the first clips")
    parser.add_argument("--crf", type=int, default=10, help="H.264 quality of pack (lower: finer)")
    args = parser.parse_args(argv)
    if args.action == "pack":
        count = pack(args.source, args.target, args.crf)
    else:
        count = unpack(args.source, args.target, args.limit)
    print(f"{args.action}: {count} clips -> {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
