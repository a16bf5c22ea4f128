"""One synthetic talking-head clip with its ground truth, and writing clips to disk."""

from __future__ import annotations

import dataclasses
import json
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from emo.audio.envelope import loudness_envelope
from emo.datasets.synthetic.identity import Identity, Split, sample_identity
from emo.datasets.synthetic.motion import blinks, head_motion
from emo.datasets.synthetic.render import MOUTH_MAX_GAP, HeadRenderer
from emo.datasets.synthetic.speech import AudioTrack, Mode, mouth_tracks, synthesize_audio
from emo.errors import InputError

__all__ = ["FORMAT", "SyntheticClip", "make_clip", "write_clip", "write_dataset"]

FORMAT = "emo-synthetic/1"


@dataclasses.dataclass(frozen=True)
class SyntheticClip:
    """A rendered clip and its truth, frame by frame.

    Attributes
    ----------
    frames
        ``(f, h, w, 3)`` uint8 RGB.
    audio
        The :class:`~emo.datasets.synthetic.speech.AudioTrack` (waveform, units).
    fps
        Frames per second.
    identity
        The head that was drawn.
    face_box
        ``(f, 4)`` pixel boxes ``x0, y0, x1, y1`` around the head outline.
    head_pose
        ``(f, 3)`` yaw, pitch, roll in degrees.
    head_speed
        ``(f,)`` degrees per frame (what EMO's speed layers are told).
    mouth_open, mouth_width
        ``(f,)`` the viseme drawn, in ``[0, 1]``; the inner-lip gap is
        ``mouth_open * MOUTH_MAX_GAP / 2`` of the face height.
    blink
        ``(f,)`` eyelid closure, 0 open to 1 closed.
    loudness
        ``(f,)`` RMS of the audio under each frame.
    """

    frames: np.ndarray
    audio: AudioTrack
    fps: Fraction
    identity: Identity
    face_box: np.ndarray
    head_pose: np.ndarray
    head_speed: np.ndarray
    mouth_open: np.ndarray
    mouth_width: np.ndarray
    blink: np.ndarray
    loudness: np.ndarray

    @property
    def num_frames(self) -> int:
        """Number of frames ``f``."""
        return int(self.frames.shape[0])

    def truth(self) -> dict[str, Any]:
        """The ground truth as a JSON-ready dict (the ``<clip>.json`` sidecar)."""

        def rows(a: np.ndarray) -> list[Any]:
            return np.round(a.astype(np.float64), 4).tolist()  # type: ignore[no-any-return]

        return {
            "format": FORMAT,
            "fps": [self.fps.numerator, self.fps.denominator],
            "sample_rate": self.audio.sample_rate,
            "num_frames": self.num_frames,
            "size": [int(self.frames.shape[1]), int(self.frames.shape[2])],
            "mouth_max_gap": MOUTH_MAX_GAP / 2.0,
            "identity": dataclasses.asdict(self.identity),
            "audio": {
                "seed": self.audio.seed,
                "mode": self.audio.mode,
                **(self.audio.source or {}),
            },
            "units": [[u.phoneme, round(u.start, 4), round(u.end, 4)] for u in self.audio.units],
            "boxes": rows(self.face_box),
            "head_angles": rows(self.head_pose),
            "head_speed": rows(self.head_speed),
            "mouth_open": rows(self.mouth_open),
            "mouth_width": rows(self.mouth_width),
            "blink": rows(self.blink),
            "loudness": rows(self.loudness),
        }


def make_clip(
    identity: Identity | int,
    audio: AudioTrack | int,
    *,
    duration: float = 4.0,
    fps: float | Fraction = 25,
    size: int = 128,
    speed: float | np.ndarray = 1.0,
    mode: Mode = "speech",
    split: Split = "train",
    motion_seed: int | None = None,
    sample_rate: int = 16000,
) -> SyntheticClip:
    """Render one clip: a head saying (or singing) a synthetic track.

    Parameters
    ----------
    identity
        An :class:`~emo.datasets.synthetic.identity.Identity` or a seed for
        :func:`~emo.datasets.synthetic.identity.sample_identity` in ``split``.
    audio
        An :class:`~emo.datasets.synthetic.speech.AudioTrack` or a seed for
        :func:`~emo.datasets.synthetic.speech.synthesize_audio` (``duration``, ``mode``).
        A given track sets the duration.
    duration
        Seconds, when ``audio`` is a seed.
    fps
        Frames per second.
    size
        Frame height and width in pixels (>= 32).
    speed
        Head rotation speed in degrees per frame: a number or ``(f,)``.
    mode, sample_rate
        For a synthesised track.
    split
        For an identity seed.
    motion_seed
        Seed of the head path and blinks (default: the identity's seed).

    Returns
    -------
    SyntheticClip
        Frames and truth; the same arguments always give the same clip.

    Raises
    ------
    InputError
        On a bad size, fps or any bad seed.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 32:
        raise InputError(f"size must be an int >= 32 pixels, got {size!r}")
    rate = Fraction(fps).limit_denominator(1_000_000)
    if rate <= 0:
        raise InputError(f"fps must be positive, got {fps!r}")
    ident = identity if isinstance(identity, Identity) else sample_identity(identity, split)
    track = (
        audio
        if isinstance(audio, AudioTrack)
        else synthesize_audio(audio, duration, mode=mode, sample_rate=sample_rate)
    )
    num_frames = max(1, int(track.waveform.shape[0] * rate / track.sample_rate))
    opening, width = mouth_tracks(track, rate, num_frames)
    seed = ident.seed if motion_seed is None else motion_seed
    motion = head_motion(seed, num_frames, speed)
    closure = blinks(seed, num_frames, float(rate))
    renderer = HeadRenderer(ident, size)
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    boxes = np.empty((num_frames, 4))
    for i in range(num_frames):
        image = renderer.render(
            motion.pose[i], motion.offset[i], float(opening[i]), float(width[i]), float(closure[i])
        )
        frames[i] = (image * 255.0 + 0.5).astype(np.uint8)
        boxes[i] = renderer.face_box(motion.pose[i], motion.offset[i])
    return SyntheticClip(
        frames=frames,
        audio=track,
        fps=rate,
        identity=ident,
        face_box=boxes,
        head_pose=motion.pose,
        head_speed=motion.speed,
        mouth_open=opening,
        mouth_width=width,
        blink=closure,
        loudness=loudness_envelope(track.waveform, track.sample_rate, rate, num_frames),
    )


def write_clip(clip: SyntheticClip, path: str | os.PathLike[str], *, truth: bool = True) -> Path:
    """Write ``clip`` as an MP4 (H.264 + AAC, audio muxed) and its ``.json`` sidecar.

    Both files appear complete or not at all (temporary names, then renames).

    Parameters
    ----------
    clip
        What to write.
    path
        The ``.mp4`` target; the sidecar is the same path with ``.json``.
    truth
        Also write the sidecar.

    Returns
    -------
    pathlib.Path
        The video's path.
    """
    from emo.io.writers.pyav import MP4Writer

    target = Path(path)
    if target.suffix.lower() != ".mp4":
        raise InputError(f"synthetic clips are written as .mp4, got {str(path)!r}")
    size = clip.frames.shape[1:3]
    session = MP4Writer(crf=15, preset="veryfast").open(
        target,
        fps=clip.fps,
        width=int(size[1]),
        height=int(size[0]),
        audio=clip.audio.waveform,
        sample_rate=clip.audio.sample_rate,
    )
    session.write(clip.frames)
    session.close()
    if truth:
        sidecar = target.with_suffix(".json")
        partial = sidecar.with_name(sidecar.name + ".partial")
        partial.write_text(json.dumps(clip.truth()))
        os.replace(partial, sidecar)
    return target


def write_dataset(
    root: str | os.PathLike[str],
    num_clips: int,
    *,
    split: Split = "train",
    seed: int = 0,
    duration: float = 4.0,
    fps: float | Fraction = 25,
    size: int = 128,
    speeds: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0),
    singing: float = 0.25,
    truth: bool = True,
    workers: int = 1,
) -> list[Path]:
    """Write ``num_clips`` clips ``<split>_<index>.mp4`` (+ ``.json``) into ``root``.

    Clip ``i`` uses identity seed ``seed * 1_000_003 + i`` of ``split``, its own
    audio seed, a speed from ``speeds`` (cycled) and singing with probability
    ``singing``; the same arguments always write the same clips (frames and truth),
    with any number of ``workers`` (processes rendering clips side by side).

    Returns
    -------
    list of pathlib.Path
        The video paths, in index order.
    """
    if isinstance(num_clips, bool) or not isinstance(num_clips, int) or num_clips < 0:
        raise InputError(f"num_clips must be a non-negative int, got {num_clips!r}")
    if not speeds:
        raise InputError("speeds must name at least one speed (degrees per frame)")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be an int >= 1, got {workers!r}")
    folder = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 0 if split == "train" else 1, 17])
    jobs = []
    for i in range(num_clips):
        mode: Mode = "singing" if rng.uniform() < singing else "speech"
        jobs.append(
            (
                folder / f"{split}_{i:05d}.mp4",
                seed * 1_000_003 + i,
                int(rng.integers(2**31)),
                {
                    "duration": duration,
                    "fps": fps,
                    "size": size,
                    "speed": speeds[i % len(speeds)],
                    "mode": mode,
                    "split": split,
                },
                truth,
            )
        )
    if workers == 1 or len(jobs) < 2:
        return [_write_one(job) for job in jobs]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_write_one, jobs))


def _write_one(job: tuple[Path, int, int, dict[str, Any], bool]) -> Path:
    """Render and write one clip of :func:`write_dataset` (also in a worker process)."""
    path, identity_seed, audio_seed, options, truth = job
    return write_clip(make_clip(identity_seed, audio_seed, **options), path, truth=truth)
