"""``emo prepare``: talking-head videos with audio -> a training set (see :mod:`emo.training.data_format`).

Per video: shots are found at scene cuts and cut into clips of ``min_seconds`` ..
``max_seconds``; each clip is resampled to the training fps, its per-frame face
boxes found, every frame cropped around the clip's face region (the union box,
grown ``crop_scale`` times, square) and resized to the training size; head
speed, audio features (through the audio-encoder plugin) and optionally VAE
latents are added. Videos are independent: they run in parallel worker
processes, and a video whose ``progress/`` file exists is not done again, so an
interrupted run resumes. A broken, silent or faceless video (or clip) is
skipped with its reason logged; it never stops the run.

Ground truth beside a video is used when present: ``<video stem>.json`` with
``"head_angles"`` (yaw, pitch, roll in degrees per source frame) and/or
``"boxes"`` (``x0, y0, x1, y1`` pixels per source frame), as the synthetic data
sets (:mod:`emo.datasets.synthetic`) write.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from emo.configuration import atomic_write_text, parse_key_values
from emo.errors import ConfigError, EMOError, FaceNotFoundError, InputError
from emo.training.data_format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    read_dataset_info,
    write_clip,
    write_dataset_info,
)
from emo.training.devices import check_device, resolve_device
from emo.training.mouth import fill_gaps, mouth_boxes_from_frames

__all__ = ["PrepareReport", "PrepareSettings", "find_videos", "prepare_dataset"]

logger = logging.getLogger("emo.training.prepare")

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")


@dataclass(frozen=True)
class PrepareSettings:
    """How videos become training clips.

    Attributes
    ----------
    fps
        Training frame rate (the paper: 30; emo's default 25).
    resolution
        Side of the square face crops in pixels.
    min_seconds, max_seconds
        Clip length bounds (3 and 12 s in the paper).
    crop_scale
        The clip's face region (union of its face boxes) is grown this many times
        around its centre before the square crop (as ``PipelineSettings.face_crop_scale``).
    audio_encoder
        Audio-encoder plugin name.
    audio_encoder_config
        Keyword arguments of the audio encoder (e.g. ``{"model_path": "..."}`` for wav2vec2).
    face_mask
        Face-mask plugin name that finds the per-frame face boxes (``"auto"``; ``"full"``
        for data that is already cropped).
    vae
        A VAE or pipeline folder: cache VAE latents of every frame; ``None`` caches none.
    cut_threshold
        Scene-cut threshold (see :func:`emo.training.scenes.scene_cuts`).
    silence_rms
        Audio below this RMS (full scale 1.0) counts as silent.
    device
        Where the VAE encodes the latents: ``"cpu"``, ``"cuda"`` or ``"auto"``. Not part
        of :meth:`signature` (the data does not depend on it beyond float rounding).
    """

    fps: float = 25.0
    resolution: int = 512
    min_seconds: float = 3.0
    max_seconds: float = 12.0
    crop_scale: float = 2.0
    audio_encoder: str = "mel"
    audio_encoder_config: dict[str, Any] | None = None
    face_mask: str = "auto"
    vae: str | None = None
    cut_threshold: float = 30.0
    silence_rms: float = 1e-3
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_device("prepare:", self.device)
        for name in ("fps", "min_seconds", "max_seconds", "crop_scale"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"prepare: {name} must be a positive number, got {value!r}")
        if self.max_seconds < self.min_seconds:
            raise ConfigError(
                f"prepare: max_seconds {self.max_seconds} is below min_seconds {self.min_seconds}"
            )
        if not isinstance(self.resolution, int) or self.resolution < 8 or self.resolution % 8:
            raise ConfigError(
                f"prepare: resolution must be a multiple of 8, got {self.resolution!r}"
            )

    def signature(self) -> dict[str, Any]:
        """The settings that define the data (a resumed run must use the same)."""
        values = asdict(self)
        del values["device"]
        return values


@dataclass
class PrepareReport:
    """What a :func:`prepare_dataset` run did.

    Attributes
    ----------
    clips
        Clips in the data set (all runs together).
    videos_done
        Videos prepared by this run.
    videos_resumed
        Videos already prepared by an earlier run (not done again).
    skipped
        ``(video or clip, reason)`` of everything skipped (all runs together).
    """

    clips: int
    videos_done: int
    videos_resumed: int
    skipped: list[tuple[str, str]]


def find_videos(source: str | os.PathLike[str]) -> list[Path]:
    """The videos of a folder (searched recursively) or listed in a manifest file.

    A manifest is a text file with one path per line (``#`` comments allowed),
    relative to the manifest's folder, or a ``.jsonl`` file with ``{"path": ...}`` lines.

    Raises
    ------
    InputError
        If ``source`` does not exist or holds no video.
    """
    root = Path(source)
    if root.is_dir():
        videos = sorted(
            p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
        )
    elif root.is_file():
        videos = []
        for line in root.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            entry = json.loads(line)["path"] if line.startswith("{") else line
            path = Path(entry)
            videos.append(path if path.is_absolute() else root.parent / path)
    else:
        raise InputError(
            f"video source {os.fspath(root)!r} does not exist; give a folder or a manifest"
        )
    if not videos:
        raise InputError(
            f"no videos in {os.fspath(root)!r} (looked for {', '.join(VIDEO_SUFFIXES)})"
        )
    return videos


def _video_id(video: Path, root: Path) -> str:
    try:
        rel = video.resolve().relative_to(root.resolve())
    except ValueError:
        rel = video.resolve()
    digest = hashlib.sha1(os.fspath(rel).encode()).hexdigest()[:8]
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in video.stem)[:40]
    return f"{stem}-{digest}"


class _Tools:
    """The plugins one worker process uses, built once per process."""

    def __init__(self, settings: PrepareSettings) -> None:
        from emo import plugins

        self.encoder = plugins.create(
            "audio_encoder",
            plugins.load("audio_encoder", settings.audio_encoder)(
                **(settings.audio_encoder_config or {})
            ),
        )
        self.face_mask = plugins.create("face_mask", settings.face_mask)
        self.vae: Any = None
        if settings.vae is not None:
            self.vae = _load_vae(settings.vae).to(resolve_device(settings.device, "prepare"))
        self.analyzer = _face_analyzer()
        self.pose = _pose_estimator(self.analyzer)


_TOOLS: dict[str, _Tools] = {}


def _tools(settings: PrepareSettings) -> _Tools:
    key = json.dumps(
        {**settings.signature(), "device": settings.device}, sort_keys=True, default=str
    )
    if key not in _TOOLS:
        _TOOLS.clear()
        _TOOLS[key] = _Tools(settings)
    return _TOOLS[key]


def _load_vae(path: str) -> Any:
    from emo.models.vae import AutoencoderKL

    folder = Path(path)
    if (folder / "vae" / "config.json").is_file():
        folder = folder / "vae"
    vae = AutoencoderKL.from_pretrained(folder)
    vae.eval().requires_grad_(False)
    return vae


def vae_fingerprint(vae: Any) -> str:
    """A hash of a VAE's weights: cached latents are valid only for the same VAE."""
    digest = hashlib.sha256()
    for name, tensor in sorted(vae.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def _face_analyzer() -> Any:
    """An :class:`emo.face.FaceAnalyzer`, or ``None`` without the face extra (logged once)."""
    import importlib

    try:
        # Looked up by name: emo.face is optional and may be absent from this install.
        return importlib.import_module("emo.face").FaceAnalyzer()
    except (ImportError, AttributeError, EMOError) as exc:
        logger.warning(
            "face analysis unavailable (%s): clips get no head speed (stage 3 cannot use "
            "them) and no mouth boxes; install the face extra: pip install 'emo[face]'",
            exc,
        )
        return None


def _pose_estimator(
    analyzer: Any,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor | None] | None:
    """Per-frame head angles ``(f, 3)`` of frames in known face boxes, via ``emo.face``.

    ``None`` without an analyzer; the estimator returns ``None`` for a clip where fewer
    than half the poses are known (gaps in the rest are filled linearly).
    """
    if analyzer is None:
        return None

    def run(frames: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor | None:
        poses = torch.as_tensor(
            analyzer.analyze(frames.numpy(), boxes=boxes.numpy()).poses, dtype=torch.float32
        )
        known = torch.isfinite(poses).all(dim=1)
        if int(known.sum()) * 2 < poses.shape[0]:
            return None
        return fill_gaps(poses, known)

    return run


def _sidecar(video: Path) -> dict[str, Any]:
    path = video.with_suffix(".json")
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _rms(waveform: torch.Tensor) -> float:
    return float(waveform.pow(2).mean().sqrt()) if waveform.numel() else 0.0


def _mask_boxes(face_mask: Any, frames: torch.Tensor) -> torch.Tensor:
    """Face boxes ``(f, 4)`` of frames from a face-mask plugin."""
    boxes_fn = getattr(face_mask, "boxes", None)
    if callable(boxes_fn):
        return torch.as_tensor(boxes_fn(frames.numpy()), dtype=torch.float32).reshape(-1, 4)
    masks = face_mask(frames.numpy())[:, 0]  # f h w
    rows = []
    for mask in masks:
        ys, xs = torch.nonzero(mask > 0.5, as_tuple=True)
        if ys.numel() == 0:
            raise FaceNotFoundError("no face region in a frame")
        rows.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return torch.tensor(rows, dtype=torch.float32)


def _crop_frames(
    frames: torch.Tensor, boxes: torch.Tensor, size: int, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Square crops around the union face box (grown ``scale`` times) and the boxes in crop pixels."""
    from emo.io.image import expand_box_to_aspect

    height, width = frames.shape[1:3]
    x0, y0 = float(boxes[:, 0].min()), float(boxes[:, 1].min())
    x1, y1 = float(boxes[:, 2].max()), float(boxes[:, 3].max())
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = max(x1 - x0, y1 - y0) * scale / 2
    grown = (cx - half, cy - half, cx + half, cy + half)
    left, top, right, bottom = expand_box_to_aspect(grown, 1.0, height, width)
    pixels = frames.permute(0, 3, 1, 2).float()
    pad = (max(0, -left), max(0, right - width), max(0, -top), max(0, bottom - height))
    if any(pad):
        pixels = torch.nn.functional.pad(pixels, pad, mode="replicate")
    crop = pixels[:, :, top + pad[2] : bottom + pad[2], left + pad[0] : right + pad[0]]
    side = right - left
    if crop.shape[-1] != size or crop.shape[-2] != size:
        crop = torch.nn.functional.interpolate(
            crop, size=(size, size), mode="bicubic", antialias=True, align_corners=False
        )
    out = crop.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    factor = size / side
    shift = torch.tensor([left, top, left, top], dtype=torch.float32)
    moved = ((boxes - shift) * factor).clamp(0, size)
    return out, moved


def _speed_per_frame(
    steps: torch.Tensor, picks: list[int], src_fps: float, fps: float
) -> torch.Tensor:
    """Degrees per training frame from the rotation between picked source frames.

    Picked source frames are unevenly spaced when the rates do not divide (25 -> 10 fps
    picks every 2nd or 3rd frame), so each rotation is divided by its true time gap.
    """
    if len(picks) < 2:
        return steps
    gaps = torch.tensor(picks, dtype=torch.float32).diff().clamp(min=1.0) / src_fps  # seconds
    rates = steps[1:] / (gaps * fps)
    return torch.cat([rates[:1], rates])


def _encode_latents(vae: Any, frames: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """uint8 ``(f, h, w, 3)`` frames -> float32 ``(f, c, h/s, w/s)`` scaled latent modes (CPU)."""
    pixels = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0
    chunks = []
    with torch.no_grad():
        for part in torch.split(pixels, batch_size):
            part = part.to(device=vae.device, dtype=vae.dtype)
            latent = vae.encode(part).mode() * float(vae.config["scaling_factor"])
            chunks.append(latent.float().cpu())
    return torch.cat(chunks)


def _prepare_video(
    video: Path, video_id: str, out: Path, settings: PrepareSettings
) -> dict[str, Any]:
    """Prepare one video; returns its progress record (never raises for bad input)."""
    from emo.audio.alignment import frame_to_sample
    from emo.audio.loading import load_audio
    from emo.io.reader import VideoReader
    from emo.models.speed import head_rotation_speed
    from emo.training.scenes import clip_spans, scene_cuts, thumbnail

    record: dict[str, Any] = {"source": os.fspath(video), "id": video_id, "clips": []}
    skipped: list[dict[str, str]] = []
    try:
        tools = _tools(settings)
        with VideoReader(video) as reader:
            if not reader.has_audio:
                return {**record, "status": "skipped", "reason": "no audio track"}
            rate = int(tools.encoder.sample_rate)
            waveform = load_audio(video, sample_rate=rate)
            if _rms(waveform) < settings.silence_rms:
                return {**record, "status": "skipped", "reason": "silent audio"}
            thumbs = torch.cat([thumbnail(frame[None]) for frame in reader])
            src_fps = reader.fps
            cuts = scene_cuts(thumbs, threshold=settings.cut_threshold)
            spans = clip_spans(
                thumbs.shape[0],
                src_fps,
                cuts,
                min_seconds=settings.min_seconds,
                max_seconds=settings.max_seconds,
            )
            if not spans:
                reason = f"no shot of at least {settings.min_seconds:g} s"
                return {**record, "status": "skipped", "reason": reason}
            side = _sidecar(video)
            for k, (start, stop) in enumerate(spans):
                clip_id = f"{video_id}-{k:03d}"
                t0 = start / src_fps
                count = math.floor((stop - start) / src_fps * settings.fps + 1e-6)
                picks = [
                    min(stop - 1, start + round(i * src_fps / settings.fps)) for i in range(count)
                ]
                raw = reader.read(start, stop - start)
                index = torch.tensor([p - start for p in picks]).clamp(max=raw.shape[0] - 1)
                frames = raw[index]
                if "boxes" in side:
                    boxes = torch.tensor(side["boxes"], dtype=torch.float32)[torch.tensor(picks)]
                else:
                    try:
                        boxes = _mask_boxes(tools.face_mask, frames)
                    except FaceNotFoundError as exc:
                        skipped.append({"item": clip_id, "reason": f"no face: {exc}"})
                        continue
                if boxes.shape != (count, 4) or not bool(
                    ((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])).all()
                ):
                    skipped.append({"item": clip_id, "reason": "no face in some frames"})
                    continue
                a = frame_to_sample(round(t0 * settings.fps), rate, settings.fps)
                clip_audio = waveform[a : a + frame_to_sample(count, rate, settings.fps)]
                if _rms(clip_audio) < settings.silence_rms:
                    skipped.append({"item": clip_id, "reason": "silent clip"})
                    continue
                crops, crop_boxes = _crop_frames(
                    frames, boxes, settings.resolution, settings.crop_scale
                )
                tensors: dict[str, torch.Tensor] = {
                    "frames": crops,
                    "boxes": crop_boxes,
                    "audio": clip_audio.float().contiguous(),
                    "audio_features": tools.encoder.encode(
                        clip_audio, rate, num_frames=count, fps=settings.fps
                    )
                    .float()
                    .cpu(),
                }
                angles = None
                if "head_angles" in side:
                    angles = torch.tensor(side["head_angles"], dtype=torch.float32)[
                        torch.tensor(picks)
                    ]
                elif tools.pose is not None:
                    angles = tools.pose(frames, boxes)
                if angles is not None:
                    tensors["speed"] = _speed_per_frame(
                        head_rotation_speed(angles), picks, src_fps, settings.fps
                    )
                if tools.analyzer is not None:
                    mouth = mouth_boxes_from_frames(tools.analyzer, crops)
                    if mouth is not None:
                        tensors["mouth_boxes"] = mouth
                if tools.vae is not None:
                    tensors["latents"] = _encode_latents(tools.vae, crops)
                write_clip(
                    out / "clips" / f"{clip_id}.safetensors",
                    tensors,
                    {"source": os.fspath(video), "start_seconds": f"{t0:.6f}"},
                )
                record["clips"].append(
                    {
                        "id": clip_id,
                        "source": os.fspath(video),
                        "start_seconds": round(t0, 6),
                        "frames": count,
                        "has_speed": angles is not None,
                    }
                )
    except (EMOError, OSError, RuntimeError, ValueError, KeyError, IndexError) as exc:
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return {**record, "status": "skipped", "reason": reason, "skipped_clips": skipped}
    if not record["clips"]:
        reason = skipped[0]["reason"] if skipped else "no usable clip"
        return {**record, "status": "skipped", "reason": reason, "skipped_clips": skipped}
    return {**record, "status": "done", "skipped_clips": skipped}


def _worker(
    args: tuple[Path, str, Path, PrepareSettings, int | None],
) -> dict[str, Any]:
    video, video_id, out, settings, threads = args
    if threads is not None:
        torch.set_num_threads(threads)
    record = _prepare_video(video, video_id, out, settings)
    atomic_write_text(out / "progress" / f"{video_id}.json", json.dumps(record, indent=1) + "\n")
    return record


def _latents_info(vae: Any) -> dict[str, Any]:
    """What ``dataset.json`` records of the VAE whose latents a data set caches."""
    return {
        "vae_config": dict(vae.config.public()),
        "vae_sha256": vae_fingerprint(vae),
        "scaling_factor": float(vae.config["scaling_factor"]),
    }


def _dataset_info(settings: PrepareSettings, tools: _Tools) -> dict[str, Any]:
    from emo import plugins
    from emo._version import __version__

    enc = tools.encoder
    config = getattr(enc, "config", None)
    info: dict[str, Any] = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "emo_version": __version__,
        "fps": float(settings.fps),
        "resolution": settings.resolution,
        "settings": settings.signature(),
        "audio_encoder": {
            "name": plugins.plugin_name_of("audio_encoder", enc) or settings.audio_encoder,
            "config": dict(config.public())
            if config is not None and hasattr(config, "public")
            else {},
            "sample_rate": int(enc.sample_rate),
            "num_layers": int(enc.num_layers),
            "feature_dim": int(enc.feature_dim),
        },
        "latents": None,
    }
    if tools.vae is not None:
        info["latents"] = _latents_info(tools.vae)
    return json.loads(json.dumps(info, default=str))  # type: ignore[no-any-return]


def _collect(
    out: Path, video_ids: Iterable[str]
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    clips: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    for video_id in sorted(video_ids):
        path = out / "progress" / f"{video_id}.json"
        if not path.is_file():
            continue
        record = json.loads(path.read_text(encoding="utf-8"))
        clips.extend(record.get("clips", []))
        if record.get("status") == "skipped":
            skipped.append((record["source"], record["reason"]))
        for item in record.get("skipped_clips", []):
            if record.get("status") == "done":
                skipped.append((item["item"], item["reason"]))
    return clips, skipped


def prepare_dataset(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    settings: PrepareSettings | None = None,
    *,
    workers: int = 1,
    threads_per_worker: int | None = 1,
    progress: bool = True,
) -> PrepareReport:
    """Turn a folder (or manifest) of talking-head videos into a training set.

    Parameters
    ----------
    source
        A folder of videos (searched recursively) or a manifest (see :func:`find_videos`).
    output
        The data folder (created; an existing one is resumed).
    settings
        :class:`PrepareSettings`; a resumed folder must be continued with the same.
    workers
        Videos prepared at once, each in its own process (1: in this process).
    threads_per_worker
        Torch threads of each worker process.
    progress
        Show a progress bar.

    Returns
    -------
    PrepareReport

    Raises
    ------
    InputError
        If ``source`` holds no video, or ``output`` was prepared with other settings.
    """
    from tqdm.auto import tqdm

    settings = settings or PrepareSettings()
    if not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a positive int, got {workers!r}")
    out = Path(output)
    videos = find_videos(source)
    root = Path(source) if Path(source).is_dir() else Path(source).parent
    (out / "clips").mkdir(parents=True, exist_ok=True)
    (out / "progress").mkdir(exist_ok=True)
    info = _dataset_info(settings, _tools(settings))
    if (out / "dataset.json").is_file():
        old = read_dataset_info(out)
        if (
            old.get("settings") != info["settings"]
            or old.get("audio_encoder") != info["audio_encoder"]
        ):
            raise InputError(
                f"{os.fspath(out)!r} was prepared with other settings ({old.get('settings')}); "
                "use a new output folder or the same settings to resume"
            )
    write_dataset_info(out, info)
    ids = {_video_id(v, root): v for v in videos}
    todo = [(v, i) for i, v in ids.items() if not (out / "progress" / f"{i}.json").is_file()]
    resumed = len(ids) - len(todo)
    jobs = [(video, video_id, out, settings, threads_per_worker) for video, video_id in todo]
    bar = tqdm(total=len(jobs), desc="emo prepare", unit="video", disable=not progress)
    try:
        results: Iterable[dict[str, Any]]
        if workers == 1 or len(jobs) <= 1:
            results = (_worker(job) for job in jobs)
            _consume(results, bar)
        else:
            import multiprocessing

            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                _consume(pool.map(_worker, jobs), bar)
    finally:
        bar.close()
    clips, skipped = _collect(out, ids)
    lines = "".join(json.dumps(c, sort_keys=True) + "\n" for c in clips)
    atomic_write_text(out / "clips.jsonl", lines)
    atomic_write_text(
        out / "skipped.jsonl",
        "".join(json.dumps({"item": i, "reason": r}) + "\n" for i, r in skipped),
    )
    return PrepareReport(
        clips=len(clips), videos_done=len(jobs), videos_resumed=resumed, skipped=skipped
    )


def _consume(results: Iterable[dict[str, Any]], bar: Any) -> None:
    for record in results:
        if record.get("status") == "skipped":
            logger.warning("skipped %s: %s", record["source"], record["reason"])
        for item in record.get("skipped_clips", []):
            logger.info("skipped clip %s: %s", item["item"], item["reason"])
        bar.update(1)


def parse_encoder_options(options: Sequence[str]) -> dict[str, Any]:
    """``["model_path=/x", "layers=[1,2]"]`` -> keyword arguments (JSON values, else strings)."""
    return parse_key_values(options, "option")
