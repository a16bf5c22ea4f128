"""The plugin registry, with real third-party distributions discovered through importlib.metadata."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import emo.plugins as plugins
from emo.cli import main as cli_main
from emo.errors import (
    EMOWarning,
    PluginContractError,
    PluginError,
    PluginLoadError,
    PluginNotFoundError,
)
from emo.plugins.base import PluginBase


class HalfMask(PluginBase):
    """A real in-process face mask: the top half of the frame."""

    name = "half"

    def __init__(self, invert: bool = False) -> None:
        self.invert = invert

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        count, height, width = frames.shape[:3]
        mask = torch.zeros(count, 1, height, width)
        mask[:, :, : height // 2] = 1.0
        return 1.0 - mask if self.invert else mask


@pytest.fixture
def clean_registrations() -> Iterator[None]:
    yield
    for kind in plugins.KINDS:
        for info in plugins.list_plugins(kind):
            if info.source == "registered":
                plugins.unregister(kind, info.name)


def test_builtins_are_listed_from_metadata_without_import() -> None:
    names = {(p.kind, p.name) for p in plugins.list_plugins()}
    assert {("scheduler", "ddim"), ("audio_encoder", "wav2vec2"), ("face_mask", "auto")} <= names
    assert {("video_writer", "mp4"), ("video_writer", "memory")} <= names
    assert all(p.source == "builtin" for p in plugins.list_plugins())


def test_kind_aliases() -> None:
    assert plugins.available("schedulers") == plugins.available("emo.schedulers")
    with pytest.raises(ValueError, match="unknown plugin kind"):
        plugins.available("tokenizer")


def test_register_as_decorator_and_create_by_name_class_instance(clean_registrations: None) -> None:
    @plugins.register("face_mask", "half")
    class Registered(HalfMask):
        pass

    frames = np.zeros((2, 4, 6, 3), dtype=np.uint8)
    by_name = plugins.create("face_mask", "half", invert=True)
    assert isinstance(by_name, Registered) and by_name.invert
    assert by_name(frames)[0, 0, 0, 0] == 0.0
    by_class = plugins.create("face_mask", HalfMask)
    assert by_class(frames).shape == (2, 1, 4, 6)
    instance = HalfMask()
    assert plugins.create("face_mask", instance) is instance
    with pytest.raises(PluginError, match="already built"):
        plugins.create("face_mask", instance, invert=True)
    assert plugins.plugin_name_of("face_mask", by_name) == "half"


def test_register_refuses_taken_names_without_override(clean_registrations: None) -> None:
    with pytest.raises(PluginError, match="override=True"):
        plugins.register("face_mask", "full", HalfMask)
    plugins.register("face_mask", "full", HalfMask, override=True)
    assert plugins.load("face_mask", "full") is HalfMask
    plugins.unregister("face_mask", "full")
    assert plugins.list_plugins("face_mask")[0].source == "builtin"


def test_contract_is_checked_on_register_and_create(clean_registrations: None) -> None:
    class NotAMask:
        pass

    with pytest.raises(PluginContractError, match="__call__"):
        plugins.register("face_mask", "nope", NotAMask)
    with pytest.raises(PluginContractError, match="encode"):
        plugins.create("audio_encoder", HalfMask())


def test_unknown_name_lists_available() -> None:
    with pytest.raises(PluginNotFoundError, match=r"available: .*ddim"):
        plugins.load("scheduler", "no-such-sampler")


def test_third_party_distribution_is_discovered_and_loaded(third_party_plugins: Path) -> None:
    infos = {p.name: p for p in plugins.list_plugins("face_mask")}
    assert infos["broken-import"].distribution == "emo-brokenplugin"
    assert infos["center"].distribution == "emo-otherplugin"  # sorted: deterministic winner
    with pytest.warns(EMOWarning):
        mask = plugins.create("face_mask", "center")
    assert type(mask).__module__ == "emo_otherplugin"
    assert mask(np.zeros((1, 4, 4, 3), dtype=np.uint8)).sum() == 16
    winner = plugins.create("face_mask", plugins.load("face_mask", "center"))
    assert type(winner) is type(mask)


def test_duplicate_names_warn_naming_every_distribution(third_party_plugins: Path) -> None:
    with pytest.warns(EMOWarning) as record:
        plugins.load("face_mask", "center")
    message = str(record[0].message)
    assert "emo-otherplugin" in message and "emo-testplugin" in message


def test_builtin_cannot_be_shadowed_by_an_entry_point(third_party_plugins: Path) -> None:
    (full,) = [p for p in plugins.list_plugins("face_mask") if p.name == "full"]
    assert full.source == "builtin" and full.distribution == "emo"
    statuses = {s.info.name: s for s in plugins.check("face_mask")}
    assert [o.distribution for o in statuses["full"].shadowed] == ["emo-otherplugin"]


def test_broken_plugins_fail_clearly_and_alone(third_party_plugins: Path) -> None:
    with pytest.raises(PluginLoadError) as info:
        plugins.load("face_mask", "broken-import")
    text = str(info.value)
    assert "emo-brokenplugin" in text and "emo_brokenplugin:Mask" in text
    assert "nonexistent-dependency" in text
    with pytest.raises(PluginContractError, match="wrong-type"):
        plugins.load("face_mask", "wrong-type")
    statuses = {s.info.name: s for s in plugins.check("face_mask")}
    assert not statuses["broken-import"].loads and not statuses["wrong-type"].loads
    assert statuses["center"].loads


def test_disable_env_switches_off_third_party(
    third_party_plugins: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMO_DISABLE_PLUGINS", "emo-brokenplugin")
    plugins.refresh()
    names = plugins.available("face_mask")
    assert "broken-import" not in names and "center" in names
    monkeypatch.setenv("EMO_DISABLE_PLUGINS", "1")
    plugins.refresh()
    assert all(p.source == "builtin" for p in plugins.list_plugins())
    assert "full" in plugins.available("face_mask")


def test_cli_lists_every_kind_and_broken_plugins(
    third_party_plugins: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["plugins"]) == 0
    out = capsys.readouterr().out
    for group in ("emo.audio_encoders", "emo.schedulers", "emo.face_masks", "emo.video_writers"):
        assert group in out
    assert "emo-testplugin 0.3.0" in out or "emo-otherplugin 1.0.0" in out
    broken_line = next(line for line in out.splitlines() if "broken-import" in line)
    assert "BROKEN" in broken_line and "emo-brokenplugin" in broken_line
    assert cli_main(["plugins", "--strict"]) == 1


def test_cli_plugins_in_a_fresh_process(third_party_plugins: Path) -> None:
    env = {"PYTHONPATH": str(third_party_plugins), "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-m", "emo.cli", "plugins", "--kind", "face_mask"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, **env},
    )
    assert result.returncode == 0, result.stderr
    assert "center" in result.stdout and "BROKEN" in result.stdout
