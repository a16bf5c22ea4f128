"""``emo face IMAGE_OR_VIDEO``: print the face box, head pose and mouth opening of every frame."""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

__all__ = ["add_face_parser", "run_face"]

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def add_face_parser(sub: Any) -> None:
    """Add the ``face`` subcommand to the ``emo`` parser's subparsers."""
    p = sub.add_parser(
        "face",
        help="find the face in an image or video: box, head pose, mouth opening per frame",
        description="Analyse the face in every frame of an image or video (needs emo[face]). "
        "Exit code 1 when no frame has a face.",
    )
    p.add_argument("input", help="image (png, jpg, ...) or video (mp4, webm, gif, ...)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--landmarks", action="store_true", help="include the 68 landmarks (JSON only)")
    p.add_argument("--max-frames", type=int, default=None, help="analyse only the first N frames")
    p.add_argument("--quiet", action="store_true", help="no progress bar for videos")
    p.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "dlib", "haar"],
        help="face model (default: auto)",
    )
    p.set_defaults(func=run_face)


def _fmt(value: float, spec: str) -> str:
    """``value`` formatted by ``spec`` (e.g. ``"6.1f"``), or a dash of the same width for NaN."""
    width = int(spec.split(".")[0])
    return "-".rjust(width) if math.isnan(value) else format(value, spec)


def run_face(args: argparse.Namespace) -> int:
    """Run ``emo face``; return the exit code."""
    import sys

    from emo.face import FaceAnalyzer

    analyzer = FaceAnalyzer(args.backend)
    path = Path(args.input)
    if path.suffix.lower() in _IMAGE_SUFFIXES:
        from emo.io.image import load_image

        track = analyzer.analyze(load_image(os.fspath(path)))
    else:
        track = analyzer.analyze_video(path, max_frames=args.max_frames, progress=not args.quiet)
    if args.json:
        print(json.dumps(track.to_dict(landmarks=args.landmarks), indent=1))
    else:
        fps = f", {track.fps:g} fps" if track.fps else ""
        print(
            f"{path.name}: {len(track)} frame(s), {track.size[1]}x{track.size[0]}{fps}, backend {track.backend}"
        )
        print(
            f"{'frame':>5}  {'box x0,y0,x1,y1':<22} {'yaw':>6} {'pitch':>6} {'roll':>7} {'mouth':>6}  note"
        )
        for frame in track:
            box = ",".join(f"{v:.0f}" for v in frame.box) if frame.found else "no face"
            print(
                f"{frame.index:>5}  {box:<22} {_fmt(frame.yaw, '6.1f')} {_fmt(frame.pitch, '6.1f')} "
                f"{_fmt(frame.roll, '7.1f')} {_fmt(frame.mouth_opening, '6.3f')}  {frame.note}"
            )
    if not track.found.any():
        print(f"emo: no face found in {os.fspath(path)!r}", file=sys.stderr)
        return 1
    return 0
