"""Pipelines by name: bundled model folders, and paths that take precedence."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import emo.pretrained
from emo.errors import ConfigError
from emo.pipelines.emo_pipeline import EMOPipeline
from emo.pretrained import bundled_models, resolve_model


def test_names_resolve_to_bundled_folders_and_paths_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "bundle"
    pipe = EMOPipeline.from_preset("tiny", audio_encoder="mel", face_mask="full", seed=0)
    pipe.save_pretrained(bundle / "my-model")
    monkeypatch.setattr(emo.pretrained, "_HERE", bundle)
    assert bundled_models() == ["my-model"]
    loaded = EMOPipeline.from_pretrained("my-model")
    weights = pipe.backbone.state_dict()
    assert all(torch.equal(v, weights[k]) for k, v in loaded.backbone.state_dict().items())
    # A folder of the same name in the working directory is a path: it wins.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my-model").mkdir()
    assert resolve_model("my-model") == Path("my-model")
    with pytest.raises(ConfigError, match=r"nor the name of a bundled model \(my-model\)"):
        EMOPipeline.from_pretrained("my-model")
    with pytest.raises(ConfigError, match="no bundled model called 'other'"):
        emo.pretrained.bundled_model_path("other")
