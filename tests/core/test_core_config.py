"""Configs captured from ``__init__`` signatures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import emo
from emo.configuration import ConfigMixin, FrozenConfig, class_path, load_config
from emo.errors import ConfigError, EMOWarning


class Thing(ConfigMixin):
    name = "thing"

    def __init__(self, size: int = 3, *, ratios: tuple[float, ...] = (0.5, 1.0), label: str = "x"):
        self.size = size
        self.ratios = ratios
        self.label = label


class BiggerThing(Thing):
    def __init__(self, size: int = 4, extra: bool = True, **kwargs: object) -> None:
        super().__init__(size, **kwargs)  # type: ignore[arg-type]
        self.extra = extra


def test_config_captures_arguments_with_defaults_and_stamps() -> None:
    thing = Thing(5, label="y")
    assert dict(thing.config.public()) == {"size": 5, "ratios": [0.5, 1.0], "label": "y"}
    assert thing.config["_class_name"] == class_path(Thing)
    assert thing.config["_plugin_name"] == "thing"
    assert thing.config["_emo_version"] == emo.__version__
    assert thing.config.size == 5


def test_config_is_immutable_and_hashable() -> None:
    cfg = Thing().config
    with pytest.raises(TypeError):
        cfg["size"] = 1  # type: ignore[index]
    with pytest.raises(AttributeError):
        cfg.size = 1
    assert cfg.ratios == (0.5, 1.0)
    assert hash(cfg) == hash(Thing().config)


def test_subclass_config_is_outermost_signature() -> None:
    thing = BiggerThing(label="z")
    assert thing.config.public() == {"size": 4, "extra": True, "label": "z"}
    assert thing.config["_class_name"] == class_path(BiggerThing)


def test_from_config_round_trip_and_overrides(tmp_path: Path) -> None:
    thing = Thing(7, ratios=(1.0, 2.0))
    thing.save_config(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["size"] == 7 and data["ratios"] == [1.0, 2.0]
    rebuilt = Thing.from_config(load_config(tmp_path), label="new")
    assert rebuilt.size == 7 and rebuilt.label == "new"
    assert rebuilt.config.public() == {**thing.config.public(), "label": "new"}
    assert rebuilt.config == Thing(7, ratios=[1.0, 2.0], label="new").config


def test_from_config_rejects_unknown_override() -> None:
    with pytest.raises(ConfigError, match="unknown overrides"):
        Thing.from_config(Thing().config, colour="red")


def test_from_config_drops_foreign_keys_and_warns_on_own_schema_drift() -> None:
    foreign = {"size": 2, "beta": 0.1, "_class_name": "other:Class"}
    assert Thing.from_config(foreign).size == 2
    drifted = {"size": 2, "removed_option": 1, "_class_name": class_path(Thing)}
    with pytest.warns(EMOWarning, match="removed_option"):
        Thing.from_config(drifted)


def test_non_serialisable_argument_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="label"):
        Thing(label=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="finite"):
        Thing(ratios=(float("nan"),))


def test_frozen_config_equality_and_json() -> None:
    cfg = FrozenConfig({"a": [1, {"b": 2}]})
    assert cfg == {"a": [1, {"b": 2}]}
    assert json.loads(cfg.to_json_string()) == {"a": [1, {"b": 2}]}
    assert cfg.to_dict()["a"][1] == {"b": 2}


def test_load_config_errors_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=str(tmp_path.name)):
        load_config(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        load_config(tmp_path)


def test_config_objects_copy_and_pickle() -> None:
    import copy
    import pickle

    thing = Thing(9, label="p")
    for clone in (copy.deepcopy(thing), pickle.loads(pickle.dumps(thing))):
        assert clone.config == thing.config and clone.size == 9
    assert pickle.loads(pickle.dumps(thing.config)) == thing.config
