"""The benchmark: generate videos for held-out (identity, audio) pairs and score them.

A *generator* is anything that turns a portrait and an audio track into frames:
:func:`pipeline_generator` wraps an :class:`~emo.pipelines.emo_pipeline.EMOPipeline`,
:func:`truth_generator` returns the synthetic ground truth itself (the ceiling every
score is compared with, and the benchmark's own sanity check). Every generator
of a run sees the same cases; the report puts them side by side, with ratios to
the first one.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from emo._deprecation import renamed_arguments, warn_renamed
from emo.datasets.synthetic import SyntheticClip, make_clip
from emo.errors import InputError
from emo.evaluation.scoring import VideoScore, score_video

__all__ = [
    "BenchmarkCase",
    "BenchmarkReport",
    "CaseResult",
    "Generator",
    "crop_case",
    "heldout_cases",
    "pipeline_generator",
    "portrait_of",
    "run_benchmark",
    "truth_generator",
]


@dataclasses.dataclass(frozen=True)
class BenchmarkCase:
    """One (identity, audio, speed) pair of held-out synthetic data."""

    identity_seed: int
    audio_seed: int
    speed: float
    mode: str = "speech"
    duration: float = 4.0
    size: int = 128
    fps: int = 25

    @property
    def name(self) -> str:
        """A short label: ``id<identity>-<mode><audio>-v<speed>``."""
        return f"id{self.identity_seed}-{self.mode}{self.audio_seed}-v{self.speed:g}"

    def clip(self) -> SyntheticClip:
        """The ground-truth clip of this case (the same every call)."""
        return make_clip(
            self.identity_seed,
            self.audio_seed,
            duration=self.duration,
            fps=self.fps,
            size=self.size,
            speed=self.speed,
            mode="singing" if self.mode == "singing" else "speech",
            split="heldout",
        )


def heldout_cases(
    num_identities: int = 4,
    *,
    speeds: Sequence[float] = (0.0, 1.0, 2.0),
    duration: float = 4.0,
    size: int = 128,
    singing: bool = True,
    seed: int = 0,
) -> list[BenchmarkCase]:
    """Held-out cases: every identity with its own audio, at every speed.

    Identities come from the ``heldout`` split (unlike any training identity);
    every other identity sings when ``singing``. ``num_identities * len(speeds)`` cases.
    """
    if num_identities < 1 or not speeds:
        raise InputError("heldout_cases needs at least one identity and one speed")
    cases = []
    for i in range(num_identities):
        mode = "singing" if singing and i % 2 == 1 else "speech"
        for speed in speeds:
            cases.append(
                BenchmarkCase(
                    seed * 1000 + i, seed * 1000 + 500 + i, float(speed), mode, duration, size
                )
            )
    return cases


def crop_case(
    case: BenchmarkCase, resolution: int, grow: float = 1.3
) -> tuple[SyntheticClip, np.ndarray]:
    """A case's truth clip and portrait, cropped as face-crop training data.

    Both are cut to the clip's face region grown ``grow`` times
    (:func:`~emo.datasets.synthetic.face_crop_box`, :func:`~emo.datasets.synthetic.crop_to_face`)
    and resized to ``resolution`` pixels square: what a model trained on such crops (the
    bundled ``emo-demo``) is given and compared with.

    Returns
    -------
    tuple
        The cropped :class:`~emo.datasets.synthetic.SyntheticClip` and the uint8
        ``(resolution, resolution, 3)`` portrait (:func:`portrait_of`, cropped the same way).
    """
    from emo.datasets.synthetic import crop_to_face, face_crop_box
    from emo.io.image import crop_and_resize

    clip = case.clip()
    box = face_crop_box(clip, grow)
    portrait = crop_and_resize(portrait_of(clip), box, resolution, resolution)
    return crop_to_face(clip, resolution, grow), portrait


def portrait_of(clip: SyntheticClip) -> np.ndarray:
    """The reference portrait of a case: its head, frontal, mouth closed, eyes open.

    Returns
    -------
    numpy.ndarray
        uint8 ``(h, w, 3)``.
    """
    from emo.datasets.synthetic import HeadRenderer

    renderer = HeadRenderer(clip.identity, int(clip.frames.shape[1]))
    image = renderer.render(np.zeros(3), np.zeros(2), 0.0, 0.5, 0.0)
    return (image * 255.0 + 0.5).astype(np.uint8)


class Generator(Protocol):
    """Portrait + audio -> frames: what the benchmark runs.

    Called with the portrait (uint8 ``(h, w, 3)``), the audio (float32
    ``(samples,)``), its sample rate, the requested head speed (degrees per frame),
    the number of frames and the frame rate; returns uint8 or float ``(f, h, w, 3)``.
    The ground-truth clip is passed too (``truth``), for oracle generators only.
    """

    def __call__(
        self,
        portrait: np.ndarray,
        audio: np.ndarray,
        sample_rate: int,
        *,
        speed: float,
        num_frames: int,
        fps: float,
        truth: SyntheticClip,
    ) -> Any: ...


def truth_generator(
    *,
    delay: int = 0,
    frozen_mouth: bool = False,
    audio_of: Callable[[SyntheticClip], SyntheticClip] | None = None,
) -> Generator:
    """The ground truth as a generator, optionally broken on purpose.

    Parameters
    ----------
    delay
        Show every frame ``delay`` frames late (the video lags the audio).
    frozen_mouth
        Redraw the clip with the mouth held closed.
    audio_of
        Redraw the clip mouthing another clip's audio: ``audio_of(truth)`` returns the
        clip whose mouth track is used.
    """

    def generate(
        portrait: np.ndarray,
        audio: np.ndarray,
        sample_rate: int,
        *,
        speed: float,
        num_frames: int,
        fps: float,
        truth: SyntheticClip,
    ) -> np.ndarray:
        frames = truth.frames
        if frozen_mouth or audio_of is not None:
            frames = _redraw(truth, None if frozen_mouth else audio_of(truth))  # type: ignore[misc]
        if delay:
            frames = np.concatenate([np.repeat(frames[:1], delay, axis=0), frames[:-delay]])
        return frames[:num_frames]

    return generate


def _redraw(truth: SyntheticClip, other: SyntheticClip | None) -> np.ndarray:
    """The truth's frames with the mouth closed (``other=None``) or mouthing ``other``."""
    from emo.datasets.synthetic import HeadRenderer, blinks, head_offset

    renderer = HeadRenderer(truth.identity, int(truth.frames.shape[1]))
    f = truth.num_frames
    closure = blinks(truth.identity.seed, f, float(truth.fps))
    opening = np.zeros(f) if other is None else np.resize(other.mouth_open, f)
    width = np.full(f, 0.5) if other is None else np.resize(other.mouth_width, f)
    out = np.empty_like(truth.frames)
    offsets = head_offset(truth.head_pose)
    for i in range(f):
        image = renderer.render(
            truth.head_pose[i], offsets[i], float(opening[i]), float(width[i]), float(closure[i])
        )
        out[i] = (image * 255.0 + 0.5).astype(np.uint8)
    return out


def pipeline_generator(pipeline: Any, **call_options: Any) -> Generator:
    """Wrap an :class:`~emo.pipelines.emo_pipeline.EMOPipeline` (or anything with its call signature).

    ``call_options`` go to every call (``num_inference_steps``, ``generator``, ...);
    the size is the case's, the requested speed goes to ``head_motion_speed``.
    """

    def generate(
        portrait: np.ndarray,
        audio: np.ndarray,
        sample_rate: int,
        *,
        speed: float,
        num_frames: int,
        fps: float,
        truth: SyntheticClip,
    ) -> Any:
        height, width = portrait.shape[:2]
        options = {
            "height": height,
            "width": width,
            "fps": fps,
            "output_type": "np",
            **call_options,
        }
        out = pipeline(portrait, audio, audio_rate=sample_rate, head_motion_speed=speed, **options)
        frames = out.frames if hasattr(out, "frames") else out[0]
        return np.asarray(frames)[:num_frames]

    return generate


@dataclasses.dataclass(frozen=True)
class CaseResult:
    """One generator on one case."""

    case: BenchmarkCase
    score: VideoScore
    seconds_per_frame: float


class _MemoryWatch:
    """Peak resident memory while a block runs (polled), and the CUDA allocator's peak.

    On systems without ``/proc/self/statm`` the process-lifetime peak (``ru_maxrss``)
    is reported instead.
    """

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def _rss(self) -> int:
        try:
            with open("/proc/self/statm", encoding="ascii") as handle:
                return int(handle.read().split()[1]) * self._page
        except (OSError, ValueError, IndexError):
            scale = 1 if sys.platform == "darwin" else 1024
            return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop.wait(0.01)

    def __enter__(self) -> _MemoryWatch:
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.reset_peak_memory_stats()
        self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    def result(self) -> dict[str, float]:
        out = {"peak_rss_mib": self.peak / 2**20}
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
        return out


def _nanmean(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else float("nan")


@dataclasses.dataclass
class BenchmarkReport:
    """Scores of every generator on every case, and the tables that summarise them."""

    results: dict[str, list[CaseResult]]
    memory: dict[str, dict[str, float]]
    frames_per_clip: int | None

    @property
    def clip_length(self) -> int | None:
        """Deprecated name of :attr:`frames_per_clip`."""
        warn_renamed("clip_length", "frames_per_clip", where="BenchmarkReport")
        return self.frames_per_clip

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per generator: the mean of every scalar score over the cases, and costs."""
        out: dict[str, dict[str, Any]] = {}
        for name, rows in self.results.items():
            per_case = [r.score.summary() for r in rows]
            keys = [
                k
                for k in per_case[0]
                if k not in ("num_frames", "fps") and not k.startswith("offset")
            ]
            stats: dict[str, Any] = {}
            for key in keys:
                values = [c.get(key) for c in per_case]
                stats[key] = _nanmean([float("nan") if v is None else float(v) for v in values])
            for key in ("offset_truth", "offset_loudness"):
                offsets = [c[key] for c in per_case if c.get(key) is not None]
                if offsets:
                    stats[key] = float(np.median(offsets))
            stats["seconds_per_frame"] = _nanmean([r.seconds_per_frame for r in rows])
            stats.update(self.memory.get(name, {}))
            speeds: dict[str, dict[str, float]] = {}
            for speed in sorted({r.case.speed for r in rows}):
                picked = [r.score for r in rows if r.case.speed == speed]
                speeds[f"{speed:g}"] = {
                    "head_velocity_mean": _nanmean([s.head_velocity_mean for s in picked]),
                    "head_velocity_var": _nanmean([s.head_velocity_var for s in picked]),
                    "box_motion": _nanmean([s.box_motion for s in picked]),
                }
            stats["by_speed"] = speeds
            means = [v["head_velocity_mean"] for v in speeds.values()]
            # The paper's speed-layer check: measured velocity rises with the requested speed.
            stats["velocity_rises"] = (
                bool(all(b > a for a, b in itertools.pairwise(means)))
                if len(means) > 1 and all(math.isfinite(m) for m in means)
                else None
            )
            out[name] = stats
        return out

    def to_json(self) -> dict[str, Any]:
        """Summary and per-case scores, JSON-ready (NaN becomes ``None``)."""

        def clean(value: Any) -> Any:
            if isinstance(value, float):
                return None if not math.isfinite(value) else round(value, 4)
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            return value

        return {
            "frames_per_clip": self.frames_per_clip,
            "summary": clean(self.summary()),
            "cases": {
                name: [
                    {
                        "case": r.case.name,
                        "speed": r.case.speed,
                        "seconds_per_frame": clean(r.seconds_per_frame),
                        **r.score.summary(),
                    }
                    for r in rows
                ]
                for name, rows in self.results.items()
            },
        }

    def to_markdown(self) -> str:
        """Two tables: scores per generator (with ratios to the first), head motion per speed."""
        summary = self.summary()
        names = list(summary)
        base = names[0]
        rows = [
            ("lip sync r vs truth", "lip_sync_truth"),
            ("offset vs truth (frames)", "offset_truth"),
            ("lip sync r vs loudness", "lip_sync_loudness"),
            ("offset vs loudness (frames)", "offset_loudness"),
            ("identity (cosine, mouth masked)", "identity"),
            ("appearance outside mouth (PSNR dB)", "appearance_psnr"),
            ("face found (fraction)", "face_ratio"),
            ("head velocity mean (deg/frame)", "head_velocity_mean"),
            ("head velocity var", "head_velocity_var"),
            ("box motion (face widths/frame)", "box_motion"),
            ("seam jump / within-clip change", "seam_ratio"),
            ("seconds per frame", "seconds_per_frame"),
            ("peak RSS (MiB)", "peak_rss_mib"),
            ("peak CUDA memory (MiB)", "peak_cuda_mib"),
        ]

        def fmt(value: Any) -> str:
            if value is None or (isinstance(value, float) and not math.isfinite(value)):
                return "-"
            return f"{value:.3g}" if isinstance(value, float) else str(value)

        header = ["metric", *names, *[f"{n} / {base}" for n in names[1:]]]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for label, key in rows:
            values = [summary[n].get(key) for n in names]
            if all(v is None or (isinstance(v, float) and not math.isfinite(v)) for v in values):
                continue
            ratios = []
            for v in values[1:]:
                b = values[0]
                ok = (
                    isinstance(v, float)
                    and isinstance(b, float)
                    and math.isfinite(v)
                    and math.isfinite(b)
                    and b != 0
                )
                ratios.append(fmt(v / b) if ok else "-")  # type: ignore[operator]
            lines.append("| " + " | ".join([label, *map(fmt, values), *ratios]) + " |")
        speed_header = ["requested speed (deg/frame)"]
        for n in names:
            speed_header += [f"{n} velocity mean", f"{n} velocity var", f"{n} box motion"]
        speed_lines = ["| " + " | ".join(speed_header) + " |", "|" + "---|" * len(speed_header)]
        for speed in summary[base]["by_speed"]:
            cells = [speed]
            for n in names:
                s = summary[n]["by_speed"].get(speed, {})
                cells += [
                    fmt(s.get("head_velocity_mean")),
                    fmt(s.get("head_velocity_var")),
                    fmt(s.get("box_motion")),
                ]
            speed_lines.append("| " + " | ".join(cells) + " |")
        rises = [
            f"{n}: {'yes' if summary[n]['velocity_rises'] else 'no'}"
            for n in names
            if summary[n].get("velocity_rises") is not None
        ]
        verdict = (
            f"\nHead velocity rises with the requested speed: {', '.join(rises)}.\n"
            if rises
            else ""
        )
        return "\n".join(lines) + "\n\n" + "\n".join(speed_lines) + "\n" + verdict


@renamed_arguments(clip_length="frames_per_clip")
def run_benchmark(
    generators: Mapping[str, Generator],
    cases: Sequence[BenchmarkCase],
    *,
    frames_per_clip: int | None = None,
    max_offset: int = 10,
    identity_frames: int = 4,
    progress: Callable[[str], None] | None = None,
) -> BenchmarkReport:
    """Run every generator on every case and score the videos.

    Parameters
    ----------
    generators
        Name -> generator; the first is the baseline of the ratios (put the truth first).
    cases
        From :func:`heldout_cases`.
    frames_per_clip
        Frames per generated clip, for the seam score (the pipeline's ``frames_per_clip``).
    max_offset
        Largest audio-video offset searched, in frames.
    identity_frames
        Frames per video compared with the portrait.
    progress
        Called with a line of text after each video.

    Raises
    ------
    InputError
        Without generators or cases, or when a generator returns the wrong number of frames.
    """
    from emo.face import FaceAnalyzer

    if not generators or not cases:
        raise InputError("run_benchmark needs at least one generator and one case")
    analyzer = FaceAnalyzer()
    results: dict[str, list[CaseResult]] = {name: [] for name in generators}
    memory: dict[str, dict[str, float]] = {}
    truths = {case: case.clip() for case in cases}
    watch = _MemoryWatch()
    for name, generate in generators.items():
        for case in cases:
            truth = truths[case]
            portrait = portrait_of(truth)
            start = time.perf_counter()
            with watch:
                frames = generate(
                    portrait,
                    truth.audio.waveform,
                    truth.audio.sample_rate,
                    speed=case.speed,
                    num_frames=truth.num_frames,
                    fps=float(truth.fps),
                    truth=truth,
                )
            elapsed = time.perf_counter() - start
            peaks = watch.result()
            for key, value in peaks.items():
                memory.setdefault(name, {})[key] = max(memory.get(name, {}).get(key, 0.0), value)
            watch = _MemoryWatch()
            video = np.asarray(frames)
            if video.shape[0] != truth.num_frames:
                raise InputError(
                    f"generator {name!r} returned {video.shape[0]} frames for case {case.name}; "
                    f"expected {truth.num_frames} (duration x fps)"
                )
            score = score_video(
                video,
                truth.fps,
                audio=truth.audio.waveform,
                sample_rate=truth.audio.sample_rate,
                truth_mouth=truth.mouth_open,
                reference=portrait,
                frames_per_clip=frames_per_clip,
                max_offset=max_offset,
                identity_frames=identity_frames,
                analyzer=analyzer,
            )
            results[name].append(CaseResult(case, score, elapsed / truth.num_frames))
            if progress is not None:
                sync = score.lip_sync_truth
                progress(
                    f"{name} {case.name}: lip sync r={sync.correlation if sync else float('nan'):.3f}"
                )
    return BenchmarkReport(results, memory, frames_per_clip)
