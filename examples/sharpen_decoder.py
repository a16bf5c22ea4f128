"""Sharpen a trained demo model's VAE decoder; its latents, and so its networks, unchanged.

A small VAE decodes a latent into the blurred average of the faces it could stand for;
dlib's face descriptor reads exactly the details that blur takes (eyes, brows, the
lips' outline). :func:`emo.training.vae.finetune_decoder` trains the decoder further
with an L1 on pixel differences next to the per-pixel L1, the encoder frozen: the
latents the diffusion networks were trained on stay the same, so the model keeps
working and only its pictures get sharper. ``--latent-noise`` adds Gaussian noise (in
the diffusion's scaled latent units) to the latents the decoder learns from, so that it
also decodes the slightly-off latents a diffusion model generates without inventing
edges in them. ``--generated-clips N`` goes further: it has the model itself predict the
clean latents of N training clips from noised copies (under each clip's reference, audio,
motion frames and speed, with the model's guidance;
:func:`emo.training.decoder_pairs.generated_latent_pairs`), and ``--generated-share`` of
every batch teaches the decoder to turn those into the true frames: the model's own
errors instead of Gaussian noise.

The new model is written to ``OUT/emo-demo`` (the base's networks, settings and
generation defaults, the new VAE), its ``training.json`` chaining the base's record
under ``base``.

Usage::

    python examples/sharpen_decoder.py --model runs/ft/emo-demo --data runs/demo96/data \\
        --out runs/sharp --steps 400 --latent-noise 0.15 --threads 2
    python examples/sharpen_decoder.py --model runs/ft/emo-demo --data runs/ft/data_latents \
        --out runs/sharp-gen --steps 400 --generated-clips 800 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, os.fspath(HERE))

from train_demo import Record, _machine  # noqa: E402


def timestep_range(text: str) -> tuple[int, int]:
    """``"LOW,HIGH"`` -> ``(LOW, HIGH)``, refused by argparse unless two ints."""
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (two whole numbers), got {text!r}")
    low, high = (int(p) for p in parts)
    return low, high


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the pipeline folder whose VAE to sharpen")
    parser.add_argument("--data", required=True, help="prepared frames (emo prepare's folder)")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--edge-weight", type=float, default=1.0)
    parser.add_argument(
        "--latent-noise",
        type=float,
        default=0.15,
        help="std of the noise added to the latents the decoder learns from (scaled units)",
    )
    parser.add_argument(
        "--generated-clips",
        type=int,
        default=0,
        help="training clips whose latents the model predicts for the decoder (0: none)",
    )
    parser.add_argument(
        "--generated-share",
        type=float,
        default=0.5,
        help="fraction of each batch decoded from the model's predicted latents",
    )
    parser.add_argument(
        "--timesteps",
        type=timestep_range,
        default=(100, 600),
        help="LOW,HIGH: the range of timesteps the clips are noised to before predicting",
    )
    parser.add_argument("--max-frames", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)

    import torch

    from emo.models.vae import AutoencoderKL
    from emo.pipelines.emo_pipeline import EMOPipeline
    from emo.training.decoder_pairs import GeneratedPairSettings, generated_latent_pairs
    from emo.training.vae import DecoderSettings, finetune_decoder

    model, out = Path(args.model), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = Record(out / "record.json")
    record.data.setdefault("machine", _machine())
    record.continue_from(model)
    # trained in float32 whatever the saved precision (a committed model may be half)
    start = out / "vae_start"
    AutoencoderKL.from_pretrained(model / "vae", dtype=torch.float32).save_pretrained(start)
    began = record.start("decoder")
    generated = None
    low, high = args.timesteps
    if args.generated_clips:
        generated = generated_latent_pairs(
            model,
            args.data,
            GeneratedPairSettings(
                clips=args.generated_clips,
                min_timestep=low,
                max_timestep=high,
                seed=args.seed,
                threads=args.threads,
                device=args.device,
            ),
        )
        print(
            f"[sharpen] {len(generated)} generated latents in {time.time() - began:.0f} s",
            flush=True,
        )
    result = finetune_decoder(
        args.data,
        start,
        out / "vae",
        DecoderSettings(
            max_steps=args.steps,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            edge_weight=args.edge_weight,
            latent_noise=args.latent_noise,
            generated_share=args.generated_share,
            max_frames=args.max_frames,
            seed=args.seed,
            threads=args.threads,
            device=args.device,
        ),
        generated=generated,
        log_every=100,
        log=lambda line: print(f"[sharpen] {line}", flush=True),
    )
    pipe = EMOPipeline.from_pretrained(model, dtype=torch.float32)
    pipe.vae = AutoencoderKL.from_pretrained(out / "vae")
    final = out / "emo-demo"
    pipe.save_pretrained(final)
    record.save(
        "decoder",
        steps=result.steps,
        seconds=round(time.time() - began, 1),
        reconstruction_l1=round(result.reconstruction_l1, 4),
        frames=result.frames,
        data=os.fspath(Path(args.data).resolve()),
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        edge_weight=args.edge_weight,
        latent_noise=args.latent_noise,
        generated_clips=args.generated_clips,
        generated_share=args.generated_share if args.generated_clips else 0.0,
        timesteps=[low, high] if args.generated_clips else None,
    )
    (final / "training.json").write_text(json.dumps(record.data, indent=2) + "\n")
    print(f"[sharpen] model: {final}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
