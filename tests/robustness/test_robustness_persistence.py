"""Bad arguments to save/load, configs and the plugin registry get emo errors.

Each case once escaped as a raw TypeError, AttributeError, RuntimeError or OSError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from emo import plugins
from emo.errors import CheckpointError, ConfigArgumentError, ConfigError, EMOError, InputError
from emo.modeling import load_state_dict_file
from emo.models.face_locator import FaceLocator


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("saved")
    FaceLocator(block_out_channels=(8, 16)).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("dtype", ["float16", "foo", torch.int64])
def test_from_pretrained_rejects_bad_dtypes(saved: Path, dtype: Any) -> None:
    with pytest.raises(ConfigError, match="dtype must be a floating-point torch.dtype"):
        FaceLocator.from_pretrained(saved, dtype=dtype)


def test_from_pretrained_rejects_bad_devices(saved: Path) -> None:
    with pytest.raises(ConfigError, match="is not a torch device"):
        FaceLocator.from_pretrained(saved, device="foo")


@pytest.mark.parametrize("call", ["from_pretrained", "load_state_dict_file"])
def test_loading_from_none(call: str) -> None:
    with pytest.raises(CheckpointError, match="NoneType"):
        if call == "from_pretrained":
            FaceLocator.from_pretrained(None)  # type: ignore[arg-type]
        else:
            load_state_dict_file(None)  # type: ignore[arg-type]


def test_save_pretrained_onto_a_file_or_nothing(saved: Path) -> None:
    model = FaceLocator(block_out_channels=(8, 16))
    with pytest.raises(CheckpointError, match="cannot create the folder"):
        model.save_pretrained(saved / "config.json")
    with pytest.raises(CheckpointError, match="NoneType"):
        model.save_pretrained(None)  # type: ignore[arg-type]
    scheduler = plugins.create("scheduler", "ddim")
    with pytest.raises(ConfigError, match="cannot write"):
        scheduler.save_pretrained(saved / "config.json")


@pytest.mark.parametrize("state", [[1, 2], {"conv_in.weight": 1}])
def test_load_weights_rejects_non_state_dicts(state: Any) -> None:
    with pytest.raises(CheckpointError, match="load_weights"):
        FaceLocator(block_out_channels=(8, 16)).load_weights(state)


@pytest.mark.parametrize("config", [None, [1, 2], "config.json"])
def test_from_config_rejects_non_mappings(config: Any) -> None:
    with pytest.raises(ConfigError, match="needs a mapping"):
        FaceLocator.from_config(config)


@pytest.mark.parametrize("kind", [None, "nope", 5])
def test_plugin_kind_errors_are_emo_errors(kind: Any) -> None:
    with pytest.raises(InputError, match="plugin kind") as info:
        plugins.create(kind, "ddim")
    assert isinstance(info.value, (EMOError, ValueError))
    with pytest.raises(InputError, match="plugin kind"):
        plugins.available(kind)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_from_pretrained_to_cuda_without_a_gpu(saved: Path) -> None:
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        FaceLocator.from_pretrained(saved, device="cuda")


def test_wrong_constructor_arguments_are_config_errors_and_type_errors() -> None:
    # `emo generate --face-mask box` used to end in a TypeError traceback.
    with pytest.raises(ConfigArgumentError, match=r"BoxMask\(\): missing .*'box'") as info:
        plugins.create("face_mask", "box")
    assert isinstance(info.value, TypeError) and isinstance(info.value, EMOError)
    with pytest.raises(ConfigArgumentError, match="unexpected keyword argument 'zzz'"):
        plugins.create("scheduler", "ddim", zzz=1)


def test_cli_plugins_with_an_unknown_kind_exits_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    # The ValueError from the kind lookup used to escape main() as a traceback.
    from emo.cli import main

    assert main(["plugins", "--kind", "nope"]) == 1
    assert "unknown plugin kind 'nope'" in capsys.readouterr().err
