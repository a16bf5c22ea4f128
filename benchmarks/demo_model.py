"""Benchmark the bundled demo model (``emo-demo``) on held-out synthetic heads and speech.

The demo model was trained on face crops (:func:`emo.datasets.synthetic.crop_to_face`),
so every held-out case is rendered and cropped the way its training clips were: at the
render size, face-region growth and resolution of the recipe in the model folder's
``training.json`` (:func:`case_geometry`; the shipped 64-px model: rendered at 96 px, face
region grown 1.3 times, 64x64). That applies to the ground-truth video and to the portrait
the model is given (the case's head, frontal, mouth closed). Then the model and the ground
truth are scored with
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
- head motion: velocity rises with the requested speed;
- identity retrieval by descriptor >= 75 % (:func:`identity_retrieval`);
- with ``--voices``, for the held-out voices and the held-out engine each: lip sync r >= 0.8,
  offset 0 in every case, and the mouth closed in pauses: the pause-opening ratio
  (:func:`pause_ratio`: mean measured opening in pauses over that in speech, both above
  the video's own closed mouth, :func:`closed_reading`) <= 0.25. Without ``--voices`` these rows say "not
  measured".

Usage::

    python benchmarks/demo_model.py --out bench-demo            # 4 identities x speeds 0, 1, 2
    python benchmarks/demo_model.py --model runs/demo/emo-demo --identities 2 --out bench
    python benchmarks/demo_model.py --voices 2 --out bench   # + engine voices, by group
    python benchmarks/demo_model.py --identities 1 --speeds 0 --voices 6 --out bench-voices

With ``--voices N`` (needs espeak-ng and festival: ``examples/make_voice_data.py`` names the
packages) every case is also spoken by real speech engines' voices: ``N`` seen voices
(training voices, new text), ``N`` held-out voices of seen engines and ``N`` voices of the
held-out engine (:func:`emo.datasets.synthetic.voice_split`), each with its own held-out
identity; lip sync and the pause-opening ratio are reported per group (``formant``,
``seen voice``, ``held-out voice``, ``held-out engine``), with the fraction of frames
whose face was found. One case moves a two-case group's mean by a tenth or more: judge
the held-out groups on six cases or more (the last usage line, 19 cases).

Writes ``OUT/report.md`` (tables + targets) and ``OUT/report.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Identity may fall this much below the autoencoder round trip of the truth (dlib
#: descriptor cosine, mouth masked), i.e. below the truth's minus what the VAE itself loses.
IDENTITY_MARGIN = 0.03
#: Appearance outside the mouth may fall this many dB below the truth's.
PSNR_MARGIN_DB = 6.0
#: Own portrait retrieved by dlib's descriptor in at least this fraction of the cases.
RETRIEVAL_TARGET = 0.75
#: Mean opening in pauses at most this fraction of the mean opening in speech.
PAUSE_RATIO_TARGET = 0.25
#: The voice groups, by a voice's ``heldout_by`` (:class:`emo.datasets.synthetic.Voice`),
#: in the order their cases are drawn: training voices, held-out voices of seen engines,
#: the held-out engine's voices.
VOICE_GROUPS = {"": "seen voice", "voice": "held-out voice", "engine": "held-out engine"}
#: A silence this long (seconds) or longer is a pause: the usual threshold for a silent
#: pause in speech research (250 ms); shorter gaps between words are part of speaking and
#: leave no time for a mouth to close and open again.
MIN_PAUSE_SECONDS = 0.25
#: Frames on each side of a frame that must be silent too for it to count as a pause: the
#: truth's coarticulation kernel reaches one frame each way (``mouth_tracks``), so the
#: truth mouth is exactly closed on the frames left.
PAUSE_MARGIN_FRAMES = 1
#: A video's closed mouth as the measure reads it: this percentile of its frames' openings.
#: The reading of a closed mouth depends on sharpness (a blurred generated mouth reads
#: below the sharp portrait's closed one), so each video is its own reference.
CLOSED_PERCENTILE = 5.0
#: The voice groups the model never heard in training: each has its own target rows.
HELDOUT_GROUPS = ("held-out voice", "held-out engine")
#: Geometry of the recipe of the first shipped model, for folders without a recipe.
DEFAULT_RENDER_SCALE = 1.5
DEFAULT_CROP = 1.3


def case_geometry(model_dir: Path, height: int) -> tuple[int, int, float]:
    """``(render size, resolution, crop growth)`` of the cases for the model in ``model_dir``.

    The cases must look like the model's training clips: rendered at the recipe's
    ``render_size``, cropped around the face region grown ``crop`` times, resized to the
    ``resolution`` (``training.json``'s ``recipe``, written by ``examples/train_demo.py``).
    The resolution is the pipeline's own ``height`` (what it generates); without a recipe
    the render size keeps the shipped recipe's proportion (1.5 times the resolution, so
    the grown face region has about as many pixels as the crop) and the crop is 1.3.

    Parameters
    ----------
    model_dir
        The pipeline folder.
    height
        The pipeline's generation height in pixels (its settings).

    Returns
    -------
    tuple
        ``(render_size, resolution, crop)``.

    Raises
    ------
    ValueError
        When the recipe's resolution is not the pipeline's height (the crops would not be
        what the model was trained on).
    """
    record = model_dir / "training.json"
    recipe: dict[str, Any] = {}
    if record.is_file():
        recipe = json.loads(record.read_text(encoding="utf-8")).get("recipe") or {}
    resolution = int(height)
    trained = recipe.get("resolution")
    if trained is not None and int(trained) != resolution:
        raise ValueError(
            f"{record} says the model was trained at {trained} px but its pipeline generates "
            f"{resolution} px; benchmark it at the training resolution (fix its settings)"
        )
    render = int(recipe.get("render_size") or math.ceil(resolution * DEFAULT_RENDER_SCALE))
    return render, resolution, float(recipe.get("crop") or DEFAULT_CROP)


def pause_frames(
    units: Sequence[Any],
    fps: float,
    num_frames: int,
    *,
    min_pause: float = MIN_PAUSE_SECONDS,
    margin: int = PAUSE_MARGIN_FRAMES,
) -> tuple[np.ndarray, np.ndarray]:
    """The pause frames and the speech frames of a clip, from its track's units.

    A pause is a stretch of consecutive silence units (phoneme ``"_"``: the synthesiser's
    pauses and the gaps between a speech engine's phones) lasting ``min_pause`` seconds or
    more. Frame ``i`` shows ``[i / fps, (i + 1) / fps)``; it is a *pause frame* when it and
    its ``margin`` neighbours on each side lie wholly inside one pause (the truth mouth is
    closed there), a *speech frame* when neither it nor those neighbours touch a pause.
    Frames in between (the mouth closing or opening) are neither. Past the clip's ends a
    frame's neighbours are the end frames themselves, as in the truth's smoothing.

    Parameters
    ----------
    units
        The track's units (``phoneme``, ``start``, ``end`` in seconds), in time order.
    fps
        Frames per second.
    num_frames
        Frames of the clip.
    min_pause
        Shortest silence that is a pause, seconds.
    margin
        Neighbouring frames on each side that must agree.

    Returns
    -------
    tuple of numpy.ndarray
        bool ``(num_frames,)`` ``pause`` and ``speech``.
    """
    stretches: list[list[float]] = []
    for unit in units:
        if unit.phoneme != "_":
            continue
        if stretches and abs(stretches[-1][1] - unit.start) < 1e-9:
            stretches[-1][1] = unit.end
        else:
            stretches.append([unit.start, unit.end])
    pauses = [(a, b) for a, b in stretches if b - a >= min_pause - 1e-9]
    starts = np.arange(num_frames) / fps
    ends = starts + 1.0 / fps
    inside = np.zeros(num_frames, dtype=bool)
    touches = np.zeros(num_frames, dtype=bool)
    for a, b in pauses:
        inside |= (starts >= a - 1e-9) & (ends <= b + 1e-9)
        touches |= (starts < b) & (ends > a)
    index = np.clip(np.arange(num_frames)[:, None] + np.arange(-margin, margin + 1), 0, None)
    index = np.minimum(index, num_frames - 1)
    return inside[index].all(axis=1), ~touches[index].any(axis=1)


def closed_reading(opening: np.ndarray, percentile: float = CLOSED_PERCENTILE) -> float:
    """The opening a video's closed mouth reads: a low percentile of its frames' openings.

    The measure reads a closed mouth above 0 (about 0.05 on the sharp synthetic heads,
    less on blurred generated ones), and the mouth of a talking head closes between words
    as well as in pauses, so the video's own most-closed frames are its reference: a
    mouth that stays open in pauses reads its pause frames well above them, one that
    closes reads them at them. NaN without a finite opening.
    """
    finite = np.asarray(opening, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(np.percentile(finite, percentile)) if finite.size else float("nan")


def pause_ratio(
    cases: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    closed: Sequence[float] | None = None,
) -> float:
    """Mean measured mouth opening in pauses over that in speech, pooled over cases.

    The measure (:attr:`emo.evaluation.scoring.VideoScore.mouth_opening`, the one lip sync
    correlates) reads a closed mouth above 0, so each case's opening is taken above its
    closed mouth (:func:`closed_reading` of the same video, unless ``closed`` gives another
    reference, such as the portrait's). 0: the mouth closes in pauses
    as fully as it ever does; 1: it stays as open as in speech. Frames without a face are
    left out.

    Parameters
    ----------
    cases
        Per case: the ``(f,)`` measured opening (NaN without a face) and the bool ``(f,)``
        pause and speech frames (:func:`pause_frames`).
    closed
        Per case, the closed mouth's reading to use instead of the video's own.

    Returns
    -------
    float
        The ratio; NaN without pause or speech frames, or when the mouth opens no wider
        in speech than in the portrait (there is nothing to close).
    """
    paused: list[np.ndarray] = []
    spoken: list[np.ndarray] = []
    for i, (opening, pause, speech) in enumerate(cases):
        reference = closed_reading(opening) if closed is None else float(closed[i])
        above = np.asarray(opening, dtype=np.float64) - reference
        paused.append(above[pause & np.isfinite(above)])
        spoken.append(above[speech & np.isfinite(above)])
    in_pauses, in_speech = (
        np.concatenate([np.empty(0), *paused]),
        np.concatenate([np.empty(0), *spoken]),
    )
    if not in_pauses.size or not in_speech.size or not float(in_speech.mean()) > 0:
        return float("nan")
    return float(in_pauses.mean() / in_speech.mean())


#: ``(target, measured, met)``; ``met`` is ``None`` where the run did not measure it.
Row = tuple[str, str, bool | None]


def heldout_rows(groups: dict[str, dict[str, Any]] | None) -> list[Row]:
    """Target rows of the voice groups the model never heard (``None`` met: not measured).

    Per group of :data:`HELDOUT_GROUPS`: lip sync r >= 0.8, offset 0 in every case, pause
    ratio <= :data:`PAUSE_RATIO_TARGET`. ``groups`` is :func:`group_scores` of the model;
    a group it lacks (a run without ``--voices``) gets rows that say so.
    """
    rows: list[Row] = []
    for group in HELDOUT_GROUPS:
        names = (
            f"{group}: lip sync r vs truth >= 0.8",
            f"{group}: offset vs truth == 0 frames in every case",
            f"{group}: opening in pauses <= {PAUSE_RATIO_TARGET} of that in speech",
        )
        stats = (groups or {}).get(group)
        if stats is None:
            rows += [(name, "not measured (run with --voices N)", None) for name in names]
            continue
        r = stats.get("lip_sync_truth")
        r = float("nan") if r is None else float(r)
        offsets = list(stats.get("offsets", []))
        ratio = stats.get("pause_ratio")
        ratio = float("nan") if ratio is None else float(ratio)
        rows.append((names[0], f"{r:.3f}", r >= 0.8))
        rows.append((names[1], str(offsets), bool(offsets) and set(offsets) == {0}))
        rows.append((names[2], f"{ratio:.3f}", ratio <= PAUSE_RATIO_TARGET))
    return rows


def targets(
    summary: dict[str, dict[str, Any]],
    model: str,
    *,
    groups: dict[str, dict[str, Any]] | None = None,
    retrieval: dict[str, float] | None = None,
) -> list[Row]:
    """``(target, measured, met)`` rows for the demo model against the truth.

    Parameters
    ----------
    summary
        :meth:`emo.evaluation.benchmark.BenchmarkReport.summary` with ``"truth"``,
        ``model`` and (optionally) ``"autoencoder"``.
    model
        The model's column.
    groups
        :func:`group_scores` of the model (per voice group), for the held-out rows.
    retrieval
        The model's :func:`identity_retrieval` fractions.

    Returns
    -------
    list of tuple
        ``met`` is ``None`` where the target was not measured in this run.
    """
    truth, ours = summary["truth"], summary[model]

    def value(stats: dict[str, Any], key: str) -> float:
        v = stats.get(key)
        return float("nan") if v is None else float(v)

    rows: list[Row] = []
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
    found_by = float("nan") if retrieval is None else float(retrieval["descriptor"])
    rows.append(
        (
            f"identity retrieval by descriptor >= {RETRIEVAL_TARGET:.0%}",
            "not measured" if retrieval is None else f"{found_by:.0%}",
            None if retrieval is None else found_by >= RETRIEVAL_TARGET,
        )
    )
    rows += heldout_rows(groups)
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
        output_size="native",
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

    from emo.datasets.synthetic import make_clip, voice_catalogue, voice_split, voice_track
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
    catalogue = voice_catalogue()
    groups = {
        name: [v for v in catalogue if v.heldout_by == by] for by, name in VOICE_GROUPS.items()
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


def write_ci_cases(
    folder: Path, render_size: int, resolution: int, grow: float, vae: Any
) -> list[Path]:
    """Write the CI guard's held-out-voice cases: one held-out voice, one held-out engine.

    CI has no speech engine, so the cases are stored: per case ``<name>.png`` (the
    portrait, cropped as the benchmark crops it), ``<name>.wav`` (16-bit PCM) and
    ``<name>.json`` (voice, group, fps and the truth's mouth opening per frame).
    A case's identity is the benchmark's, unless the face analyser finds no face in the
    portrait's round trip through the model's autoencoder (``vae``): no model on those
    latents could be scored on it, so the next held-out identity seed is taken.
    """
    import dataclasses

    from emo.evaluation.scoring import enlarge_for_analysis
    from emo.face import FaceAnalyzer

    analyzer = FaceAnalyzer()

    def measurable(portrait: np.ndarray) -> bool:
        seen = analyzer.analyze(enlarge_for_analysis(autoencoder_round_trip(vae, portrait[None])))
        return bool(np.isfinite(np.asarray(seen.mouth_opening, dtype=float)).all())

    import soundfile as sf

    from emo.evaluation.benchmark import crop_case

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from train_demo import write_png

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for case in voice_cases(1, 3.0, render_size):
        if case.group == "seen voice":
            continue
        truth, portrait = crop_case(case, resolution, grow)
        for _ in range(20):
            if measurable(portrait):
                break
            case = dataclasses.replace(case, identity_seed=case.identity_seed + 1)
            truth, portrait = crop_case(case, resolution, grow)
        stem = folder / case.group.replace(" ", "_").replace("-", "_")
        write_png(portrait, stem.with_suffix(".png"))
        sf.write(stem.with_suffix(".wav"), truth.audio.waveform, truth.audio.sample_rate, "PCM_16")
        record = {
            "voice": case.voice_key,
            "group": case.group,
            "identity_seed": case.identity_seed,
            "fps": float(truth.fps),
            "resolution": resolution,
            "mouth_open": [round(float(v), 5) for v in truth.mouth_open],
        }
        stem.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
        written.append(stem)
    return written


def _finite(value: float) -> float | None:
    """``value`` rounded for the JSON report, ``None`` when not finite."""
    return round(value, 4) if math.isfinite(value) else None


def _mean_finite(values: np.ndarray) -> float:
    """Mean of the finite ``values``; NaN when there are none."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if finite.size else float("nan")


def group_scores(
    results: list[Any], pauses: list[tuple[np.ndarray, np.ndarray, float]]
) -> dict[str, dict[str, Any]]:
    """Per voice group (``formant`` for the synthesiser's cases): lip sync and pauses.

    Parameters
    ----------
    results
        One source's :class:`~emo.evaluation.benchmark.CaseResult` per case.
    pauses
        Per case, in the same order: its pause and speech frames (:func:`pause_frames`)
        and the opening measured on its portrait (kept for the report; the closed mouth of
        each video is its own :func:`closed_reading`).

    Returns
    -------
    dict
        ``{group: {"cases", "scored" (cases with a finite r), "lip_sync_truth" (mean r of
        those), "offsets" (theirs),
        "pause_ratio" (:func:`pause_ratio` over the group's cases), "face_found" (mean
        fraction of frames whose face was found: a model that loses the face loses its lip
        sync with it), "voices"}}``.
    """
    by_group: dict[str, list[int]] = {}
    for i, result in enumerate(results):
        by_group.setdefault(getattr(result.case, "group", "") or "formant", []).append(i)
    out = {}
    for group, picked in by_group.items():
        rows = [results[i] for i in picked]
        # a case whose faces are too rarely found has a NaN correlation: left out, counted
        syncs = [
            r.score.lip_sync_truth
            for r in rows
            if r.score.lip_sync_truth is not None
            and math.isfinite(r.score.lip_sync_truth.correlation)
        ]
        ratio = pause_ratio(
            (results[i].score.mouth_opening, pauses[i][0], pauses[i][1]) for i in picked
        )
        out[group] = {
            "cases": len(rows),
            "scored": len(syncs),
            "lip_sync_truth": float(np.mean([s.correlation for s in syncs])) if syncs else None,
            "offsets": sorted({int(s.offset) for s in syncs}),
            "pause_ratio": ratio if math.isfinite(ratio) else None,
            "face_found": float(np.mean([r.score.face_ratio for r in rows])),
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
    parser.add_argument(
        "--write-ci-cases",
        default=None,
        help="only write the CI guard's held-out-voice cases to this folder (needs the engines)",
    )
    args = parser.parse_args(argv)

    import torch

    from emo.evaluation.benchmark import BenchmarkReport, CaseResult, crop_case, heldout_cases
    from emo.evaluation.scoring import enlarge_for_analysis, score_video
    from emo.face import FaceAnalyzer
    from emo.pipelines.emo_pipeline import EMOPipeline
    from emo.pretrained import resolve_model

    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = EMOPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    if args.write_ci_cases:
        geometry = case_geometry(resolve_model(args.model), int(pipe.settings.height))
        for stem in write_ci_cases(Path(args.write_ci_cases), *geometry, pipe.vae):
            print(f"wrote {stem}.png/.wav/.json", flush=True)
        return 0
    if args.strip:
        write_strip(pipe, Path(args.strip), args.seed)
    render_size, resolution, grow = case_geometry(
        resolve_model(args.model), int(pipe.settings.height)
    )
    speeds = [float(s) for s in args.speeds.split(",")]
    cases = heldout_cases(
        args.identities, speeds=speeds, duration=args.duration, size=render_size, singing=False
    )
    if args.voices:
        cases += voice_cases(args.voices, args.duration, render_size)
    analyzer = FaceAnalyzer()
    frames_per_clip = int(pipe.settings.frames_per_clip)
    results: dict[str, list[CaseResult]] = {"truth": [], "emo-demo": [], "autoencoder": []}
    videos: dict[str, list[np.ndarray]] = {name: [] for name in results}
    portraits: list[np.ndarray] = []
    pauses: list[tuple[np.ndarray, np.ndarray, float]] = []
    for case in cases:
        truth, portrait = crop_case(case, resolution, grow)
        pause, speech = pause_frames(truth.audio.units, float(truth.fps), truth.num_frames)
        # The portrait's closed mouth as the measure reads it (enlarged as score_video does),
        # for the report: a sharp reference that blurred generated mouths read below.
        closed = float(analyzer.analyze(enlarge_for_analysis(portrait[None])).mouth_opening[0])
        pauses.append((pause, speech, closed))
        began = time.perf_counter()
        out = pipe(
            portrait,
            truth.audio.waveform,
            audio_rate=truth.audio.sample_rate,
            head_motion_speed=case.speed,
            num_inference_steps=args.steps,
            generator=torch.Generator().manual_seed(args.seed),
            output_type="np",
            output_size="native",  # scored at the generated size, like the truth
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
        opening = results["emo-demo"][-1].score.mouth_opening
        ratio = pause_ratio([(opening, pause, speech)])
        print(
            f"{case.name}: lip sync r={r:.3f}, pause ratio {ratio:.3f} "
            f"({int(pause.sum())} pause / {int(speech.sum())} speech frames; "
            f"{seconds:.2f} s/frame)",
            flush=True,
        )
    report = BenchmarkReport(results, {}, frames_per_clip)
    summary = report.summary()
    identities = sorted({case.identity_seed for case in cases})
    retrieval = identity_retrieval(
        videos, portraits, [identities.index(case.identity_seed) for case in cases], analyzer
    )
    groups = {name: group_scores(rows, pauses) for name, rows in results.items()}
    checks = targets(
        summary, "emo-demo", groups=groups["emo-demo"], retrieval=retrieval["emo-demo"]
    )
    verdict = {True: "yes", False: "no", None: "not measured"}
    lines = ["| target | measured | met |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {verdict[ok]} |" for t, m, ok in checks]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    header = (
        f"emo-demo on {len(cases)} held-out cases ({args.identities} identities x speeds "
        f"{args.speeds}"
        + (f" + {args.voices} per voice group" if args.voices else "")
        + f", {args.duration:g} s of held-out speech each, rendered at {render_size} px, face "
        f"region grown {grow:g}x, {resolution}x{resolution})\n\n"
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
    group_lines = [
        "| voices | cases | "
        + " | ".join(f"{n} lip sync r (offsets)" for n in groups)
        + " | "
        + " | ".join(f"{n} pause ratio" for n in groups)
        + " | "
        + " | ".join(f"{n} face found" for n in groups)
        + " |"
    ]
    group_lines.append("|---|---|" + "---|" * (3 * len(groups)))
    for group in groups["truth"]:
        cells = []
        for per in groups.values():
            g = per.get(group, {})
            mean_r = g.get("lip_sync_truth")
            scored = (
                f"; {g['scored']} of {g['cases']} scored"
                if g.get("scored") != g.get("cases")
                else ""
            )
            cells.append(
                f"{mean_r:.3f} ({g.get('offsets')}{scored})" if mean_r is not None else "-"
            )
        for per in groups.values():
            in_group = per.get(group, {}).get("pause_ratio")
            cells.append(f"{in_group:.3f}" if in_group is not None else "-")
        for per in groups.values():
            found = per.get(group, {}).get("face_found")
            cells.append(f"{found:.2f}" if found is not None else "-")
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
        + "Lip sync and pauses by voice group (pause ratio: mean opening in pauses of "
        + f">= {MIN_PAUSE_SECONDS:g} s over that in speech, above the video's own closed "
        + f"mouth, its {CLOSED_PERCENTILE:g}th percentile of openings; "
        + f"{int(sum(p.sum() for p, _, _ in pauses))} pause and "
        + f"{int(sum(q.sum() for _, q, _ in pauses))} speech frames in all):\n\n"
        + "\n".join(group_lines)
        + "\n"
    )
    (out_dir / "report.md").write_text(markdown, encoding="utf-8")
    data = {
        **report.to_json(),
        "identity_retrieval": retrieval,
        "targets": [list(c) for c in checks],
        "voice_groups": groups,
        # Per case the raw means too, so that another closed-mouth reference can be tried
        # without rerunning (the portrait's sharp closed mouth, say).
        "pause_cases": {
            name: {
                r.case.name: {
                    "pause_ratio": _finite(pause_ratio([(r.score.mouth_opening, pause, speech)])),
                    "closed": _finite(closed_reading(r.score.mouth_opening)),
                    "portrait_closed": _finite(closed),
                    "pause_opening": _finite(_mean_finite(r.score.mouth_opening[pause])),
                    "speech_opening": _finite(_mean_finite(r.score.mouth_opening[speech])),
                    "pause_frames": int(pause.sum()),
                    "speech_frames": int(speech.sum()),
                }
                for r, (pause, speech, closed) in zip(rows, pauses, strict=True)
            }
            for name, rows in results.items()
        },
        "case_geometry": {"render_size": render_size, "resolution": resolution, "crop": grow},
    }
    (out_dir / "report.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
