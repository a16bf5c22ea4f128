"""Lip sync, identity, head motion, seams and cost of a talking-head model, in one table.

Generates videos for held-out synthetic (identity, audio, speed) cases with each
model and scores them with :mod:`emo.evaluation` (mouth, pose and identity measured
by :mod:`emo.face`). The ground truth always runs first: it is the ceiling, and the
ratio columns compare every model with it in the same run. Or scores your own
videos (``--videos``) against their audio tracks.

::

    # the truth alone (the benchmark's own sanity check)
    python benchmarks/lipsync_motion.py --out bench/truth
    # a saved pipeline, and the random tiny demo for contrast
    python benchmarks/lipsync_motion.py --model path/to/pipeline --tiny --steps 20 --out bench/run
    # your own videos (each with audio; optional reference portrait)
    python benchmarks/lipsync_motion.py --videos my_videos/ --reference me.png --out bench/mine

Writes ``report.md`` and ``report.json`` into ``--out`` and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from emo.evaluation import heldout_cases, pipeline_generator, run_benchmark, truth_generator


def _pipeline(args: argparse.Namespace, source: str) -> Any:
    import torch

    from emo import EMOPipeline

    dtype = getattr(torch, args.dtype)
    if source == "tiny":
        return EMOPipeline.from_preset("tiny", face_mask="full", device=args.device, dtype=dtype)
    return EMOPipeline.from_pretrained(source, device=args.device, dtype=dtype)


def _score_videos(args: argparse.Namespace) -> dict[str, Any]:
    from emo.evaluation import score_video_file

    rows = {}
    for path in sorted(Path(args.videos).glob("*")):
        if path.suffix.lower() not in (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"):
            continue
        score = score_video_file(
            path, reference=args.reference, frames_per_clip=args.frames_per_clip
        )
        rows[path.name] = score.summary()
        print(path.name, json.dumps(rows[path.name]))
    return rows


def _videos_markdown(rows: dict[str, Any]) -> str:
    keys = ["lip_sync_loudness", "offset_loudness", "lip_sync_truth", "offset_truth", "identity",
            "appearance_psnr", "face_ratio", "head_velocity_mean", "head_velocity_var", "seam_ratio"]  # fmt: skip
    keys = [k for k in keys if any(k in r for r in rows.values())]
    lines = ["| video | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for name, row in rows.items():
        cells = []
        for key in keys:
            value = row.get(key)
            cells.append(
                "-"
                if value is None or (isinstance(value, float) and not math.isfinite(value))
                else f"{value:.3g}"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", action="append", default=[], help="saved pipeline folder (repeatable)"
    )
    parser.add_argument("--tiny", action="store_true", help="also run the random tiny preset")
    parser.add_argument("--videos", default=None, help="score the videos in this folder instead")
    parser.add_argument("--reference", default=None, help="portrait for --videos identity scores")
    parser.add_argument("--identities", type=int, default=4, help="held-out identities")
    parser.add_argument("--speeds", default="0,1,2", help="requested head speeds, deg/frame")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per case")
    parser.add_argument("--size", type=int, default=128, help="pixels")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps")
    parser.add_argument(
        "--frames-per-clip",
        "--clip-length",
        dest="frames_per_clip",
        type=int,
        default=None,
        help="frames per clip (default: the model's)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", default="benchmark_report", help="folder for report.md and report.json"
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    if args.videos is not None:
        rows = _score_videos(args)
        table = _videos_markdown(rows)
        (out / "report.json").write_text(json.dumps({"videos": rows}, indent=1))
    else:
        import torch

        generators: dict[str, Any] = {"truth": truth_generator()}
        frames_per_clip = args.frames_per_clip
        for source in [*args.model, *(["tiny"] if args.tiny else [])]:
            pipe = _pipeline(args, source)
            frames_per_clip = frames_per_clip or pipe.settings.frames_per_clip
            options: dict[str, Any] = {"generator": torch.Generator().manual_seed(args.seed)}
            if args.steps is not None:
                options["num_inference_steps"] = args.steps
            generators[Path(source).name or source] = pipeline_generator(pipe, **options)
        cases = heldout_cases(
            args.identities,
            speeds=[float(s) for s in args.speeds.split(",")],
            duration=args.duration,
            size=args.size,
            seed=args.seed,
        )
        report = run_benchmark(
            generators,
            cases,
            frames_per_clip=frames_per_clip or 12,
            progress=lambda line: print(line, file=sys.stderr),
        )
        table = report.to_markdown()
        (out / "report.json").write_text(json.dumps(report.to_json(), indent=1))
    (out / "report.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
