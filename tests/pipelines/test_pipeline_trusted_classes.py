"""A saved folder builds only emo components and registered plugins: it cannot run code."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emo.errors import ConfigError
from emo.pipelines.emo_pipeline import EMOPipeline

_PAYLOAD = """
from pathlib import Path
Path(__file__).with_name("RAN").write_text("the folder ran code")


class Thing:
    pass
"""


@pytest.fixture
def shared(tiny_pipe: EMOPipeline, tmp_path: Path) -> Iterator[Path]:
    """A saved pipeline with a ``payload.py`` next to it, importable (as when run from that folder)."""
    folder = tiny_pipe.save_pretrained(tmp_path / "shared")
    (folder / "payload.py").write_text(_PAYLOAD)
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    sys.modules.pop("payload", None)


def _edit_index(folder: Path, component: str, entry: dict[str, Any]) -> None:
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    index["components"][component] = entry
    index_path.write_text(json.dumps(index))


def _assert_nothing_ran(folder: Path) -> None:
    assert not (folder / "RAN").exists()
    assert "payload" not in sys.modules


@pytest.mark.parametrize(
    ("component", "entry"),
    [
        ("backbone", {"kind": "model", "class": "payload:Thing"}),
        ("face_mask", {"kind": "face_mask", "plugin": None, "class": "payload:Thing"}),
        ("scheduler", {"kind": "scheduler", "plugin": "no-such", "class": "payload:Thing"}),
    ],
)
def test_an_index_naming_a_foreign_module_is_refused_without_importing_it(
    shared: Path, component: str, entry: dict[str, Any]
) -> None:
    _edit_index(shared, component, entry)
    with pytest.raises(ConfigError, match="payload:Thing") as caught:
        EMOPipeline.from_pretrained(shared)
    message = str(caught.value)
    assert "model_index.json" in message and component in message
    assert "neither an emo class nor a registered plugin" in message
    _assert_nothing_ran(shared)


def test_a_component_config_naming_a_foreign_class_is_refused(shared: Path) -> None:
    config_path = shared / "backbone" / "config.json"
    config = json.loads(config_path.read_text())
    config["_class_name"] = "payload:Thing"
    config_path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="payload:Thing"):
        EMOPipeline.from_pretrained(shared)
    _assert_nothing_ran(shared)


@pytest.mark.parametrize(
    ("component", "entry", "match"),
    [
        ("vae", {"kind": "model", "class": "collections:OrderedDict"}, "not an emo model"),
        (
            "scheduler",
            {"kind": "scheduler", "plugin": None, "class": "collections:OrderedDict"},
            "lacks set_timesteps",
        ),
        ("vae", {"kind": "model", "class": "emo.errors:ConfigError"}, "not an emo model"),
    ],
)
def test_imported_classes_must_still_be_emo_models_or_fit_the_plugin_contract(
    shared: Path, component: str, entry: dict[str, Any], match: str
) -> None:
    _edit_index(shared, component, entry)
    with pytest.raises(ConfigError, match=match):
        EMOPipeline.from_pretrained(shared)


@pytest.mark.usefixtures("third_party_plugins")
@pytest.mark.filterwarnings("ignore:face_mask plugin .* is declared by several")
def test_a_registered_plugin_is_found_by_its_class_path(shared: Path) -> None:
    _edit_index(
        shared,
        "face_mask",
        {"kind": "face_mask", "plugin": "renamed", "class": "emo_otherplugin:FullMask"},
    )
    pipe = EMOPipeline.from_pretrained(shared)  # the entry point 'center' provides that class
    assert type(pipe.face_mask).__module__ == "emo_otherplugin"
    assert type(pipe.face_mask).__name__ == "FullMask"
