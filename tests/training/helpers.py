"""Config and comparison helpers of the training tests."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from safetensors.torch import load_file


def stage_config(stage: int, data: Path, out: Path, **sections: Any) -> dict[str, Any]:
    """A small, fast config of ``stage`` over the prepared test data."""
    config: dict[str, Any] = {
        "stage": stage,
        "output_dir": str(out),
        "seed": 0,  # the VAE then equals the one the test data cached latents with
        "data": {
            "root": str(data),
            "frames_per_clip": 4 if stage > 1 else None,
            "motion_frames": 2,
        },
        "optimizer": {"learning_rate": 1e-3},
        "training": {"max_steps": 8, "batch_size": 2, "device": "cpu"},
        "checkpoints": {"every": 4},
        "logging": {"every": 4, "progress_bar": False, "tensorboard": False},
        "validation": {"at_end": False},
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


def trained_weights(out: Path) -> dict[str, torch.Tensor]:
    """The trained parameters in the newest checkpoint of a run."""
    newest = sorted((out / "checkpoints").glob("step-*"))[-1]
    return load_file(newest / "trained.safetensors")


def load_example(name: str) -> ModuleType:
    """The script ``examples/NAME.py`` loaded as a module (its ``main`` called in-process)."""
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
