"""Decoding and writing each clip while the next is denoised: time, memory and bytes, on vs off.

Generates the same video (random weights of a preset, a fixed seed) to an MP4 with
``overlap_decoding=False`` and ``True``, each run in a fresh process, alternating
``--repeat`` times (the fastest of each counts, so both see the same machine), and
prints the seconds, the speed-up, the peak resident memory of each, how much of a
clip's time the decoding and writing take when run alone, and whether the two
files are byte-identical::

    python benchmarks/decode_overlap.py                                    # tiny, CPU
    python benchmarks/decode_overlap.py --preset sd15 --device cuda --dtype float16 --size 512 --steps 40

On a CPU the denoising already runs on every core, so the background thread only
competes with it; on a GPU the VAE's kernels and the CPU's video encoding overlap
the GPU's denoising.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from machine import describe

_CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from emo import EMOPipeline
from emo.pipelines.settings import PipelineSettings

args = json.loads(sys.argv[1])
if args["threads"]:
    torch.set_num_threads(args["threads"])
dtype = getattr(torch, args["dtype"])
pipe = EMOPipeline.from_preset(args["preset"], face_mask="full", device=args["device"], dtype=dtype)
pipe.set_progress_bar_config(disable=True)
size = args["size"] or pipe.settings.height
pipe.settings = pipe.settings.replace(height=size, width=size, num_inference_steps=args["steps"])
rate = 16000
t = np.arange(int(args["seconds"] * rate)) / rate
audio = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
portrait = np.full((size, size, 3), 128, np.uint8)
portrait[size // 4 : 3 * size // 4, size // 3 : 2 * size // 3] = (200, 160, 140)

def sync():
    if args["device"].startswith("cuda"):
        torch.cuda.synchronize()

def run(overlap, path):
    sync()
    began = time.perf_counter()
    out = pipe(portrait, audio, audio_rate=rate, generator=torch.Generator().manual_seed(0),
               output_path=path, overlap_decoding=overlap)
    sync()
    return time.perf_counter() - began, out.num_frames

if args["mode"] == "parts":  # how long decoding + writing alone take, per clip
    clip = pipe.settings.frames_per_clip
    latents = torch.randn(1, 4, clip, size // 8, size // 8, device=args["device"], dtype=dtype)
    from emo.io.writers import writer_for_path
    writer = writer_for_path(args["path"])
    with writer.open(args["path"], fps=25.0, width=size, height=size) as session:
        sync(); began = time.perf_counter()
        for _ in range(3):
            frames = pipe._decode(latents)
            session.write(frames)
        sync()
    print("RESULT " + json.dumps({"seconds_per_clip": (time.perf_counter() - began) / 3}))
    sys.exit()
seconds, frames = run(args["mode"] == "on", args["path"])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
gpu_peak = torch.cuda.max_memory_allocated() if args["device"].startswith("cuda") else 0
print("RESULT " + json.dumps({"seconds": seconds, "frames": frames, "peak": peak, "gpu_peak": gpu_peak}))
"""


def child(settings: dict[str, Any]) -> dict[str, Any]:
    """One generation (or the parts timing) in a fresh process."""
    run = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(settings)],
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        raise SystemExit(f"child process failed:\n{run.stderr[-3000:]}")
    line = [x for x in run.stdout.splitlines() if x.startswith("RESULT ")][-1]
    data: dict[str, Any] = json.loads(line[len("RESULT ") :])
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--size", type=int, default=256, help="pixels (0: the preset's)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=4.0, help="audio length")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (the fastest counts)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    base = {k: getattr(args, k) for k in ("preset", "device", "dtype", "size", "steps", "seconds")}
    base["threads"] = args.threads
    rows: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    digests: dict[str, set[str]] = {"off": set(), "on": set()}
    with tempfile.TemporaryDirectory() as tmp:
        parts = child({**base, "mode": "parts", "path": str(Path(tmp) / "parts.mp4")})
        for round_index in range(args.repeat):
            for mode in ("off", "on"):
                path = Path(tmp) / f"{mode}{round_index}.mp4"
                rows[mode].append(child({**base, "mode": mode, "path": str(path)}))
                digests[mode].add(hashlib.sha256(path.read_bytes()).hexdigest())
    off = min(rows["off"], key=lambda r: r["seconds"])
    on = min(rows["on"], key=lambda r: r["seconds"])
    mib = 2**20
    print(describe(args.device))
    print(
        f"preset {args.preset}, {args.size or 'preset'} px, {args.steps} steps, {args.device} "
        f"{args.dtype}, {off['frames']} frames ({args.seconds:g} s of audio)"
    )
    print(f"decoding + writing one clip alone: {parts['seconds_per_clip']:.3f} s")
    for name, row in (("sequential (off)", off), ("overlapped (on)", on)):
        gpu = f", GPU peak {row['gpu_peak'] / mib:.0f} MiB" if row["gpu_peak"] else ""
        print(
            f"{name:<17}: {row['seconds']:7.2f} s ({row['seconds'] / row['frames']:.3f} s/frame), "
            f"peak RSS {row['peak'] / mib:.0f} MiB{gpu}"
        )
    print(f"overlapped / sequential time: {on['seconds'] / off['seconds']:.3f}")
    same = len(digests["off"] | digests["on"]) == 1
    print(f"all {2 * args.repeat} videos byte-identical: {same}")
    print(
        "times are noisy on a shared machine; the ratio comes from one run "
        f"(fastest of {args.repeat} alternating rounds)"
    )


if __name__ == "__main__":
    main()
