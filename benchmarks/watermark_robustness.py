"""Detection and payload-read rates of the watermark after each attack and chains of them.

Marks short "talking" clips made from scikit-image's photographs (a still
background, a moving centre), applies each edit of :mod:`emo.provenance.attacks`
alone and chained, and counts: detected (present), payload read (and right), and
wrong payloads (should be 0). Unmarked clips through the same edits give the
false-positive count. Needs scikit-image (a test dependency).

::

    python benchmarks/watermark_robustness.py --size 384 --clips 20
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from emo.provenance import attacks
from emo.provenance.payload import Payload
from emo.provenance.watermark import Watermarker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "provenance"))
from provenance_clips import NATURAL, talking_clip

Attack = Callable[[np.ndarray], np.ndarray]


def chain(*steps: Attack) -> Attack:
    def run(frames: np.ndarray) -> np.ndarray:
        for step in steps:
            frames = step(frames)
        return frames

    return run


ATTACKS: dict[str, Attack] = {
    "none": lambda frames: frames,
    "h264 crf 28": attacks.reencode_h264,
    "half size": attacks.resize,
    "crop 10 %": attacks.crop_borders,
    "gif": attacks.to_gif,
    "h264 crf 35": lambda frames: attacks.reencode_h264(frames, crf=35),
    "resize 0.8": lambda frames: attacks.resize(frames, 0.8),
    "half + h264 28": chain(attacks.resize, attacks.reencode_h264),
    "crop + half": chain(attacks.crop_borders, attacks.resize),
    "h264 + half + crop + gif": chain(
        attacks.reencode_h264, attacks.resize, attacks.crop_borders, attacks.to_gif
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--unmarked", type=int, default=5, help="unmarked clips per attack")
    args = parser.parse_args()
    torch.set_num_threads(1)
    marker = Watermarker()
    counts = {name: [0, 0, 0, 0, 0.0] for name in ATTACKS}  # found, read, wrong, false, seconds
    for index in range(args.clips):
        clip = talking_clip(index, size=args.size, frames=args.frames, photos=NATURAL)
        payload = Payload("0.1.0", 1000 + index)
        marked = marker.embed(clip, payload).numpy()
        for name, attack in ATTACKS.items():
            began = time.perf_counter()
            result = marker.detect(attack(marked))
            counts[name][4] += time.perf_counter() - began
            counts[name][0] += result.found
            counts[name][1] += result.payload == payload
            counts[name][2] += result.payload not in (payload, None)
            if index < args.unmarked:
                counts[name][3] += marker.detect(attack(clip)).found
    print(f"{args.clips} clips of {args.size}x{args.size}, {args.frames} frames")
    print(f"{'attack':<26} {'detected':>9} {'payload':>9} {'wrong':>6} {'false+':>7} {'s/clip':>7}")
    for name, (found, read, wrong, false, seconds) in counts.items():
        print(
            f"{name:<26} {found:>4}/{args.clips:<4} {read:>4}/{args.clips:<4} {wrong:>6} "
            f"{false:>3}/{args.unmarked:<3} {seconds / args.clips:>7.2f}"
        )


if __name__ == "__main__":
    main()
