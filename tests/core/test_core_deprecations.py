"""Renamed public names keep working for a while, with a DeprecationWarning naming the new one."""

from __future__ import annotations

import numpy as np
import pytest

from emo.errors import ConfigError
from emo.evaluation.benchmark import BenchmarkReport
from emo.evaluation.signals import seam_jump
from emo.models.presets import get_preset
from emo.training.dataset import SampleSpec
from emo.training.schema import from_dict
from emo.training.settings import DataSettings


def test_preset_clip_geometry_keeps_its_old_names() -> None:
    preset = get_preset("sd15")
    assert (preset.frames_per_clip, preset.motion_frames) == (12, 4)
    with pytest.warns(DeprecationWarning, match="'frames_per_clip'"):
        assert preset.num_frames == 12
    with pytest.warns(DeprecationWarning, match="'motion_frames'"):
        assert preset.num_motion_frames == 4


def test_training_configs_with_the_old_clip_length_key_still_load() -> None:
    with pytest.warns(DeprecationWarning, match=r"data: 'num_frames' is deprecated"):
        data = from_dict(DataSettings, {"root": "x", "num_frames": 3}, prefix="data.")
    assert data.frames_per_clip == 3
    with pytest.warns(DeprecationWarning):
        assert data.num_frames == 3
    with pytest.raises(TypeError, match="pass only 'frames_per_clip'"):
        from_dict(DataSettings, {"root": "x", "num_frames": 3, "frames_per_clip": 3})
    with pytest.raises(ConfigError, match="frames_per_clip"):
        from_dict(DataSettings, {"root": "x", "frames_per_clip": 0}, prefix="data.")
    spec = SampleSpec(frames_per_clip=5)
    with pytest.warns(DeprecationWarning, match="SampleSpec"):
        assert spec.num_frames == 5


def test_evaluation_takes_the_old_clip_length_argument() -> None:
    frames = (np.arange(24)[:, None, None, None] * 2 + np.zeros((1, 8, 8, 3))).astype(np.uint8)
    frames[12:] += 40  # a jump at the seam
    with pytest.warns(DeprecationWarning, match=r"seam_jump\(\): 'clip_length'"):
        old = seam_jump(frames, clip_length=12)
    assert old == seam_jump(frames, frames_per_clip=12)
    assert old.ratio > 5
    report = BenchmarkReport({}, {}, 12)
    with pytest.warns(DeprecationWarning, match="BenchmarkReport"):
        assert report.clip_length == 12
    assert report.to_json()["frames_per_clip"] == 12
