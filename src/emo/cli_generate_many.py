"""``emo generate-many JOBS -o OUT_DIR``: one video per line of a job list, resumable.

Many processes (one GPU each): ``torchrun --nproc_per_node N -m emo.generate_many JOBS
-o OUT_DIR``; the jobs are shared out over the processes (see :mod:`emo.jobs`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from emo.errors import InputError

__all__ = ["add_arguments", "register", "run_generate_many"]

_DTYPES = ("float32", "float16", "bfloat16")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments ``emo generate-many`` and ``python -m emo.generate_many`` share."""
    p.add_argument("jobs", help="job list: JSONL or CSV (portrait, audio, output[, seed, ...])")
    p.add_argument(
        "-o", "--output-dir", required=True, help="folder for the videos and results.jsonl"
    )
    p.add_argument(
        "--model",
        default=None,
        help="saved pipeline folder or bundled model name (default: the bundled emo-demo model)",
    )
    p.add_argument(
        "--retry-failed", action="store_true", help="run the jobs that failed before again"
    )
    p.add_argument("--steps", type=int, default=None, help="denoising steps (unless a job says)")
    p.add_argument("--seed", type=int, default=None, help="random seed (unless a job says; 0)")
    p.add_argument("--size", type=int, default=None, help="height and width (unless a job says)")
    p.add_argument("--fps", type=float, default=None, help="frames per second (unless a job says)")
    p.add_argument(
        "--init-strength", type=float, default=None, help="see emo generate (unless a job says)"
    )
    p.add_argument("--scheduler", default=None, help="scheduler plugin name")
    p.add_argument("--face-mask", default=None, help="face mask plugin name (auto, full, ...)")
    p.add_argument(
        "--device",
        default="auto",
        help="auto (default: the GPU of this process's LOCAL_RANK, else the CPU), cpu, cuda, "
        "or one device such as cuda:1",
    )
    p.add_argument("--dtype", default="float32", choices=_DTYPES, help="weights dtype")
    p.add_argument("--threads", type=int, default=None, help="CPU threads of each process")
    p.add_argument("--quiet", action="store_true", help="no progress bars (the summary stays)")
    p.add_argument(
        "--no-watermark",
        action="store_true",
        help="leave the frames unmarked (see emo generate --no-watermark)",
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``generate-many`` subcommand to the ``emo`` parser."""
    p = sub.add_parser(
        "generate-many",
        help="generate one video per line of a job list (resumable; torchrun for many GPUs)",
        description="Generate one video per job of a JSONL or CSV list with one loaded model. "
        "Running it again skips the jobs already done. For N processes (GPUs) use "
        "torchrun --nproc_per_node N -m emo.generate_many JOBS -o OUT_DIR.",
    )
    add_arguments(p)
    p.set_defaults(func=run_generate_many)


def _device(text: str) -> tuple[str, Any]:
    """``(init_distributed's device, explicit device or None)`` for ``--device``."""
    import torch

    if text in ("auto", "cpu", "cuda"):
        if text == "cuda" and not torch.cuda.is_available():
            raise InputError("--device cuda asked for, but torch sees no CUDA GPU; use auto or cpu")
        return text, None
    try:
        device = torch.device(text)
    except RuntimeError as exc:
        raise InputError(f"--device {text!r} is not a torch device: {exc}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {text} asked for, but torch sees no CUDA GPU; use cpu")
    if device.type == "meta":
        raise InputError("--device meta holds no data and cannot generate; use cpu or cuda")
    return "cpu", device


def _load(args: argparse.Namespace, device: Any, dtype: Any) -> tuple[Any, str]:
    """The pipeline of ``--model`` (or the default model) and the name it was loaded by."""
    from emo.pipelines.emo_pipeline import EMOPipeline
    from emo.pretrained import default_model

    overrides: dict[str, Any] = {}
    if args.scheduler:
        overrides["scheduler"] = args.scheduler
    if args.face_mask:
        overrides["face_mask"] = args.face_mask
    model = args.model or default_model()
    if model:
        pipe = EMOPipeline.from_pretrained(model, device=device, dtype=dtype, **overrides)
        return pipe, model
    print(
        "emo: no --model given and no default model: using the 'tiny' preset with RANDOM "
        "weights (the videos will show noise, not talking faces)",
        file=sys.stderr,
    )
    pipe = EMOPipeline.from_preset(
        "tiny",
        scheduler=overrides.get("scheduler", "ddim"),
        face_mask=overrides.get("face_mask"),
        device=device,
        dtype=dtype,
    )
    return pipe, "preset:tiny"


def run_generate_many(args: argparse.Namespace) -> int:
    """Run ``emo generate-many`` with parsed arguments; returns the exit code.

    0 when no job of the list is failed; 1 when some are (each one's message is in
    ``results.jsonl`` and the summary). Under torchrun only rank 0 says 1; the other
    processes end with 0, so torchrun never stops a process because a job failed.
    """
    import torch

    from emo.jobs.runner import DEFAULT_TIMEOUT, generate_many
    from emo.training.distributed import init_distributed

    for flag, value in (
        ("--steps", args.steps),
        ("--size", args.size),
        ("--threads", args.threads),
    ):
        if value is not None and value <= 0:
            raise InputError(f"{flag} must be positive, got {value}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    kind, explicit = _device(args.device)
    ctx = init_distributed(kind, "gloo", timeout=DEFAULT_TIMEOUT)
    try:
        device = explicit if explicit is not None else ctx.device
        dtype = getattr(torch, args.dtype)
        pipe, model = _load(args, device, dtype)
        defaults = {
            "seed": args.seed,
            "steps": args.steps,
            "size": args.size,
            "fps": args.fps,
            "init_strength": args.init_strength,
        }
        fingerprint = json.dumps(
            {
                "model": model,
                "dtype": args.dtype,
                "scheduler": args.scheduler,
                "face_mask": args.face_mask,
            },
            sort_keys=True,
        )
        summary = generate_many(
            pipe,
            args.jobs,
            args.output_dir,
            defaults={k: v for k, v in defaults.items() if v is not None},
            retry_failed=args.retry_failed,
            progress=not args.quiet,
            watermark=not args.no_watermark,
            fingerprint=fingerprint,
            dist=ctx,
        )
    finally:
        ctx.close()
    if not ctx.is_main:
        return 0
    print(summary.format(), flush=True)
    return 0 if summary.ok else 1
