"""Training switches: v-prediction with zero terminal SNR, bf16/fp16 autocast, gradient checkpointing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers import stage_config

from emo.training.settings import load_config
from emo.training.trainer import train


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_v_prediction_zero_snr_autocast_and_checkpointing_run_and_are_saved(
    prepared: Path, tmp_path: Path, precision: str
) -> None:
    config = stage_config(
        1,
        prepared,
        tmp_path,
        noise={"prediction_type": "v_prediction", "zero_snr": True, "timestep_spacing": "trailing"},
        training={
            "max_steps": 2,
            "batch_size": 2,
            "device": "cpu",
            "mixed_precision": precision,
            "gradient_checkpointing": True,
        },
        logging={"every": 1, "progress_bar": False, "tensorboard": False},
    )
    result = train(load_config(config))
    assert len(result.losses) == 2 and all(math.isfinite(loss) for _, loss in result.losses)
    saved = json.loads((tmp_path / "pipeline" / "scheduler" / "config.json").read_text())
    assert saved["prediction_type"] == "v_prediction"
    assert saved["rescale_betas_zero_snr"] is True
    assert saved["timestep_spacing"] == "trailing"
