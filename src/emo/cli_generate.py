"""``emo generate``: portrait + audio -> video, from the command line."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from emo.errors import InputError, InsufficientMemoryError

__all__ = ["run_generate"]

_DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}
_OVERLAP = {"auto": None, "on": True, "off": False}


def _parse_box(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise InputError(
            f"--box {text!r} must be four numbers x0,y0,x1,y1 (pixels, or fractions of the image)"
        )
    return values


def _parse_output_size(text: str | int | None) -> int | str | None:
    """``--output-size``: ``None`` (the model's setting), ``"native"`` or a positive int."""
    from emo.pipelines.output_size import NATIVE

    if text is None or text == NATIVE or isinstance(text, int):
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise InputError(
            f"--output-size must be a positive number of pixels or 'native', got {text!r}"
        )
    from emo.limits import check_frame_size

    check_frame_size(value, value, "--output-size frame size")
    return value


def _check_arguments(args: argparse.Namespace) -> None:
    """Check what can be checked before a (possibly large) model is loaded."""
    for label, value in (("image", args.image), ("audio", args.audio)):
        if not Path(value).exists():
            raise InputError(f"{label} file {value!r} does not exist")
    if not str(args.output).strip():
        raise InputError("-o/--output is empty; give a file name such as out.mp4")
    for flag, value in (("--steps", args.steps), ("--size", args.size), ("--fps", args.fps)):
        if value is not None and not value > 0:
            raise InputError(f"{flag} must be positive, got {value}")
    if args.size is not None and args.size % 8:
        raise InputError(f"--size must be a multiple of 8, got {args.size}")
    args.output_size = _parse_output_size(getattr(args, "output_size", None))
    if args.box is not None and args.face_mask not in (None, "box"):
        raise InputError("--box sets the face region itself; leave out --face-mask")
    from emo.pipelines.input_checks import check_generation_inputs

    # Huge inputs are refused from their headers now, before a model is loaded.
    size = args.size or 0
    check_generation_inputs(args.image, args.audio, width=size, height=size)
    if args.writer is None:
        from emo.io.writers import writer_for_path

        writer_for_path(args.output)  # fails now, not after loading, for an unknown suffix
    _check_output_free(Path(args.output))


def _check_output_free(output: Path) -> None:
    """Fail now, not after loading a model, if another run is writing ``output``.

    The writer claims the output for real when it opens; this only looks early.
    """
    from emo.io.claim import OutputClaim

    if output.parent.is_dir():
        OutputClaim(output).acquire().release()


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError))):
        return True
    text = str(exc)
    # CPU allocations fail with a plain RuntimeError from torch's allocator.
    return isinstance(exc, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text.lower()
    )


def run_generate(args: argparse.Namespace) -> int:
    """Run ``emo generate`` with parsed arguments; returns the exit code.

    Without ``--model`` :func:`emo.pretrained.default_model` is used (the bundled demonstration
    model, or ``$EMO_DEFAULT_MODEL``); when there is none, the ``tiny`` preset with random weights.

    Raises
    ------
    InsufficientMemoryError
        When the model or the generation does not fit in memory (RAM or GPU).
    """
    try:
        return _run_generate(args)
    except (MemoryError, RuntimeError) as exc:
        if not _is_out_of_memory(exc):
            raise
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InsufficientMemoryError(
            f"not enough memory on --device {args.device} for this generation "
            f"(--size {args.size or 'default'}, --dtype {args.dtype}): {detail[:200]}; "
            "use a smaller --size, a GPU with more memory, or --dtype bfloat16 on a GPU"
        ) from exc


def _run_generate(args: argparse.Namespace) -> int:
    import torch

    from emo.pipelines.emo_pipeline import EMOPipeline

    _check_arguments(args)
    from emo.cli_provenance import content_credentials_from, watermark_from

    # Keys are read and checked now: a bad one fails before the model loads.
    watermark = watermark_from(args)
    credentials = content_credentials_from(args)
    try:
        device = torch.device(args.device)
    except RuntimeError as exc:
        raise InputError(f"--device {args.device!r} is not a torch device: {exc}") from exc
    if device.type == "meta":
        raise InputError("--device meta holds no data and cannot generate; use cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but torch sees no CUDA GPU; use --device cpu")
    dtype = getattr(torch, _DTYPES[args.dtype])
    overrides: dict[str, Any] = {}
    if args.scheduler:
        overrides["scheduler"] = args.scheduler
    if args.box is not None:
        from emo.face_masks.simple import BoxMask

        overrides["face_mask"] = BoxMask(box=_parse_box(args.box))
    elif args.face_mask:
        overrides["face_mask"] = args.face_mask
    from emo.pretrained import DEFAULT_MODEL, default_model

    model = args.model or default_model()
    if model:
        if not args.model and not args.quiet:
            print(
                f"emo: no --model given: using {model!r}"
                + (
                    ", the bundled demonstration model for synthetic cartoon-like faces "
                    "(64x64), not photographs"
                    if model == DEFAULT_MODEL
                    else ""
                ),
                file=sys.stderr,
            )
        from emo.pipelines.hallo_pipeline import HalloPipeline
        from emo.pipelines.loading import is_hallo_model

        if is_hallo_model(model):
            hallo = HalloPipeline.from_pretrained(
                model,
                device=device,
                dtype=dtype,
                **({"scheduler": overrides["scheduler"]} if "scheduler" in overrides else {}),
            )
            return _run_hallo(args, hallo, watermark, credentials)
        pipe = EMOPipeline.from_pretrained(model, device=device, dtype=dtype, **overrides)
    else:
        print(
            "emo: no --model given and no default model: using the 'tiny' preset with RANDOM "
            "weights (the video will show noise, not a talking face)",
            file=sys.stderr,
        )
        pipe = EMOPipeline.from_preset(
            "tiny",
            scheduler=overrides.get("scheduler", "ddim"),
            face_mask=overrides.get("face_mask"),
            device=device,
            dtype=dtype,
        )
    pipe.set_progress_bar_config(disable=args.quiet)
    if getattr(args, "compile", False):
        pipe.compile()
    generator = torch.Generator("cpu").manual_seed(args.seed)
    size = args.size
    began = time.perf_counter()
    out = pipe(
        args.image,
        args.audio,
        height=size,
        width=size,
        fps=args.fps,
        num_inference_steps=args.steps,
        init_strength=args.init_strength,
        output_size=args.output_size,
        generator=generator,
        output_path=args.output,
        writer=args.writer,
        watermark=watermark,
        content_credentials=credentials,
        overlap_decoding=_OVERLAP[getattr(args, "overlap_decoding", "auto")],
    )
    if not isinstance(out, tuple):
        print(
            f"emo: wrote {out.path} ({out.num_frames} frames at {out.fps:g} fps) "
            f"in {time.perf_counter() - began:.1f} s"
        )
    return 0


def _run_hallo(args: argparse.Namespace, pipe: Any, watermark: Any, credentials: Any) -> int:
    """``emo generate`` with a Hallo model: its own inputs, the same output path."""
    import torch

    unused = [
        flag
        for flag, value in (
            ("--init-strength", args.init_strength),
            ("--fps", args.fps),
            ("--box", args.box),
            ("--face-mask", args.face_mask),
            ("--output-size", args.output_size),
        )
        if value is not None
    ]
    if unused:
        raise InputError(
            f"{', '.join(unused)} do not apply to a Hallo model (its masks come from the "
            "portrait's landmarks, it runs at 25 fps and writes the size it generates); leave "
            "them out"
        )
    pipe.set_progress_bar_config(disable=args.quiet)
    began = time.perf_counter()
    out = pipe(
        args.image,
        args.audio,
        output_path=args.output,
        generator=torch.Generator("cpu").manual_seed(args.seed),
        size=args.size,
        num_inference_steps=args.steps,
        vocal_separation=False if args.no_vocal_separation else None,
        writer=args.writer,
        watermark=watermark,
        content_credentials=credentials,
    )
    print(
        f"emo: wrote {out.path} ({out.num_frames} frames at {out.fps:g} fps) "
        f"in {time.perf_counter() - began:.1f} s"
    )
    return 0
