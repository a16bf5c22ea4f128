"""emo prepare and emo train from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import stage_config

from emo.cli import main


def test_emo_prepare_then_emo_train(
    video_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    code = main(
        [
            "prepare", str(video_dir), "-o", str(data), "--fps", "10", "--size", "32",
            "--min-seconds", "0.8", "--max-seconds", "1", "--face-mask", "full", "--quiet",
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "emo: 10 clips" in out and "3 skipped" in out  # full frame: the faceless video is kept
    config = stage_config(1, data, tmp_path / "run")
    path = tmp_path / "stage1.json"
    path.write_text(json.dumps(config))
    assert (
        main(["train", str(path), "--set", "training.max_steps=2", "--set", "logging.every=1"]) == 0
    )
    assert "trained 2 steps; pipeline saved to" in capsys.readouterr().out
    assert (tmp_path / "run" / "pipeline" / "model_index.json").is_file()


def test_emo_train_names_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "stage.json"
    path.write_text(json.dumps({"stage": 1, "output_dir": "x", "data": {"root": "d"}, "lr": 1}))
    assert main(["train", str(path)]) == 1
    assert "unknown setting 'lr'" in capsys.readouterr().err
    assert main(["train", str(path), "--set", "lr"]) == 1
    assert "--set 'lr' must look like KEY=VALUE" in capsys.readouterr().err
