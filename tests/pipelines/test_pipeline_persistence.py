"""Saving and loading whole pipelines; swapping components."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import emo.plugins
from emo.errors import ConfigError
from emo.face_masks.simple import FullFrameMask
from emo.pipelines.emo_pipeline import EMOPipeline


class WholeFrameMask(FullFrameMask):
    """An in-process plugin: round-trips through the registry by name."""

    name = "whole-frame-test"


def _frames(pipe: EMOPipeline, portrait: Path, speech: np.ndarray) -> torch.Tensor:
    out = pipe(portrait, speech, audio_rate=16000, generator=torch.Generator().manual_seed(3))
    return out.frames  # type: ignore[no-any-return]


def test_save_load_round_trip_gives_the_same_video(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray, tmp_path: Path
) -> None:
    folder = tiny_pipe.save_pretrained(tmp_path / "pipe")
    index = json.loads((folder / "model_index.json").read_text())
    assert index["components"]["scheduler"]["plugin"] == "ddim"
    assert index["components"]["audio_encoder"]["plugin"] == "mel"
    assert index["settings"]["frames_per_clip"] == tiny_pipe.settings.frames_per_clip
    for name in ("vae", "reference_net", "backbone", "face_locator", "audio_projection"):
        assert (folder / name / "model.safetensors").is_file()
    loaded = EMOPipeline.from_pretrained(folder)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.settings == tiny_pipe.settings
    assert torch.equal(
        _frames(loaded, portrait_path, short_speech),
        _frames(tiny_pipe, portrait_path, short_speech),
    )


def test_override_scheduler_by_name_keeps_shared_settings(
    tiny_pipe: EMOPipeline, tmp_path: Path
) -> None:
    folder = tiny_pipe.save_pretrained(tmp_path / "pipe")
    loaded = EMOPipeline.from_pretrained(folder, scheduler="euler")
    assert type(loaded.scheduler).__name__ == "EulerDiscreteScheduler"
    for key in ("num_train_timesteps", "beta_schedule", "prediction_type"):
        assert loaded.scheduler.config[key] == tiny_pipe.scheduler.config[key]


def test_plugin_component_round_trips_through_the_registry(
    tiny_pipe: EMOPipeline, tmp_path: Path
) -> None:
    emo.plugins.register("face_mask", "whole-frame-test", WholeFrameMask)
    try:
        pipe = EMOPipeline(**{**tiny_pipe.components, "face_mask": "whole-frame-test"})
        folder = pipe.save_pretrained(tmp_path / "pipe")
        index = json.loads((folder / "model_index.json").read_text())
        assert index["components"]["face_mask"]["plugin"] == "whole-frame-test"
        assert isinstance(EMOPipeline.from_pretrained(folder).face_mask, WholeFrameMask)
    finally:
        emo.plugins.unregister("face_mask", "whole-frame-test")


def test_components_build_a_sibling_pipeline_without_copies(tiny_pipe: EMOPipeline) -> None:
    sibling = EMOPipeline(**{**tiny_pipe.components, "scheduler": "dpm-solver++"})
    assert sibling.backbone is tiny_pipe.backbone
    assert type(sibling.scheduler).__name__ == "DPMSolverMultistepScheduler"


def test_diffusers_scheduler_instance_plugs_in(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray, tmp_path: Path
) -> None:
    from diffusers import DDIMScheduler as DiffusersDDIM

    ours = tiny_pipe.scheduler
    theirs = DiffusersDDIM.from_config(dict(ours.config.public()))
    pipe = EMOPipeline(**{**tiny_pipe.components, "scheduler": theirs})
    pipe.set_progress_bar_config(disable=True)
    a = _frames(pipe, portrait_path, short_speech)
    b = _frames(tiny_pipe, portrait_path, short_speech)
    assert (a - b).abs().max() <= 2 / 255  # same maths, float rounding at most
    folder = pipe.save_pretrained(tmp_path / "pipe")
    assert type(EMOPipeline.from_pretrained(folder).scheduler) is DiffusersDDIM


def test_loading_errors_are_clear(tmp_path: Path, tiny_pipe: EMOPipeline) -> None:
    with pytest.raises(ConfigError, match="model_index.json"):
        EMOPipeline.from_pretrained(tmp_path)
    folder = tiny_pipe.save_pretrained(tmp_path / "pipe")
    with pytest.raises(ConfigError, match="unknown pipeline components"):
        EMOPipeline.from_pretrained(folder, text_encoder="clip")


def test_meta_device_load_reads_no_weights(tiny_pipe: EMOPipeline, tmp_path: Path) -> None:
    from emo.errors import CheckpointError
    from emo.pipelines.emo_pipeline import MODEL_COMPONENTS

    folder = tiny_pipe.save_pretrained(tmp_path / "pipe")
    weights = sorted(folder.glob("*/model.safetensors"))
    assert len(weights) == len(MODEL_COMPONENTS)
    for path in weights:  # unreadable weights: any attempt to read them fails
        path.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError):
        EMOPipeline.from_pretrained(folder)
    pipe = EMOPipeline.from_pretrained(folder, device="meta")
    for name in MODEL_COMPONENTS:
        built, original = getattr(pipe, name), getattr(tiny_pipe, name)
        assert built.config == original.config
        shapes = {k: (tuple(v.shape), v.dtype) for k, v in built.state_dict().items()}
        assert shapes == {k: (tuple(v.shape), v.dtype) for k, v in original.state_dict().items()}
        assert all(t.is_meta for t in built.state_dict().values())  # no memory, no values


def test_repr_names_components_plugins_and_settings(tiny_pipe: EMOPipeline) -> None:
    text = repr(tiny_pipe)
    assert "backbone=Backbone (" in text and "scheduler='ddim' DDIMScheduler" in text
    assert "frames_per_clip=4" in text


class _DuckMask:
    """A duck-typed face mask: usable, but not saveable (no save_pretrained)."""

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        return torch.ones(frames.shape[0], 1, frames.shape[1], frames.shape[2])


def test_saving_over_an_existing_folder_replaces_it_whole(
    tiny_pipe: EMOPipeline, tmp_path: Path
) -> None:
    target = tmp_path / "pipe"
    tiny_pipe.save_pretrained(target)
    (target / "stale.txt").write_text("from an older save")
    tiny_pipe.save_pretrained(target)
    assert not (target / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no staging or backup left


def test_unsaveable_plugin_is_a_clear_error_and_writes_nothing(
    tiny_pipe: EMOPipeline, tmp_path: Path
) -> None:
    pipe = EMOPipeline(**{**tiny_pipe.components, "face_mask": _DuckMask()})
    with pytest.raises(ConfigError, match="face_mask.*save_pretrained"):
        pipe.save_pretrained(tmp_path / "pipe")
    assert list(tmp_path.iterdir()) == []


def test_overrides_by_instance_model_and_foreign_class(
    tiny_pipe: EMOPipeline, tmp_path: Path
) -> None:
    from diffusers import EulerDiscreteScheduler as DiffusersEuler

    from emo.schedulers.ddim import DDIMScheduler

    folder = tiny_pipe.save_pretrained(tmp_path / "pipe")
    mine = DDIMScheduler(eta=0.5)
    loaded = EMOPipeline.from_pretrained(folder, scheduler=mine, backbone=tiny_pipe.backbone)
    assert loaded.scheduler is mine and loaded.backbone is tiny_pipe.backbone
    foreign = EMOPipeline.from_pretrained(folder, scheduler=DiffusersEuler)
    assert isinstance(foreign.scheduler, DiffusersEuler)
    assert foreign.scheduler.config["beta_schedule"] == tiny_pipe.scheduler.config["beta_schedule"]


def test_unknown_plugin_name_falls_back_to_the_class_path(
    tiny_pipe: EMOPipeline, tmp_path: Path
) -> None:
    folder = tiny_pipe.save_pretrained(tmp_path / "pipe")
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    index["components"]["scheduler"]["plugin"] = "uninstalled-sampler"
    index_path.write_text(json.dumps(index))
    assert type(EMOPipeline.from_pretrained(folder).scheduler) is type(tiny_pipe.scheduler)


def test_corrupt_index_is_a_config_error(tiny_pipe: EMOPipeline, tmp_path: Path) -> None:
    folder = tiny_pipe.save_pretrained(tmp_path / "pipe")
    (folder / "model_index.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not a valid pipeline index"):
        EMOPipeline.from_pretrained(folder)
