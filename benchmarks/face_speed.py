"""How long face analysis takes per frame on one CPU core, and how accurate the head pose is.

Speed (median of ``--repeat`` runs, 512x512 frames, one thread; CPU time and wall clock):

- a frame with an upright face (the common case: one fast detection pass);
- a frame with a face turned upside down (the rotation search runs);
- a frame without a face (every search pass runs, the worst case);
- a 32-frame clip, per frame;
- the identity descriptor of one face (only ``measure_video`` with a reference uses it).

Accuracy, where the truth is known:

- roll of scikit-image's astronaut turned by known angles (a real photograph);
- head speed of the astronaut turning 1.5 degrees per frame;
- yaw, pitch and roll of the synthetic heads of :mod:`emo.datasets.synthetic`, rendered at
  known poses (drawn faces: the model was trained on photographs).

::

    python benchmarks/face_speed.py
    python benchmarks/face_speed.py --repeat 20 --no-accuracy
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np


def median_ms(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall-clock and CPU (this thread) milliseconds of ``fn``.

    The CPU time is what one core spends; on a busy machine the wall clock also counts
    the time other processes had the core.
    """
    fn()  # warm-up: models load on first use
    wall, cpu = [], []
    for _ in range(repeat):
        began, began_cpu = time.perf_counter(), time.thread_time()
        fn()
        wall.append(time.perf_counter() - began)
        cpu.append(time.thread_time() - began_cpu)
    return 1000.0 * statistics.median(wall), 1000.0 * statistics.median(cpu)


def turn(image: np.ndarray, degrees: float) -> np.ndarray:
    import cv2

    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return np.asarray(cv2.warpAffine(image, matrix, (width, height)))


def speed(repeat: int) -> None:
    import skimage.data

    from emo.face import FaceAnalyzer, FaceEmbedder

    analyzer = FaceAnalyzer("dlib")
    photo = np.asarray(skimage.data.astronaut())
    upside_down = np.ascontiguousarray(photo[::-1])
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    clip = np.stack([turn(photo, a) for a in np.linspace(-10, 10, 32)])
    embedder = FaceEmbedder(analyzer)
    rows = [
        ("upright face, 512x512", median_ms(lambda: analyzer.analyze(photo), repeat)),
        (
            "upside-down face (rotation search)",
            median_ms(lambda: analyzer.analyze(upside_down), repeat),
        ),
        (
            "no face (every search pass)",
            median_ms(lambda: analyzer.analyze(noise), max(1, repeat // 4)),
        ),
        (
            "32-frame clip, per frame",
            tuple(v / len(clip) for v in median_ms(lambda: analyzer.analyze(clip), 1)),
        ),
        (
            "identity descriptor, one face",
            median_ms(lambda: embedder.embed_one(photo), max(1, repeat // 4)),
        ),
    ]
    print("face analysis on one CPU core (median; CPU = this thread's CPU time)")
    for label, (wall, cpu) in rows:
        print(f"  {label:<40} {cpu:8.1f} ms CPU {wall:8.1f} ms wall")


def accuracy() -> None:
    import skimage.data

    from emo.datasets.synthetic import HeadRenderer, sample_identity
    from emo.face import FaceAnalyzer, head_speed

    analyzer = FaceAnalyzer("dlib")
    photo = np.asarray(skimage.data.astronaut())
    first = analyzer.analyze(photo)
    upright = first.roll[0]
    yaw, pitch, roll = first.poses[0]
    print(
        f"\nastronaut photograph (facing the camera): yaw {yaw:.1f}, pitch {pitch:.1f}, roll {roll:.1f} deg"
    )
    angles = np.arange(-30, 31, 5.0)
    rolls = analyzer.analyze(np.stack([turn(photo, a) for a in angles])).roll - upright
    errors = np.abs(rolls - angles)
    print("roll of the astronaut turned by -30..30 degrees (5-degree steps)")
    print(f"  mean |error| {errors.mean():.2f} deg, max {errors.max():.2f} deg")

    track = analyzer.analyze(np.stack([turn(photo, -18 + 1.5 * i) for i in range(24)]), fps=30.0)
    error = np.abs(head_speed(track) - 1.5)
    print("head speed of the astronaut turning 1.5 deg/frame (24 frames, 30 fps)")
    print(f"  mean |error| {error.mean():.3f} deg/frame, max {error.max():.3f} deg/frame")

    poses = [
        (y, p, r)
        for y in (-20.0, -10.0, 0.0, 10.0, 20.0)
        for p, r in ((0.0, 0.0), (10.0, 0.0), (-10.0, 5.0))
    ]
    truth, estimates, found = [], [], 0
    for seed in range(8):
        renderer = HeadRenderer(sample_identity(seed), 256)
        frames = [renderer.render(np.array(pose), np.zeros(2), 0.3, 0.5, 0.0) for pose in poses]
        batch = (np.clip(np.stack(frames), 0, 1) * 255).astype(np.uint8)
        track = analyzer.analyze(batch)
        found += int(track.found.sum())
        ok = track.found
        truth.append(np.asarray(poses)[ok])
        estimates.append(track.poses[ok])
    t, e = np.concatenate(truth), np.concatenate(estimates)
    print(
        f"synthetic heads (8 identities x {len(poses)} poses, 256 px): found {found}/{8 * len(poses)}"
    )
    for k, name in enumerate(("yaw", "pitch", "roll")):
        slope = np.polyfit(t[:, k], e[:, k], 1)[0] if np.ptp(t[:, k]) > 0 else float("nan")
        corr = np.corrcoef(t[:, k], e[:, k])[0, 1] if np.ptp(t[:, k]) > 0 else float("nan")
        bias = float(np.mean(e[:, k] - t[:, k]))
        print(f"  {name:<5} slope {slope:5.2f}  correlation {corr:5.2f}  mean bias {bias:6.1f} deg")

    from emo.datasets.synthetic import make_clip

    print("head speed of synthetic talking heads (3 identities, 2 s at 25 fps, 256 px)")
    for truth_speed in (0.0, 1.0, 2.0):
        estimates = []
        for seed in range(3):
            clip = make_clip(seed, seed, duration=2.0, fps=25, size=256, speed=truth_speed)
            track = analyzer.analyze(clip.frames, fps=25.0)
            estimates.append(float(np.nanmean(head_speed(track, reference_fps=25.0))))
        shown = ", ".join(f"{v:.2f}" for v in estimates)
        print(f"  true {truth_speed:.1f} deg/frame -> estimated {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--no-accuracy", action="store_true")
    args = parser.parse_args()
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    speed(args.repeat)
    if not args.no_accuracy:
        accuracy()


if __name__ == "__main__":
    main()
