"""What the watermark costs: marking time as a share of generation time, and PSNR.

Generates a video with the demo model (the ``tiny`` preset, random weights) on the
CPU with the watermark off, then times marking the very same frames the way the
pipeline does (one tile per video, every frame masked and marked) and reports it
as a share of the generation time; a second generation with the mark on gives the
end-to-end difference (noisier: it includes the machine's jitter).

::

    python benchmarks/watermark_cost.py                      # 128x128 demo size
    python benchmarks/watermark_cost.py --size 512 --steps 40 --seconds 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from emo.pipelines.emo_pipeline import EMOPipeline
from emo.provenance.stamp import GenerationStamp

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=128, help="frame size (tiny default: 128)")
    parser.add_argument("--steps", type=int, default=40, help="denoising steps (default 40)")
    parser.add_argument("--seconds", type=float, default=1.0, help="audio length")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = EMOPipeline.from_preset("tiny", audio_encoder="mel", face_mask="full", seed=0)
    pipe.set_progress_bar_config(disable=True)
    rate = 16000
    audio = np.zeros(int(args.seconds * rate), np.float32)
    common = {
        "height": args.size,
        "width": args.size,
        "num_inference_steps": args.steps,
        "audio_rate": rate,
        "output_type": "np",
    }

    def generate(watermark: bool) -> tuple[float, np.ndarray]:
        began = time.perf_counter()
        out = pipe(
            EXAMPLES / "portrait.png",
            audio,
            generator=torch.Generator().manual_seed(0),
            watermark=watermark,
            **common,  # type: ignore[arg-type]
        )
        frames = np.rint(np.asarray(out.frames) * 255).astype(np.uint8)  # type: ignore[union-attr]
        return time.perf_counter() - began, frames

    plain_time, frames = generate(False)
    stamp = GenerationStamp(True, video_id=1)
    clip = pipe.settings.frames_per_clip
    began = time.perf_counter()
    marked = [
        stamp.mark(torch.from_numpy(frames[i : i + clip])) for i in range(0, len(frames), clip)
    ]
    mark_time = time.perf_counter() - began
    marked_frames = torch.cat(marked).numpy().astype(np.float64)
    psnr = 10 * np.log10(255**2 / np.mean((marked_frames - frames) ** 2))
    marked_time, _ = generate(True)
    print(
        f"{len(frames)} frames of {args.size}x{args.size}, {args.steps} steps, "
        f"{args.threads} thread(s)\n"
        f"generation without the mark: {plain_time:.2f} s\n"
        f"marking those frames:        {mark_time:.3f} s = {100 * mark_time / plain_time:.2f} % "
        f"({1000 * mark_time / len(frames):.1f} ms per frame)\n"
        f"generation with the mark:    {marked_time:.2f} s "
        f"({100 * (marked_time - plain_time) / plain_time:+.1f} %, includes timing noise)\n"
        f"PSNR marked vs unmarked:     {psnr:.1f} dB"
    )


if __name__ == "__main__":
    main()
