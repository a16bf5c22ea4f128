"""Where generation time goes, and what two design choices save, measured in one run.

Builds a preset's networks with random weights and times, on the chosen device:

- one denoising step of the Backbone with the guidance branches batched (what the
  pipeline does) against the same branches run one after the other;
- one ReferenceNet pass, which the pipeline runs once per generation for the reference
  image (and once per clip for the motion frames) instead of at every step;
- a whole generation of the tiny preset, as frames per second.

::

    python benchmarks/pipeline_speed.py --preset tiny --device cpu
    python benchmarks/pipeline_speed.py --preset sd15 --device cuda --dtype float16 --size 512
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from emo.models.presets import get_preset


def timed(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(repeat):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - began) / repeat


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--size", type=int, default=None, help="pixels (default: the preset's)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    preset = get_preset(args.preset)
    size = (args.size or preset.resolution) // preset.vae_scale_factor
    f, n, branches = preset.frames_per_clip, preset.motion_frames, 2
    torch.manual_seed(0)
    refnet = preset.build_reference_net().to(device, dtype).eval()
    backbone = preset.build_backbone().to(device, dtype).eval()
    latents = torch.randn(1, 4, f, size, size, device=device, dtype=dtype)
    reference = torch.randn(1, 4, size, size, device=device, dtype=dtype)
    motion_latents = torch.randn(1, 4, n, size, size, device=device, dtype=dtype)
    tokens = torch.randn(1, f, 4, preset.audio_token_dim, device=device, dtype=dtype)
    speed = torch.full((1, f), 0.35, device=device, dtype=dtype)
    ref = refnet(reference, 0)
    motion = refnet.motion_features(motion_latents)  # (1, c, n, h, w) per layer
    t = torch.tensor([500], device=device)

    def batched() -> object:
        return backbone(
            latents.expand(branches, -1, -1, -1, -1),
            t.expand(branches),
            reference_features=ref,
            audio_tokens=torch.cat([tokens, torch.zeros_like(tokens)]),
            motion_features=motion,  # batch 1: shared by the branches, not copied
            speed=speed.expand(branches, -1),
        )

    def sequential() -> object:
        return [
            backbone(
                latents,
                t,
                reference_features=ref,
                audio_tokens=a,
                motion_features=motion,
                speed=speed,
            )
            for a in (tokens, torch.zeros_like(tokens))
        ]

    step_batched = timed(batched, args.repeat)
    step_sequential = timed(sequential, args.repeat)
    ref_pass = timed(lambda: refnet(reference, 0), args.repeat)
    print(
        f"preset {args.preset}, {size * preset.vae_scale_factor}px, f={f}, n={n}, {device}, {args.dtype}"
    )
    print(f"denoising step, 2 guidance branches batched   : {step_batched * 1e3:8.1f} ms")
    print(
        f"denoising step, 2 guidance branches one by one: {step_sequential * 1e3:8.1f} ms "
        f"(batched is x{step_sequential / step_batched:.2f} faster)"
    )
    print(
        f"ReferenceNet pass on the reference image       : {ref_pass * 1e3:8.1f} ms "
        f"(x{ref_pass / step_batched:.2f} of a step: saved at every step but the first)"
    )

    if args.preset == "tiny":
        from emo import EMOPipeline

        pipe = EMOPipeline.from_preset("tiny", face_mask="full", device=device, dtype=dtype)
        pipe.set_progress_bar_config(disable=True)
        audio = (0.2 * np.sin(np.arange(16000 * 2) / 4.0)).astype(np.float32)
        portrait = np.full((160, 160, 3), 128, np.uint8)
        began = time.perf_counter()
        out = pipe(portrait, audio, audio_rate=16000, num_inference_steps=10, output_type="latent")
        elapsed = time.perf_counter() - began
        print(
            f"tiny generation, 10 steps: {out.num_frames} frames in {elapsed:.2f} s "
            f"({out.num_frames / elapsed:.1f} frames/s)"
        )


if __name__ == "__main__":
    main()
