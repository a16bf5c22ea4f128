"""Jobs per minute of ``emo generate-many``: one process against two (torchrun, gloo), same run.

Saves a pipeline of a preset's shape with random weights, writes ``--jobs`` jobs
(the example portrait, ``--seconds`` of the example speech each, a seed per job)
and makes them, each time into a fresh output folder:

- ``1 process``: ``python -m emo.generate_many`` with every usable core as torch threads;
- ``2 processes``: ``torchrun --nproc_per_node 2 -m emo.generate_many``, the cores
  split between them (one thread each on 2 cores);
- ``1 process, 1 thread`` (with ``--single-thread``): what one of the two gets.

The configurations alternate ``--repeat`` times and the fastest of each counts, so
all see the same machine. Two figures per row: jobs per minute of the whole command
(start-up and model loading included) and of the run itself (``runs.jsonl``: from the
plan to the merged results). The 2-process outputs are checked byte for byte against
the 1-process, 1-thread ones when both ran (torch's CPU results depend on the thread
count, so that is the pair that must agree)::

    python benchmarks/generate_many.py                           # tiny, 64 px, 8 jobs
    python benchmarks/generate_many.py --jobs 16 --seconds 2 --single-thread
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from machine import describe, usable_cores

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

_SAVE = r"""
import sys
from emo.pipelines.emo_pipeline import EMOPipeline
from emo.pipelines.settings import PipelineSettings
folder, preset, size, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
pipe = EMOPipeline.from_preset(preset, audio_encoder="mel", face_mask="full", seed=0)
pipe.settings = PipelineSettings(
    height=size, width=size, fps=25.0, frames_per_clip=8, motion_frames=2,
    num_inference_steps=steps, guidance_scale=2.0, reference_guidance_scale=1.0,
)
pipe.save_pretrained(folder)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare(work: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """The saved pipeline and the job file."""
    import soundfile as sf

    model = work / "model"
    subprocess.run(
        [sys.executable, "-c", _SAVE, str(model), args.preset, str(args.size), str(args.steps)],
        check=True,
    )
    samples, rate = sf.read(str(EXAMPLES / "speech.wav"), dtype="float32")
    piece = int(args.seconds * rate)
    jobs = []
    for i in range(args.jobs):
        start = (i * rate // 3) % max(1, len(samples) - piece)
        audio = work / f"audio{i}.wav"
        sf.write(str(audio), samples[start : start + piece], rate)
        portrait = str(EXAMPLES / "portrait.png")
        jobs.append({"portrait": portrait, "audio": str(audio), "output": f"v{i}.mp4", "seed": i})
    job_file = work / "jobs.jsonl"
    job_file.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    return model, job_file


def _run(
    name: str, processes: int, threads: int, model: Path, jobs: Path, out: Path
) -> dict[str, Any]:
    launcher = ["-m", "emo.generate_many"]
    if processes > 1:
        port = str(_free_port())
        launcher = ["-m", "torch.distributed.run", "--nproc_per_node", str(processes)]
        launcher += ["--master_port", port, "-m", "emo.generate_many"]
    command = [sys.executable, *launcher, str(jobs), "-o", str(out), "--model", str(model)]
    command += ["--quiet", "--threads", str(threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "EMO_DISABLE_PLUGINS": "1"}
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    run = json.loads((out / "runs.jsonl").read_text().splitlines()[-1])
    digests = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("*.mp4"))
    }
    return {"wall": wall, "run": float(run["seconds"]), "jobs": int(run["done"]), "sha": digests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--size", type=int, default=64, help="height and width in pixels")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps")
    parser.add_argument("--jobs", type=int, default=8, help="jobs in the list")
    parser.add_argument("--seconds", type=float, default=1.0, help="audio seconds per job")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each configuration")
    parser.add_argument("--single-thread", action="store_true", help="also 1 process with 1 thread")
    args = parser.parse_args()

    cores = usable_cores()
    configs = [("1 process", 1, cores), ("2 processes", 2, max(1, cores // 2))]
    if args.single_thread:
        configs.append(("1 process, 1 thread", 1, 1))
    print(describe())
    print(
        f"{args.jobs} jobs: {args.preset} preset (random weights), {args.size}x{args.size}, "
        f"{args.steps} steps, {args.seconds:g} s of audio each ({int(args.seconds * 25)} frames)"
    )
    best: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model, jobs = _prepare(work, args)
        for repeat in range(args.repeat):
            for name, processes, threads in configs:
                out = work / f"out-{len(best)}-{repeat}-{processes}-{threads}"
                result = _run(name, processes, threads, model, jobs, out)
                if name not in best or result["wall"] < best[name]["wall"]:
                    best[name] = {**result, "threads": threads, "processes": processes}
    print(
        f"{'configuration':<22} {'threads':>7} {'command s':>9} {'jobs/min':>8} "
        f"{'run s':>7} {'jobs/min':>8}"
    )
    for name, r in best.items():
        print(
            f"{name:<22} {r['threads']:>7} {r['wall']:>9.1f} {60 * r['jobs'] / r['wall']:>8.1f} "
            f"{r['run']:>7.1f} {60 * r['jobs'] / r['run']:>8.1f}"
        )
    one, two = best["1 process"], best["2 processes"]
    print(
        f"2 processes / 1 process: {one['wall'] / two['wall']:.2f}x jobs per minute "
        f"(command), {one['run'] / two['run']:.2f}x (run)"
    )
    if "1 process, 1 thread" in best:
        same = best["1 process, 1 thread"]["sha"] == two["sha"]
        print(f"2-process videos equal the 1-process, 1-thread ones byte for byte: {same}")


if __name__ == "__main__":
    main()
