"""Stage configs: typed settings, clear errors for unknown keys and wrong types; the examples load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emo.errors import ConfigError
from emo.training.settings import STAGE_TRAINABLE, load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "training"
BASE = {"stage": 2, "output_dir": "out", "data": {"root": "data"}}


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_the_example_configs_load_with_the_paper_defaults(stage: int) -> None:
    config = load_config(EXAMPLES / f"stage{stage}.json")
    assert config.stage == stage
    assert config.trainable == STAGE_TRAINABLE[stage]
    assert config.optimizer.learning_rate == 1e-5  # the paper's rate in every stage


def test_defaults_fill_what_the_file_leaves_out() -> None:
    config = load_config(BASE)
    assert config.trainable == ("temporal", "audio")
    assert config.training.mixed_precision == "no" and config.optimizer.betas == (0.9, 0.999)
    assert config.to_dict()["optimizer"]["betas"] == [0.9, 0.999]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"optimizer": {"learning_rat": 1e-4}},
            "unknown setting 'optimizer.learning_rat'; did you mean 'optimizer.learning_rate'",
        ),
        ({"trainig": {}}, "unknown setting 'trainig'; did you mean 'training'"),
        ({"training": {"max_steps": "10"}}, "training.max_steps must be an integer, got '10'"),
        ({"training": {"max_steps": 0}}, "training.max_steps must be > 0"),
        (
            {"training": {"mixed_precision": "fp8"}},
            "training.mixed_precision must be 'no' or 'bf16' or 'fp16'",
        ),
        ({"training": {"trainable": ["temporal", "vae"]}}, "unknown parameter group 'vae'"),
        ({"stage": 4}, "stage must be 1 or 2 or 3"),
        ({"data": {}}, "missing setting 'data.root'"),
        ({"optimizer": {"betas": [0.9]}}, "optimizer.betas must be a list of 2 values"),
        ({"dropout": {"reference": 0.6, "audio": 0.6}}, "must be <= 1"),
        ({"model": {"sd15": "sd"}}, "model.sd15 and model.wav2vec2 go together"),
        (
            {"noise": {"prediction_type": "sample"}},
            "noise.prediction_type must be 'epsilon' or 'v_prediction'",
        ),
    ],
)
def test_bad_settings_are_named(change: dict, message: str) -> None:  # type: ignore[type-arg]
    data = json.loads(json.dumps(BASE))
    for key, value in change.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and data.get(key) else value
    if change == {"data": {}}:
        data["data"] = {}
    with pytest.raises(ConfigError) as info:
        load_config(data)
    assert message in str(info.value)


def test_files_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "stage.json"
    path.write_text(json.dumps(BASE))
    config = load_config(path, {"training.max_steps": 7, "optimizer.betas": [0.8, 0.9]})
    assert config.training.max_steps == 7 and config.optimizer.betas == (0.8, 0.9)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.json")
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(path)
