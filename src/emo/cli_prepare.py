"""``emo prepare VIDEO_DIR -o DATA_DIR``: talking-head videos -> a training set."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

__all__ = ["register", "run_mouth_boxes", "run_prepare"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``prepare`` subcommand to the ``emo`` parser."""
    p = sub.add_parser(
        "prepare",
        help="turn a folder (or manifest) of talking-head videos into a training set",
        description="Cut videos into clips at scene changes, crop faces, compute head speed, "
        "audio features and (optionally) VAE latents. Resumable: run it again to continue.",
    )
    p.add_argument("videos", help="folder of videos (searched recursively) or a manifest file")
    p.add_argument("-o", "--output", required=True, help="data folder to write (or resume)")
    p.add_argument("--fps", type=float, default=25.0, help="training frame rate (default 25)")
    p.add_argument("--size", type=int, default=512, help="face-crop side in pixels (default 512)")
    p.add_argument("--min-seconds", type=float, default=3.0, help="shortest clip (default 3)")
    p.add_argument("--max-seconds", type=float, default=12.0, help="longest clip (default 12)")
    p.add_argument("--crop-scale", type=float, default=2.0, help="face box growth before cropping")
    p.add_argument("--audio-encoder", default="mel", help="audio-encoder plugin (default mel)")
    p.add_argument(
        "--audio-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="audio-encoder argument, e.g. model_path=/models/wav2vec2-base (repeatable)",
    )
    p.add_argument("--face-mask", default="auto", help="face detector plugin (default auto)")
    p.add_argument("--vae", default=None, help="VAE or pipeline folder: cache latents too")
    p.add_argument("--workers", type=int, default=1, help="videos prepared in parallel")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_prepare)
    m = sub.add_parser(
        "mouth-boxes",
        help="add mouth boxes (for the loss's mouth weight) to a prepared data set",
        description="Find the lips in every frame of a prepared data set's clips that have no "
        "mouth boxes yet, and store them in the clip files. Needs emo[face]. Resumable.",
    )
    m.add_argument("data", help="folder written by emo prepare")
    m.add_argument("--quiet", action="store_true", help="no progress bar")
    m.set_defaults(func=run_mouth_boxes)


def run_prepare(args: argparse.Namespace) -> int:
    """Run ``emo prepare`` with parsed arguments; returns the exit code."""
    from emo.training.prepare import PrepareSettings, parse_encoder_options, prepare_dataset

    logging.basicConfig(level=logging.WARNING, format="emo prepare: %(message)s")
    settings = PrepareSettings(
        fps=args.fps,
        resolution=args.size,
        min_seconds=args.min_seconds,
        max_seconds=args.max_seconds,
        crop_scale=args.crop_scale,
        audio_encoder=args.audio_encoder,
        audio_encoder_config=parse_encoder_options(args.audio_option) or None,
        face_mask=args.face_mask,
        vae=args.vae,
    )
    report = prepare_dataset(
        args.videos,
        args.output,
        settings,
        workers=args.workers,
        threads_per_worker=args.threads,
        progress=not args.quiet,
    )
    print(
        f"emo: {report.clips} clips in {args.output} ({report.videos_done} videos prepared now, "
        f"{report.videos_resumed} already done, {len(report.skipped)} skipped; reasons in "
        f"{args.output}/skipped.jsonl)",
        file=sys.stdout,
    )
    return 0


def run_mouth_boxes(args: argparse.Namespace) -> int:
    """Run ``emo mouth-boxes`` with parsed arguments; returns the exit code."""
    from emo.training.mouth import add_mouth_boxes

    bar: Any = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(unit="clip", desc="mouth boxes")

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        report = add_mouth_boxes(args.data, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    missed = f"; no lips found in {len(report.missed)}" if report.missed else ""
    print(
        f"emo: mouth boxes added to {report.added} clips in {args.data} "
        f"({report.present} had them{missed})",
        file=sys.stdout,
    )
    return 0
