"""How much of the mouth's opening a demo model's audio tokens carry, by voice group.

A generated mouth can follow the speech no better than the audio path lets it. This
measures the audio path alone, in a minute, without generating a frame: every synthetic
clip (MP4 + truth ``.json``, as ``examples/make_voice_data.py`` and ``train_demo.py``'s
synthetic phase write them) is encoded by the model's audio encoder and audio
projection, a ridge regression fitted on the training clips maps each frame's tokens
to the truth's mouth opening, and the mean per-clip correlation with the truth is
reported on held-out clips by voice group (formant, seen voice, held-out voice,
held-out engine). Two references in the same table: the encoder's own features over
the projection's window (what the projection was given) and the clip's loudness alone
(what a mouth that only follows the volume would reach).

When the tokens carry the opening well above loudness while the generated videos
(``benchmarks/demo_model.py``) follow loudness, the denoiser is what to train, not the
audio path.

Usage::

    python examples/make_voice_data.py --out runs/probe/heldout --split heldout \\
        --clips 80 --seconds 4 --render-size 64 --resolution 64 --seed 5
    python benchmarks/demo_audio_probe.py --model M --train runs/d96/videos \\
        --heldout runs/probe/heldout
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_model import VOICE_GROUPS  # the benchmark's own group names


def find_clips(folder: Path) -> list[Path]:
    """Truth ``.json`` files under ``folder`` (any depth) with an MP4 of the same name beside them."""
    found = []
    for path in sorted(folder.rglob("*.json")):
        if path.with_suffix(".mp4").exists():
            found.append(path)
    return found


def clip_group(truth: dict[str, Any]) -> str:
    """``"formant"`` (the built-in synthesiser) or the voice group of an engine's clip."""
    audio = truth.get("audio") or {}
    if not audio.get("engine"):
        return "formant"
    return VOICE_GROUPS.get(str(audio.get("heldout_by", "")), "held-out voice")


def clip_inputs(pipe: Any, path: Path) -> dict[str, Any]:
    """The clip's encoder windows ``(f, (2m+1) l d)``, tokens ``(f, n d)``, truth and group."""
    import torch

    from emo.audio.loading import load_audio

    truth = json.loads(path.read_text())
    frames = int(truth["num_frames"])
    fps = truth["fps"]  # [numerator, denominator] or a number
    fps = float(fps[0]) / float(fps[1]) if isinstance(fps, list) else float(fps)
    encoder, projection = pipe.audio_encoder, pipe.audio_projection
    waveform = load_audio(path.with_suffix(".mp4"), sample_rate=encoder.sample_rate)
    with torch.no_grad():
        features = encoder.encode(waveform, encoder.sample_rate, num_frames=frames, fps=fps)
        windows = projection.window(features[None].float())
        tokens = projection.project_windows(windows)
    return {
        "windows": windows[0].reshape(frames, -1).float().numpy(),
        "tokens": tokens[0].reshape(frames, -1).float().numpy(),
        "loudness": np.asarray(truth["loudness"], dtype=np.float64)[:, None],
        "mouth": np.asarray(truth["mouth_open"], dtype=np.float64),
        "group": clip_group(truth),
    }


def fit_ridge(x: np.ndarray, y: np.ndarray, strength: float) -> tuple[np.ndarray, ...]:
    """Standardisation and ridge weights for ``y ~ x`` (``x``: ``(n, k)``)."""
    mean, scale = x.mean(0), x.std(0) + 1e-6
    z = np.concatenate([(x - mean) / scale, np.ones((len(x), 1))], 1)
    weights = np.linalg.solve(z.T @ z + strength * np.eye(z.shape[1]), z.T @ y)
    return mean, scale, weights


def predict(model: tuple[np.ndarray, ...], x: np.ndarray) -> np.ndarray:
    mean, scale, weights = model
    return np.concatenate([(x - mean) / scale, np.ones((len(x), 1))], 1) @ weights


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`emo.evaluation.signals.pearson`, but NaN where either side does not vary.

    ``pearson`` gives 0 there; a silent clip's flat truth says nothing of the audio path,
    so it is left out of the group's mean rather than counted as a miss.
    """
    from emo.evaluation.signals import pearson

    if a.std() < 1e-9 or b.std() < 1e-9:
        return float("nan")
    return pearson(a, b)


def probe(
    train: list[dict[str, Any]], heldout: list[dict[str, Any]], strength: float = 1.0
) -> dict[str, dict[str, float]]:
    """``{group: {"clips", "loudness", "features", "tokens"}}``: mean per-clip r with the truth.

    The regressions are fitted on ``train`` only; ``loudness`` is the loudness itself
    (a correlation needs no fit).
    """
    mouth = np.concatenate([c["mouth"] for c in train])
    models = {
        key: fit_ridge(np.concatenate([c[key] for c in train]), mouth, strength)
        for key in ("windows", "tokens")
    }
    scores: dict[str, dict[str, list[float]]] = {}
    for clip in heldout:
        row = scores.setdefault(clip["group"], {"loudness": [], "features": [], "tokens": []})
        row["loudness"].append(correlation(clip["loudness"][:, 0], clip["mouth"]))
        row["features"].append(
            correlation(predict(models["windows"], clip["windows"]), clip["mouth"])
        )
        row["tokens"].append(correlation(predict(models["tokens"], clip["tokens"]), clip["mouth"]))
    out = {}
    for group, row in sorted(scores.items()):
        out[group] = {"clips": float(len(row["tokens"]))}
        out[group].update({k: float(np.nanmean(v)) for k, v in row.items()})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="emo-demo", help="pipeline folder or bundled name")
    parser.add_argument("--train", required=True, help="folder of the training clips")
    parser.add_argument("--heldout", required=True, help="folder of held-out clips")
    parser.add_argument("--ridge", type=float, default=1.0, help="ridge strength")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    import torch

    from emo.pipelines.emo_pipeline import EMOPipeline

    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = EMOPipeline.from_pretrained(args.model, dtype=torch.float32)
    clips = {}
    for side in ("train", "heldout"):
        paths = find_clips(Path(getattr(args, side)))
        if not paths:
            parser.error(f"--{side} {getattr(args, side)}: no clips (MP4 + truth JSON) found")
        clips[side] = [clip_inputs(pipe, p) for p in paths]
    figures = probe(clips["train"], clips["heldout"], args.ridge)
    print(f"audio probe of {args.model}: ridge fitted on {len(clips['train'])} clips")
    print("| held-out clips | clips | loudness r | encoder features r | audio tokens r |")
    print("|---|---|---|---|---|")
    for group, row in figures.items():
        print(
            f"| {group} | {int(row['clips'])} | {row['loudness']:.3f} | "
            f"{row['features']:.3f} | {row['tokens']:.3f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
