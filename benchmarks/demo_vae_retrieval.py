"""How much identity a demo model's VAE lets through: descriptor retrieval of its round trip.

No latent model keeps more identity than its autoencoder: if the truth, encoded and
decoded, no longer retrieves its own portrait, no amount of diffusion training will.
This asks that question in about a minute, before a long training run, where
``benchmarks/demo_model.py`` (the same measure, its ``autoencoder`` column) takes
many. Each held-out identity speaks held-out formant speech with a still head; a few
frames of its truth, cropped as the model's training clips were (the recipe in the
model's ``training.json``), are encoded and decoded, and
:func:`demo_model.identity_retrieval` asks whether the case's own portrait is the most
similar of all the identities' portraits, by dlib's descriptor and by appearance.

Usage::

    python benchmarks/demo_vae_retrieval.py --model emo-demo --identities 10
    python benchmarks/demo_vae_retrieval.py --model runs/demo96/emo-demo runs/demo/emo-demo
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def round_trip(vae: object, frames: np.ndarray) -> np.ndarray:
    """uint8 ``(f, h, w, 3)`` frames encoded (the distribution's mode) and decoded."""
    import torch

    from emo.training.prepare import _encode_latents

    # the latents the trainer caches, unscaled again for the decoder
    latents = _encode_latents(vae, torch.from_numpy(frames))
    latents = latents / float(vae.config["scaling_factor"])  # type: ignore[attr-defined]
    with torch.no_grad():
        y = vae.decode(latents)  # type: ignore[attr-defined]
    y = getattr(y, "sample", y)
    return ((y.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", nargs="+", default=["emo-demo"], help="pipeline folders")
    parser.add_argument("--identities", type=int, default=10, help="held-out identities")
    parser.add_argument("--frames", type=int, default=4, help="frames per identity")
    args = parser.parse_args(argv)

    import torch
    from demo_model import case_geometry, identity_retrieval

    from emo.evaluation.benchmark import crop_case, heldout_cases
    from emo.face import FaceAnalyzer
    from emo.models.vae import AutoencoderKL
    from emo.pretrained import resolve_model

    analyzer = FaceAnalyzer()
    print("| model | px | truth: descriptor | appearance | round trip: descriptor | appearance |")
    print("|---|---|---|---|---|---|")
    for model in args.model:
        folder = resolve_model(model)
        # float32 also for a checkpoint kept in half precision (checkpoints/demo96)
        vae = AutoencoderKL.from_pretrained(folder / "vae", dtype=torch.float32).eval()
        settings = json.loads((folder / "model_index.json").read_text())["settings"]
        render, resolution, grow = case_geometry(folder, int(settings["height"]))
        cases = heldout_cases(
            args.identities, speeds=[0.0], duration=1.0, size=render, singing=False
        )
        videos: dict[str, list[np.ndarray]] = {"truth": [], "round trip": []}
        portraits = []
        for case in cases:
            truth, portrait = crop_case(case, resolution, grow)
            picks = np.linspace(0, truth.num_frames - 1, args.frames).round().astype(int)
            frames = np.asarray(truth.frames)[picks]
            videos["truth"].append(frames)
            videos["round trip"].append(round_trip(vae, frames))
            portraits.append(np.asarray(portrait))
        found = identity_retrieval(
            videos, portraits, list(range(len(cases))), analyzer, frames=args.frames
        )
        t, r = found["truth"], found["round trip"]
        print(
            f"| {model} | {resolution} | {t['descriptor']:.0%} | {t['appearance']:.0%} "
            f"| {r['descriptor']:.0%} | {r['appearance']:.0%} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
