"""Bad input to face masks and schedulers gets an emo error.

Each case once escaped as a raw NotImplementedError, TypeError, RuntimeError,
ValueError or IndexError.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from emo import plugins
from emo.errors import ConfigError, InputError
from emo.face_masks.base import box_to_mask, pad_box

SAMPLE = torch.zeros(1, 4, 2, 8, 8)


# -- face masks --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["full", "box"])
def test_masks_reject_meta_frames(name: str) -> None:
    options = {"box": (0.1, 0.1, 0.9, 0.9)} if name == "box" else {}
    mask = plugins.create("face_mask", name, **options)
    with pytest.raises(InputError, match="meta"):
        mask(torch.zeros(1, 16, 16, 3, device="meta"))


def test_auto_mask_rejects_non_numeric_settings() -> None:
    pytest.importorskip("cv2")
    with pytest.raises(InputError, match="scale_factor must be a number"):
        plugins.create("face_mask", "auto", scale_factor="a")


@pytest.mark.parametrize("size", [(-1, 5), ("a", 5), (5, None)])
def test_box_helpers_reject_bad_sizes(size: tuple[Any, Any]) -> None:
    with pytest.raises(InputError, match="must be a positive int"):
        box_to_mask((0, 0, 1, 1), *size)
    with pytest.raises(InputError, match="must be a positive int"):
        pad_box((0, 0, 1, 1), 0.1, *size)


@pytest.mark.parametrize("ratio", ["a", None])
def test_pad_box_rejects_non_numeric_ratio(ratio: Any) -> None:
    with pytest.raises(InputError, match="padding ratio must be a number"):
        pad_box((0, 0, 1, 1), ratio, 5, 5)


# -- schedulers --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ddim", "dpm-solver++", "euler"])
def test_add_noise_rejects_nan_timesteps(name: str) -> None:
    scheduler = plugins.create("scheduler", name)
    with pytest.raises(InputError, match="timesteps must lie in"):
        scheduler.add_noise(SAMPLE, torch.randn_like(SAMPLE), torch.tensor([float("nan")]))
    with pytest.raises(InputError, match="meta"):
        scheduler.add_noise(SAMPLE, SAMPLE, torch.tensor([5], device="meta"))


@pytest.mark.parametrize("timestep", [float("nan"), float("inf"), torch.tensor(float("nan"))])
def test_ddim_step_rejects_non_finite_timesteps(timestep: Any) -> None:
    scheduler = plugins.create("scheduler", "ddim")
    scheduler.set_timesteps(5)
    with pytest.raises(InputError, match="must be finite"):
        scheduler.step(SAMPLE, timestep, SAMPLE)


@pytest.mark.parametrize("betas", [[0.1, "a"], [None] * 10, "abc"])
def test_trained_betas_must_be_numbers(betas: Any) -> None:
    with pytest.raises(ConfigError, match="trained_betas"):
        plugins.create("scheduler", "ddim", num_train_timesteps=10, trained_betas=betas)


def test_numpy_timestep_still_works() -> None:
    scheduler = plugins.create("scheduler", "ddim")
    scheduler.set_timesteps(5)
    t = int(scheduler.timesteps[0])
    assert scheduler.step(SAMPLE, np.int64(t).item(), SAMPLE).prev_sample.shape == SAMPLE.shape
