"""A tiny talking-head data set written by the tests themselves (real MP4s with AAC audio)."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from emo import plugins
from emo.errors import FaceNotFoundError
from emo.face_masks.base import FaceMaskBase

FPS = 25
SIZE = 96
RATE = 16000


class BrightFaceMask(FaceMaskBase):
    """Test detector: the face is the bright disc the synthetic videos draw."""

    name = "test-bright"

    def boxes(self, frames: Any) -> torch.Tensor:
        array = torch.as_tensor(np.asarray(frames))
        rows = []
        for frame in array:
            ys, xs = torch.nonzero(frame.float().mean(-1) > 180, as_tuple=True)
            if ys.numel() < 10:
                raise FaceNotFoundError("no bright disc")
            rows.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        return torch.tensor(rows, dtype=torch.float32)


def talking_head(
    seconds: float, *, seed: int, face: bool = True, cut_at: float | None = None
) -> tuple[np.ndarray, np.ndarray, list[list[float]], list[list[float]]]:
    """Frames (f, 96, 96, 3), audio (samples,), head angles and face boxes per frame."""
    rng = np.random.default_rng(seed)
    count = int(seconds * FPS)
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t + seed)
    audio = (0.3 * envelope * np.sin(2 * np.pi * (180 + 40 * seed) * t)).astype(np.float32)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    frames, angles, boxes = [], [], []
    background = rng.integers(20, 60, size=3)
    for i in range(count):
        time = i / FPS
        bg = background if cut_at is None or time < cut_at else 255 - background - 60
        frame = np.empty((SIZE, SIZE, 3), np.uint8)
        frame[:] = bg
        yaw = 8.0 * math.sin(2 * math.pi * 0.7 * time + seed)
        cx = SIZE / 2 + yaw
        cy = SIZE / 2 + 3 * math.sin(2 * math.pi * 0.4 * time)
        if face:
            disc = (xx - cx) ** 2 + (yy - cy) ** 2 < 18**2
            frame[disc] = (230, 200, 190)
            opening = 1 + 6 * float(envelope[min(len(envelope) - 1, int(time * RATE))])
            mouth = (np.abs(xx - cx) < 7) & (np.abs(yy - (cy + 8)) < opening)
            frame[mouth] = (90, 20, 30)
        frames.append(frame)
        angles.append([yaw, 0.0, 0.0])
        boxes.append([cx - 18, cy - 18, cx + 18, cy + 18])
    return np.stack(frames), audio, angles, boxes


def write_video(path: Path, frames: np.ndarray, audio: np.ndarray | None) -> None:
    writer = plugins.create("video_writer", "mp4")
    writer.write(
        frames, path, fps=FPS, audio=audio, sample_rate=RATE if audio is not None else None
    )


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four good videos (one with a scene cut, two with ground-truth sidecars) and four bad ones."""
    root = tmp_path_factory.mktemp("videos")
    for k in range(4):
        frames, audio, angles, boxes = talking_head(2.0, seed=k, cut_at=1.0 if k == 3 else None)
        write_video(root / f"talk{k}.mp4", frames, audio)
        if k < 2:
            sidecar = {"head_angles": angles} if k == 0 else {"head_angles": angles, "boxes": boxes}
            (root / f"talk{k}.json").write_text(json.dumps(sidecar))
    frames, audio, _, _ = talking_head(2.0, seed=9, face=False)
    write_video(root / "bad_faceless.mp4", frames, audio)
    frames, audio, _, _ = talking_head(2.0, seed=8)
    write_video(root / "bad_silent.mp4", frames, np.zeros_like(audio))
    write_video(root / "bad_mute.mp4", frames, None)
    (root / "bad_broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return root


@contextlib.contextmanager
def registered_bright_mask() -> Iterator[str]:
    """The test detector registered as a face-mask plugin for the duration (no leak to other tests)."""
    plugins.register("face_mask", BrightFaceMask.name, BrightFaceMask)
    try:
        yield BrightFaceMask.name
    finally:
        plugins.unregister("face_mask", BrightFaceMask.name)


@pytest.fixture
def bright_mask() -> Iterator[str]:
    with registered_bright_mask() as name:
        yield name


@pytest.fixture(scope="session")
def prepared(video_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data set of ``video_dir`` at 32 px, 10 fps, clips of 0.8-1 s, latents cached."""
    from emo.pipelines.emo_pipeline import EMOPipeline
    from emo.training.prepare import PrepareSettings, prepare_dataset

    out = tmp_path_factory.mktemp("data")
    vae_dir = tmp_path_factory.mktemp("vae")
    EMOPipeline.from_preset("tiny", face_mask="full").vae.save_pretrained(vae_dir)
    with registered_bright_mask() as face_mask:
        settings = PrepareSettings(
            fps=10.0,
            resolution=32,
            min_seconds=0.8,
            max_seconds=1.0,
            face_mask=face_mask,
            vae=str(vae_dir),
        )
        prepare_dataset(video_dir, out, settings, progress=False)
    return out
