"""Synthetic data goes through the real training data path: ``emo prepare`` reads its folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from emo.datasets.synthetic import write_dataset
from emo.training.data_format import read_clip_index
from emo.training.prepare import PrepareSettings, prepare_dataset


def test_prepare_reads_synthetic_clips_with_their_truth(tmp_path: Path) -> None:
    videos = write_dataset(tmp_path / "videos", 2, duration=1.2, size=64, speeds=(0.0, 2.0))
    settings = PrepareSettings(
        fps=25.0, resolution=32, min_seconds=1.0, max_seconds=1.2, crop_scale=1.2, face_mask="full"
    )
    report = prepare_dataset(tmp_path / "videos", tmp_path / "data", settings, progress=False)
    assert (report.clips, report.skipped) == (2, [])
    rows = sorted(read_clip_index(tmp_path / "data"), key=lambda row: str(row["source"]))
    assert [Path(str(row["source"])).stem for row in rows] == [v.stem for v in videos]
    speeds = []
    for row in rows:
        assert row["has_speed"]
        clip = load_file(str(tmp_path / "data" / "clips" / f"{row['id']}.safetensors"))
        assert clip["frames"].shape[-3:] in {(32, 32, 3), (3, 32, 32)}
        speeds.append(float(np.mean(clip["speed"])))
    # The sidecar's head angles, not a detector, gave the speed: still head vs 2 degrees/frame.
    assert speeds[0] < 0.1 < 1.5 < speeds[1]
