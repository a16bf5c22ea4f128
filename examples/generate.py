"""Generate a video from the example portrait and speech with the tiny random-weight preset.

Run from the repository root::

    python examples/generate.py --steps 4 --output out.mp4

The `tiny` preset has random weights: the video is correctly timed, with the audio muxed
in, but shows noise. Point ``--model`` at a trained pipeline folder for real results.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from emo import EMOPipeline

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None, help="saved pipeline folder")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--output", default="out.mp4")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.model:
        pipe = EMOPipeline.from_pretrained(args.model)
    else:
        pipe = EMOPipeline.from_preset("tiny")
    video = pipe(
        HERE / "portrait.png",
        HERE / "speech.wav",
        num_inference_steps=args.steps,
        generator=torch.Generator().manual_seed(args.seed),
        output_path=args.output,
    )
    print(f"wrote {video.path}: {video.num_frames} frames at {video.fps:g} fps")


if __name__ == "__main__":
    main()
