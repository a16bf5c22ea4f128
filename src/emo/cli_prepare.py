"""``emo prepare VIDEO_DIR -o DATA_DIR``: talking-head videos -> a training set."""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["register", "run_prepare"]


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
