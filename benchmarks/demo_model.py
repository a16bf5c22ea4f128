"""Benchmark the bundled demo model (``emo-demo``) on held-out synthetic heads and speech.

The demo model was trained on face crops (:func:`emo.datasets.synthetic.crop_to_face`,
64x64, face region grown 1.3 times), so every held-out case is cropped the same way:
the ground-truth video, and the portrait the model is given (the case's head, frontal,
mouth closed). Then the model and the ground truth are scored with
:func:`emo.evaluation.scoring.score_video` and summarised by
:class:`emo.evaluation.benchmark.BenchmarkReport`, and the targets of the demo model are
checked against the ground truth of the same run:

- lip sync: Pearson r of the measured mouth opening with the truth >= 0.8, offset 0 frames;
- identity outside the mouth >= the truth's (a same-identity ground-truth pair) minus a margin:
  what the model's own autoencoder loses on the truth (measured in the same run: the truth
  encoded and decoded by the model's VAE, the ``autoencoder`` column) plus ``IDENTITY_MARGIN``;
  no latent model can keep more identity than its autoencoder lets through, so the margin
  charges the trained networks for what they lose beyond it;
- seams: jump at clip boundaries <= 1.5x the change between frames within a clip;
- head motion: velocity rises with the requested speed.

Usage::

    python benchmarks/demo_model.py --out bench-demo            # 4 identities x speeds 0, 1, 2
    python benchmarks/demo_model.py --model runs/demo/emo-demo --identities 2 --out bench
    python benchmarks/demo_model.py --voices 2 --out bench   # + engine voices, by group

With ``--voices N`` (needs espeak-ng and festival: ``examples/make_voice_data.py`` names the
packages) every case is also spoken by real speech engines' voices: ``N`` seen voices
(training voices, new text), ``N`` held-out voices of seen engines and ``N`` voices of the
held-out engine (:func:`emo.datasets.synthetic.voice_split`), each with its own held-out
identity; lip sync is reported per group (``formant``, ``seen voice``, ``held-out voice``,
``held-out engine``).

Writes ``OUT/report.md`` (tables + targets) and ``OUT/report.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Identity may fall this much below the autoencoder round trip of the truth (dlib
#: descriptor cosine, mouth masked), i.e. below the truth's minus what the VAE itself loses.
IDENTITY_MARGIN = 0.03
#: Appearance outside the mouth may fall this many dB below the truth's.
PSNR_MARGIN_DB = 6.0


def targets(summary: dict[str, dict[str, Any]], model: str) -> list[tuple[str, str, bool]]:
    """``(target, measured, met)`` rows for the demo model against the truth."""
    truth, ours = summary["truth"], summary[model]

    def value(stats: dict[str, Any], key: str) -> float:
        v = stats.get(key)
        return float("nan") if v is None else float(v)

    rows = []
    r = value(ours, "lip_sync_truth")
    rows.append(("lip sync r vs truth >= 0.8", f"{r:.3f}", r >= 0.8))
    offset = ours.get("offset_truth")
    rows.append(("offset vs truth == 0 frames", str(offset), offset == 0))
    ident, ident_truth = value(ours, "identity"), value(truth, "identity")
    ident_vae = (
        value(summary["autoencoder"], "identity") if "autoencoder" in summary else ident_truth
    )
    vae_loss = max(ident_truth - ident_vae, 0.0)
    rows.append(
        (
            f"identity >= truth's ({ident_truth:.3f}) - margin ({vae_loss:.3f} lost by the "
            f"autoencoder + {IDENTITY_MARGIN})",
            f"{ident:.3f}",
            ident >= ident_truth - vae_loss - IDENTITY_MARGIN,
        )
    )
    psnr, psnr_truth = value(ours, "appearance_psnr"), value(truth, "appearance_psnr")
    rows.append(
        (
            f"appearance PSNR >= truth's ({psnr_truth:.1f} dB) - {PSNR_MARGIN_DB} dB",
            f"{psnr:.1f}",
            psnr >= psnr_truth - PSNR_MARGIN_DB,
        )
    )
    seam = value(ours, "seam_ratio")
    rows.append(("seam jump <= 1.5x within-clip change", f"{seam:.2f}", seam <= 1.5))
    speeds = ours.get("by_speed", {})
    ordered = [speeds[k]["head_velocity_mean"] for k in sorted(speeds, key=float)]
    found = value(ours, "face_ratio")
    # Velocity is measured on the frames where a face is found: with few, it means nothing.
    rising = (
        found >= 0.5 and len(ordered) > 1 and all(b > a for a, b in itertools.pairwise(ordered))
    )
    rows.append(
        (
            "head velocity rises with requested speed (face found in >= 50 % of frames)",
            " -> ".join(f"{v:.3g}" for v in ordered) + f" (face found {found:.1%})",
            rising,
        )
    )
    return rows


def autoencoder_round_trip(vae: Any, frames: np.ndarray, batch: int = 32) -> np.ndarray:
    """uint8 ``(f, h, w, 3)`` frames encoded and decoded by ``vae`` (distribution modes)."""
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, len(frames), batch):
            x = torch.from_numpy(frames[start : start + batch]).permute(0, 3, 1, 2)
            x = x.to(vae.dtype) / 127.5 - 1.0
            y = vae.decode(vae.encode(x).mode()).clamp(-1.0, 1.0)
            out.append(((y + 1.0) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def identity_retrieval(
    videos: dict[str, list[np.ndarray]],
    portraits: list[np.ndarray],
    identity: list[int],
    analyzer: Any,
    *,
    frames: int = 4,
    analysis_size: int = 256,
) -> dict[str, dict[str, float]]:
    """Per video source, the fraction of cases whose own portrait is the most similar one.

    Descriptor similarity alone is blunt on 64-px faces (blur lowers it as much as a
    different head does); retrieval asks a sharper question: of every held-out
    identity's portrait, is the case's own the closest to its frames? Two closeness
    measures, those of :func:`emo.evaluation.scoring.identity_outside_mouth`: dlib's face
    descriptor (``"descriptor"``) and the aligned appearance outside the mouth, PSNR
    (``"appearance"``: colours and layout of skin, hair and eyes).

    Parameters
    ----------
    videos
        Per source (``"truth"``, the model, ...), one uint8 ``(f, h, w, 3)`` video per case.
    portraits
        uint8 ``(h, w, 3)`` portrait of each case.
    identity
        The identity index of each case; the candidates are the first portrait of each.
    analyzer
        The :class:`emo.face.FaceAnalyzer` of the run.
    frames
        Frames per video compared (evenly spread).
    analysis_size
        Faces are enlarged to this size first
        (:func:`emo.evaluation.scoring.enlarge_for_analysis`, as in ``score_video``).

    Returns
    -------
    dict
        ``{source: {"descriptor": fraction, "appearance": fraction}}``.
    """
    from emo.evaluation.scoring import enlarge_for_analysis, identity_outside_mouth

    def best(scores: dict[int, float]) -> int | None:
        usable = {i: v for i, v in scores.items() if math.isfinite(v)}
        return max(usable, key=usable.__getitem__) if usable else None

    candidates = {
        i: enlarge_for_analysis(portraits[identity.index(i)][None], analysis_size)[0]
        for i in sorted(set(identity))
    }
    found: dict[str, dict[str, float]] = {}
    for source, clips in videos.items():
        hits: dict[str, list[bool]] = {"descriptor": [], "appearance": []}
        for video, own in zip(clips, identity, strict=True):
            picks = np.linspace(0, len(video) - 1, frames).round().astype(int)
            seen = enlarge_for_analysis(video[picks], analysis_size)
            landmarks = analyzer.analyze(seen).landmarks
            pairs = {
                i: identity_outside_mouth(seen, landmarks, p, count=frames)
                for i, p in candidates.items()
            }
            hits["descriptor"].append(best({i: v[0] for i, v in pairs.items()}) == own)
            hits["appearance"].append(best({i: v[1] for i, v in pairs.items()}) == own)
        found[source] = {k: float(np.mean(v)) if v else float("nan") for k, v in hits.items()}
    return found


def waveform_strip(
    frames: np.ndarray, audio: np.ndarray, fps: float, sample_rate: int, *, every: int, scale: int
) -> np.ndarray:
    """Every ``every``-th frame side by side (enlarged ``scale`` times), the waveform under them.

    Each tile shows frame ``i * every``; under it, the audio of the same stretch of time
    (min to max per pixel column, dark on white), so a reader sees loud stretches line up
    with open mouths. Returns uint8 ``(h, w, 3)``.
    """
    picked = frames[::every]
    tiles = np.repeat(np.repeat(picked, scale, axis=1), scale, axis=2)
    size = tiles.shape[1]
    top = np.concatenate(list(tiles), axis=1)
    width, height = top.shape[1], size // 2
    wave = np.full((height, width, 3), 255, dtype=np.uint8)
    seconds_per_column = every / fps / size
    peak = float(np.abs(audio).max()) or 1.0
    for x in range(width):
        a = int(x * seconds_per_column * sample_rate)
        b = max(a + 1, int((x + 1) * seconds_per_column * sample_rate))
        chunk = audio[a:b]
        if chunk.size == 0:
            continue
        lo = int((0.5 - 0.48 * float(chunk.max()) / peak) * height)
        hi = int((0.5 - 0.48 * float(chunk.min()) / peak) * height)
        wave[max(lo, 0) : min(hi + 1, height), x] = (40, 60, 120)
    wave[:, ::size] = (200, 200, 200)  # tile boundaries
    return np.concatenate([top, wave], axis=0)


def write_strip(pipe: Any, path: Path, seed: int) -> None:
    """Generate the README example and write its strip (frames + waveform) as PNG."""
    import soundfile as sf
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from train_demo import write_png

    examples = Path(__file__).resolve().parents[1] / "examples"
    audio, rate = sf.read(str(examples / "demo_speech.wav"), dtype="float32")
    audio = audio[: int(3.2 * rate)]
    out = pipe(
        str(examples / "demo_portrait.png"),
        audio,
        audio_rate=rate,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
    )
    frames = (np.asarray(out.frames) * 255.0).round().astype(np.uint8)
    strip = waveform_strip(frames, audio, out.fps, rate, every=4, scale=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(strip, path)
    print(f"wrote {path}", flush=True)


def voice_cases(count: int, duration: float, size: int, seed: int = 0) -> list[Any]:
    """``count`` cases per voice group: seen voices, held-out voices, the held-out engine.

    Each case is a held-out identity (not used by the formant cases) with a track spoken
    by the voice (:func:`emo.datasets.synthetic.voice_track`), head still.
    """
    import dataclasses

    from emo.datasets.synthetic import make_clip, voice_split, voice_track
    from emo.evaluation.benchmark import BenchmarkCase

    @dataclasses.dataclass(frozen=True)
    class VoiceCase(BenchmarkCase):
        voice_key: str = ""
        group: str = ""

        @property
        def name(self) -> str:
            return f"id{self.identity_seed}-{self.voice_key}-v{self.speed:g}"

        def clip(self) -> Any:
            voice = next(
                v for v in voice_split("train") + voice_split("heldout") if v.key == self.voice_key
            )
            track = voice_track(voice, self.audio_seed, self.duration)
            return make_clip(
                self.identity_seed, track, size=self.size, speed=self.speed, split="heldout"
            )

    rng = np.random.default_rng([seed, 53])
    heldout = voice_split("heldout")
    groups = {
        "seen voice": voice_split("train"),
        "held-out voice": [v for v in heldout if v.heldout_by == "voice"],
        "held-out engine": [v for v in heldout if v.heldout_by == "engine"],
    }
    cases = []
    for g, (group, voices) in enumerate(groups.items()):
        engines = sorted({v.engine for v in voices})
        for i in range(count):
            engine = engines[i % len(engines)]
            mine = [v for v in voices if v.engine == engine]
            voice = mine[int(rng.integers(len(mine)))]
            cases.append(
                VoiceCase(
                    seed * 1000 + 100 + 10 * g + i,
                    seed * 1000 + 700 + 10 * g + i,
                    0.0,
                    "speech",
                    duration,
                    size,
                    voice_key=voice.key,
                    group=group,
                )
            )
    return cases


def group_lip_sync(results: list[Any], model: str) -> dict[str, dict[str, Any]]:
    """Per voice group (``formant`` for the synthesiser's cases): cases, mean lip sync r
    against the truth and the offsets found."""
    by_group: dict[str, list[Any]] = {}
    for result in results:
        by_group.setdefault(getattr(result.case, "group", "") or "formant", []).append(result)
    out = {}
    for group, rows in by_group.items():
        syncs = [r.score.lip_sync_truth for r in rows if r.score.lip_sync_truth is not None]
        out[group] = {
            "cases": len(rows),
            "lip_sync_truth": float(np.mean([s.correlation for s in syncs])) if syncs else None,
            "offsets": sorted({int(s.offset) for s in syncs}),
            "voices": sorted({getattr(r.case, "voice_key", "") or "formant" for r in rows}),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="emo-demo", help="pipeline folder or bundled name")
    parser.add_argument("--identities", type=int, default=4, help="held-out identities")
    parser.add_argument("--speeds", default="0,1,2", help="requested head speeds, deg/frame")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per case")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (model default)")
    parser.add_argument("--seed", type=int, default=0, help="generation seed")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", default="bench-demo", help="output folder")
    parser.add_argument(
        "--strip", default=None, help="also write the README strip (frames + waveform) PNG here"
    )
    parser.add_argument(
        "--voices", type=int, default=0, help="cases per engine-voice group (0: none)"
    )
    args = parser.parse_args(argv)

    import torch

    from emo.evaluation.benchmark import BenchmarkReport, CaseResult, crop_case, heldout_cases
    from emo.evaluation.scoring import score_video
    from emo.face import FaceAnalyzer
    from emo.pipelines.emo_pipeline import EMOPipeline

    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = EMOPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    if args.strip:
        write_strip(pipe, Path(args.strip), args.seed)
    resolution = int(pipe.settings.height)
    grow = 1.3
    speeds = [float(s) for s in args.speeds.split(",")]
    cases = heldout_cases(
        args.identities, speeds=speeds, duration=args.duration, size=96, singing=False
    )
    if args.voices:
        cases += voice_cases(args.voices, args.duration, 96)
    analyzer = FaceAnalyzer()
    frames_per_clip = int(pipe.settings.frames_per_clip)
    results: dict[str, list[CaseResult]] = {"truth": [], "emo-demo": [], "autoencoder": []}
    videos: dict[str, list[np.ndarray]] = {name: [] for name in results}
    portraits: list[np.ndarray] = []
    for case in cases:
        truth, portrait = crop_case(case, resolution, grow)
        began = time.perf_counter()
        out = pipe(
            portrait,
            truth.audio.waveform,
            audio_rate=truth.audio.sample_rate,
            head_motion_speed=case.speed,
            num_inference_steps=args.steps,
            generator=torch.Generator().manual_seed(args.seed),
            output_type="np",
        )
        seconds = (time.perf_counter() - began) / truth.num_frames
        video = (np.asarray(out.frames)[: truth.num_frames] * 255.0).round().astype(np.uint8)
        # What the model's VAE alone keeps of the truth: the ceiling of identity and appearance.
        round_trip = autoencoder_round_trip(pipe.vae, truth.frames)
        for name, frames, cost in (
            ("truth", truth.frames, 0.0),
            ("emo-demo", video, seconds),
            ("autoencoder", round_trip, 0.0),
        ):
            score = score_video(
                frames,
                truth.fps,
                audio=truth.audio.waveform,
                sample_rate=truth.audio.sample_rate,
                truth_mouth=truth.mouth_open,
                reference=portrait,
                frames_per_clip=frames_per_clip,
                identity_frames=4,
                analyzer=analyzer,
            )
            results[name].append(CaseResult(case, score, cost))
            videos[name].append(frames)
        portraits.append(portrait)
        sync = results["emo-demo"][-1].score.lip_sync_truth
        r = sync.correlation if sync else math.nan
        print(f"{case.name}: lip sync r={r:.3f} ({seconds:.2f} s/frame)", flush=True)
    report = BenchmarkReport(results, {}, frames_per_clip)
    summary = report.summary()
    identities = sorted({case.identity_seed for case in cases})
    retrieval = identity_retrieval(
        videos, portraits, [identities.index(case.identity_seed) for case in cases], analyzer
    )
    checks = targets(summary, "emo-demo")
    lines = ["| target | measured | met |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {'yes' if ok else 'no'} |" for t, m, ok in checks]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    header = (
        f"emo-demo on {len(cases)} held-out cases ({args.identities} identities x speeds "
        f"{args.speeds}, {args.duration:g} s of held-out speech each, {resolution}x{resolution})\n\n"
    )
    retrieval_line = (
        f"Identity retrieval (own portrait the most similar of the {len(identities)} held-out "
        f"identities' portraits, 4 frames per case; chance {1 / len(identities):.0%}): "
        + ", ".join(
            f"{name} {v['descriptor']:.0%} by descriptor, {v['appearance']:.0%} by appearance"
            for name, v in retrieval.items()
        )
        + "\n\n"
    )
    groups = {name: group_lip_sync(rows, name) for name, rows in results.items()}
    group_lines = [
        "| voices | cases | " + " | ".join(f"{n} lip sync r (offsets)" for n in groups) + " |"
    ]
    group_lines.append("|---|---|" + "---|" * len(groups))
    for group in groups["truth"]:
        cells = []
        for per in groups.values():
            g = per.get(group, {})
            r = g.get("lip_sync_truth")
            cells.append(f"{r:.3f} ({g.get('offsets')})" if r is not None else "-")
        group_lines.append(
            f"| {group} | {groups['truth'][group]['cases']} | " + " | ".join(cells) + " |"
        )
    markdown = (
        header
        + report.to_markdown()
        + "\n"
        + retrieval_line
        + "\n".join(lines)
        + "\n\n"
        + "Lip sync by voice group:\n\n"
        + "\n".join(group_lines)
        + "\n"
    )
    (out_dir / "report.md").write_text(markdown, encoding="utf-8")
    data = {
        **report.to_json(),
        "identity_retrieval": retrieval,
        "targets": [list(c) for c in checks],
        "voice_groups": groups,
    }
    (out_dir / "report.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
