"""``emo detect``: does a video carry emo's watermark and label? Exit 0 yes, 1 no."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_detect_parser", "run_detect"]


def run_detect(args: argparse.Namespace) -> int:
    """Run ``emo detect`` with parsed arguments; 0 when every file is watermarked, else 1."""
    from emo.provenance.detect import detect

    found_all = True
    for path in args.paths:
        result = detect(path, key=args.key, max_frames=args.max_frames)
        found_all = found_all and result.watermarked
        if args.json:
            print(
                json.dumps(
                    {
                        "path": path,
                        "watermarked": result.watermarked,
                        "version": result.payload.version if result.payload else None,
                        "video_id": result.payload.video_id if result.payload else None,
                        "confidence": result.confidence,
                        "score": result.score,
                        "scale": result.scale,
                        "label": result.label,
                    }
                )
            )
        else:
            print(f"{path}:")
            print("  " + result.summary().replace("\n", "\n  "))
    return 0 if found_all else 1


def add_detect_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``detect`` subcommand on the ``emo`` parser."""
    d = sub.add_parser(
        "detect",
        help="look for emo's invisible watermark and metadata label (exit 0: found, 1: not)",
    )
    d.add_argument("paths", nargs="+", metavar="VIDEO", help="video, GIF, image or frames folder")
    d.add_argument("--json", action="store_true", help="one JSON object per file")
    d.add_argument("--key", default="emo-provenance-v1", help="watermark key (default: emo's)")
    d.add_argument("--max-frames", type=int, default=48, help="frames read per video")
    d.set_defaults(func=run_detect)
