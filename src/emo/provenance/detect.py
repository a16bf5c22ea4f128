"""``emo.detect(path)``: is this file an emo generation? Reads the watermark, the label and the C2PA manifest."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emo.errors import VideoError
from emo.provenance.label import read_gif_comments, read_png_text
from emo.provenance.manifest_check import ManifestReport, read_manifest
from emo.provenance.payload import Payload
from emo.provenance.watermark import DEFAULT_KEY, Watermarker

__all__ = ["Detection", "detect"]

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class Detection:
    """What :func:`detect` found in a file.

    Attributes
    ----------
    watermarked
        True when the invisible watermark was found: its correlation peak is far too
        high for unmarked content, or its payload's checksum matched at a high peak.
    payload
        The emo version and per-video id it carries, or ``None`` (not found, or found but
        too damaged to read).
    confidence
        ``1 - p``, with ``p`` a bound on the chance that an unmarked video gives this
        result; 0 when nothing was found.
    score
        The detection statistic (about 48 on unmarked content, hundreds on marked).
    scale
        Estimated size relative to the generated original (0.5: halved).
    label
        The provenance tags found in the container, PNG text chunks or GIF comment
        (lower-case keys; empty when the file carries none).
    frames
        Frames read for the detection.
    manifest
        The C2PA manifest check (:class:`~emo.provenance.manifest_check.ManifestReport`),
        or ``None`` for frames given as an array.
    """

    watermarked: bool
    payload: Payload | None
    confidence: float
    score: float
    scale: float
    label: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    manifest: ManifestReport | None = None

    @property
    def verdict(self) -> str:
        """``"tampered"``, ``"synthetic"`` or ``"unknown"`` (what ``emo detect``'s exit status says).

        ``"tampered"``: a C2PA manifest is present but fails validation (the file was
        changed after signing, or the manifest or its signature is broken), whatever
        else was found. ``"synthetic"``: the watermark was found, or a valid manifest
        says a trained model made the content. ``"unknown"``: neither (which proves
        nothing: see the guide).
        """
        if self.manifest is not None and self.manifest.tampered:
            return "tampered"
        if self.watermarked or (self.manifest is not None and self.manifest.ai_generated):
            return "synthetic"
        return "unknown"

    @property
    def labelled(self) -> bool:
        """True when the file carries emo's metadata label."""
        return self.label.get("generator") == "emo"

    def summary(self) -> str:
        """A few lines for people: the verdict, the payload and the label."""
        if self.watermarked:
            lines = [
                f"watermark: FOUND (confidence {self.confidence:.6f}, score {self.score:.0f}, "
                f"scale {self.scale:.2f})",
                f"  emo version {self.payload.version}, video id {self.payload.video_id}"
                if self.payload is not None
                else "  payload unreadable (the mark is present but too damaged to read)",
            ]
        else:
            lines = [f"watermark: not found (score {self.score:.0f})"]
        if self.label:
            lines.append("label: " + ", ".join(f"{k}={v}" for k, v in sorted(self.label.items())))
        else:
            lines.append("label: none")
        if not self.watermarked and "private key" in self.label.get("watermark", ""):
            lines.append(
                "  the label says the mark uses a private key: detect with that key "
                "(--watermark-key-file or EMO_WATERMARK_KEY)"
            )
        if self.manifest is not None:
            lines.append(self.manifest.summary())
        return "\n".join(lines)


def _read_frames(path: Path, max_frames: int) -> tuple[np.ndarray, dict[str, str]]:
    """Up to ``max_frames`` uint8 ``(f, h, w, 3)`` frames and the container tags."""
    import av

    try:
        with av.open(os.fspath(path)) as container:
            tags = {str(k).lower(): str(v) for k, v in container.metadata.items()}
            if not container.streams.video:
                raise VideoError(f"{str(path)!r} holds no video or image stream")
            frames = []
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) >= max_frames:
                    break
    except av.error.FFmpegError as exc:
        raise VideoError(f"cannot read {str(path)!r} as a video or image: {exc}") from exc
    if not frames:
        raise VideoError(f"{str(path)!r} holds no decodable frame")
    return np.stack(frames), tags


def _file_label(path: Path, tags: dict[str, str]) -> dict[str, str]:
    head = path.read_bytes()[:65536] if path.is_file() else b""
    if head.startswith(b"\x89PNG"):
        tags = {**tags, **{k.lower(): v for k, v in read_png_text(head).items()}}
    elif head[:3] == b"GIF":
        for comment in read_gif_comments(path.read_bytes()):
            for line in comment.splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    tags[key.strip().lower()] = value.strip()
    known = ("generator", "emo_version", "synthetic", "watermark", "video_id", "comment")
    return {k: v for k, v in tags.items() if k in known}


def _folder_manifest(files: list[Path], trust_anchors: Any) -> ManifestReport:
    """One report for a folder of frames: a tampered frame's, else the first signed one's.

    When some frames are signed and others not, frames were replaced or added after
    signing: that is reported as tampered too.
    """
    reports = [read_manifest(f, trust_anchors=trust_anchors) for f in files]
    for report in reports:
        if report.tampered:
            return report
    signed = [report for report in reports if report.present]
    unsigned = [f.name for f, report in zip(files, reports, strict=True) if not report.present]
    if signed and unsigned:
        return replace(
            signed[0],
            valid=False,
            trusted=False,
            state="Invalid",
            error=(
                f"{len(unsigned)} of {len(files)} frames carry no manifest (e.g. "
                f"{unsigned[0]!r}) while the others do: frames were replaced or added after "
                "signing"
            ),
        )
    return signed[0] if signed else reports[0]


def detect(
    source: str | os.PathLike[str] | np.ndarray | torch.Tensor,
    *,
    key: str | int = DEFAULT_KEY,
    max_frames: int = 48,
    trust_anchors: str | os.PathLike[str] | bytes | None = None,
) -> Detection:
    """Look for emo's watermark, label and C2PA manifest in a video, GIF, image or folder of frames.

    Parameters
    ----------
    source
        A video file (MP4, WebM, GIF, anything FFmpeg reads), an image, a folder of
        PNG frames, or frames uint8 ``(f, h, w, 3)`` directly.
    key
        The watermark key (emo's public default unless the video was marked with another).
    max_frames
        Frames read from the start of a video; more frames help with heavy compression.
    trust_anchors
        CA certificates (a PEM file, or PEM bytes) whose C2PA signatures count as
        trusted; by default ``EMO_C2PA_TRUST_ANCHORS``'s file, else none. The manifest
        is checked when ``c2pa-python`` is installed (``emo[c2pa]``); in a folder of
        frames, every frame's manifest is checked and a tampered one is reported.

    Returns
    -------
    Detection
        Presence, payload, confidence, the label and the manifest check.

    Raises
    ------
    VideoError
        If the path does not exist or cannot be decoded.
    CredentialsError
        If ``trust_anchors`` cannot be read.
    """
    marker = Watermarker(key=key)
    manifest: ManifestReport | None = None
    if isinstance(source, (np.ndarray, torch.Tensor)):
        frames = source.cpu().numpy() if isinstance(source, torch.Tensor) else source
        label: dict[str, str] = {}
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise VideoError(f"{os.fspath(source)!r} does not exist; give a video, image or folder")
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
            if not files:
                raise VideoError(f"folder {str(path)!r} holds no image frames (.png, .jpg)")
            manifest = _folder_manifest(files, trust_anchors)
            files = files[:max_frames]
            stacked = [_read_frames(p, 1)[0] for p in files]
            frames = np.concatenate(stacked)
            label = _file_label(files[0], {})
        else:
            frames, tags = _read_frames(path, max_frames)
            label = _file_label(path, tags)
            manifest = read_manifest(path, trust_anchors=trust_anchors)
    result = marker.detect(frames)
    return Detection(
        watermarked=result.found,
        payload=result.payload,
        confidence=result.confidence,
        score=result.score,
        scale=result.scale,
        label=label,
        frames=int(frames.shape[0]) if frames.ndim == 4 else 1,
        manifest=manifest,
    )
