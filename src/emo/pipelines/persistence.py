"""Saving and loading a whole pipeline: ``model_index.json`` plus one folder per component.

Layout of a saved pipeline::

    model_index.json        # class, emo version, settings, and per component: kind, plugin, class
    vae/                    # config.json + model.safetensors
    reference_net/
    backbone/
    face_locator/
    audio_projection/
    audio_encoder/          # the plugin's own save_pretrained output
    scheduler/
    face_mask/

Plugin components are stored with their registry name, so a third-party plugin
round-trips through the registry; the class path is a fallback.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from emo import plugins
from emo._version import __version__
from emo.configuration import atomic_write_text, class_path, import_class
from emo.errors import ConfigError, PluginError
from emo.io.claim import OutputClaim, make_temporary
from emo.modeling import ModelMixin
from emo.pipelines.components import MODEL_COMPONENTS, PLUGIN_COMPONENTS
from emo.pipelines.settings import PipelineSettings
from emo.plugins.base import PluginBase

if TYPE_CHECKING:
    from emo.pipelines.emo_pipeline import EMOPipeline

#: A pipeline class with ``model_components``/``plugin_components``/``settings_class``.
_Pipe = TypeVar("_Pipe")

__all__ = ["INDEX_NAME", "load_pipeline", "save_pipeline"]

INDEX_NAME = "model_index.json"


def _saved_config(folder: Path) -> dict[str, Any] | None:
    for name in ("config.json", "scheduler_config.json"):
        path = folder / name
        if path.is_file():
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return data
    return None


def save_pipeline(pipe: EMOPipeline | Any, directory: str | os.PathLike[str]) -> Path:
    """Write ``pipe`` into ``directory``.

    The components are written into a temporary sibling folder first; the target is
    replaced only when everything was written, so an interrupted save never leaves a
    half-written pipeline where a complete one was. The folder is claimed like a video
    output (:class:`emo.io.claim.OutputClaim`): what a killed save left is removed.

    Raises
    ------
    ConfigError
        If a plugin component cannot be saved (it has no ``save_pretrained``).
    OutputInUseError
        If another save to ``directory`` runs right now.
    """
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    with OutputClaim(target, error=ConfigError):
        _save_claimed(pipe, target, make_temporary(target, "folder", error=ConfigError))
    return target


def _save_claimed(pipe: Any, target: Path, staging: Path) -> None:
    """Fill ``staging`` and swap it onto ``target`` (whose claim the caller holds)."""
    try:
        components: dict[str, dict[str, Any]] = {}
        model_names, plugin_names = _component_names(type(pipe))
        for name in model_names:
            model = getattr(pipe, name)
            model.save_pretrained(staging / name)
            components[name] = {"kind": "model", "class": class_path(type(model))}
        for name, kind in plugin_names.items():
            obj = getattr(pipe, name)
            if obj is None:  # an optional component the pipeline does not have
                continue
            saver = getattr(obj, "save_pretrained", None)
            if not callable(saver):
                raise ConfigError(
                    f"cannot save the {name} {type(obj).__name__}: it has no save_pretrained(); "
                    f"subclass {plugins.KINDS[kind].base.replace(':', '.')} to make it saveable"
                )
            saver(staging / name)
            components[name] = {
                "kind": kind,
                "plugin": plugins.plugin_name_of(kind, obj),
                "class": class_path(type(obj)),
            }
        index = {
            "_class_name": class_path(type(pipe)),
            "_emo_version": __version__,
            "settings": pipe.settings.to_dict(),
            "components": components,
        }
        atomic_write_text(staging / INDEX_NAME, json.dumps(index, indent=2, sort_keys=True) + "\n")
        if target.exists():
            backup = make_temporary(target, "old", error=ConfigError)
            target.rename(backup)
            staging.rename(target)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _component_names(cls: type) -> tuple[tuple[str, ...], Mapping[str, str]]:
    """The network and plugin components of a pipeline class (EMOPipeline's by default)."""
    models: tuple[str, ...] = getattr(cls, "model_components", MODEL_COMPONENTS)
    plugin_kinds: Mapping[str, str] = getattr(cls, "plugin_components", PLUGIN_COMPONENTS)
    return models, plugin_kinds


def _plugin_class(kind: str, entry: dict[str, Any], what: str) -> Any:
    """The class of a saved plugin: by registry name, else a registered or imported class."""
    name = entry.get("plugin")
    if isinstance(name, str) and name:
        try:
            return plugins.load(kind, name)
        except PluginError:
            if not entry.get("class"):
                raise
    path = str(entry.get("class") or "")
    for info in plugins.list_plugins(kind):  # registered under another name: still a plugin
        if info.value == path:
            return plugins.load(kind, info.name)
    cls = import_class(path, what=what)
    spec = plugins.KINDS[kind]
    missing = [m for m in spec.methods if not _defines(cls, m)]
    if missing:
        raise ConfigError(
            f"{what} names {path!r} as its {kind}, but that class lacks {', '.join(missing)} "
            f"of the {kind} contract ({spec.protocol}); it is not built"
        )
    return cls


def _defines(cls: type, method: str) -> bool:
    return any(klass is not object and method in vars(klass) for klass in cls.__mro__)


def _model_class(entry: dict[str, Any], what: str) -> type[ModelMixin]:
    """The class of a saved network: an emo model (or an imported ModelMixin subclass)."""
    path = str(entry.get("class") or "")
    cls = import_class(path, what=what)
    if not issubclass(cls, ModelMixin):
        raise ConfigError(
            f"{what} names {path!r}, which is not an emo model (a ModelMixin subclass); "
            "it is not built"
        )
    return cls


def _load_plugin(
    kind: str, folder: Path, entry: dict[str, Any], override: Any, what: str = "a pipeline index"
) -> Any:
    if override is not None and not isinstance(override, (str, type)):
        return plugins.create(kind, override)
    cls = plugins.load(kind, override) if isinstance(override, str) else override
    if cls is None:
        cls = _plugin_class(kind, entry, what)
        loader = getattr(cls, "from_pretrained", None)
        if callable(loader):
            return plugins.create(kind, loader(folder))
        return plugins.create(kind, cls)
    # A different class: build it from the saved config, keeping the settings it shares.
    if isinstance(cls, type) and issubclass(cls, PluginBase):
        # Our plugins resolve folder-relative entries (e.g. a saved model path) themselves.
        return plugins.create(kind, cls.from_pretrained(folder))
    saved = _saved_config(folder)
    builder = getattr(cls, "from_config", None)
    if saved is not None and callable(builder):
        return plugins.create(kind, builder(saved))
    return plugins.create(kind, cls)


def load_pipeline(
    cls: type[_Pipe],
    directory: str | os.PathLike[str],
    *,
    device: str | torch.device | None,
    dtype: torch.dtype | None,
    overrides: dict[str, Any],
) -> _Pipe:
    """Read a pipeline folder written by :func:`save_pipeline` (see ``EMOPipeline.from_pretrained``)."""
    from emo.pretrained import resolve_model

    folder = resolve_model(directory)
    index_path = folder / INDEX_NAME
    if not index_path.is_file():
        from emo.pretrained import bundled_models

        raise ConfigError(
            f"{os.fspath(folder)!r} is not a saved EMOPipeline (no {INDEX_NAME}) nor the name of "
            f"a bundled model ({', '.join(bundled_models()) or 'none installed'})"
        )
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        entries: dict[str, dict[str, Any]] = index["components"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{os.fspath(index_path)!r} is not a valid pipeline index: {exc}"
        ) from exc
    saved_class = str(index.get("_class_name") or "")
    ours = {"emo.pipelines.emo_pipeline:EMOPipeline", "emo.pipelines.hallo_pipeline:HalloPipeline"}
    if saved_class in ours and class_path(cls) in ours and saved_class != class_path(cls):
        raise ConfigError(
            f"{os.fspath(folder)!r} holds a {saved_class.rpartition(':')[2]}, not a "
            f"{cls.__name__}; load it with {saved_class.rpartition(':')[2]}.from_pretrained or "
            "emo.load_pipeline (which picks the class)"
        )
    model_names, plugin_names = _component_names(cls)
    optional: tuple[str, ...] = getattr(cls, "optional_components", ())
    known = set(model_names) | set(plugin_names) | {"settings"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown pipeline components {unknown}; components are {sorted(known)}")
    kwargs: dict[str, Any] = {}
    for name in model_names:
        if overrides.get(name) is not None:
            kwargs[name] = overrides[name]
            continue
        if name not in entries:
            raise ConfigError(f"{os.fspath(index_path)!r} lists no {name!r} component")
        what = f"{os.fspath(index_path)!r} ({name})"
        model_cls = _model_class(entries[name], what)
        kwargs[name] = model_cls.from_pretrained(folder / name, device=device, dtype=dtype)
    for name, kind in plugin_names.items():
        if name not in entries and overrides.get(name) is None:
            if name in optional:
                continue
            raise ConfigError(f"{os.fspath(index_path)!r} lists no {name!r} component")
        kwargs[name] = _load_plugin(
            kind,
            folder / name,
            entries.get(name, {}),
            overrides.get(name),
            f"{os.fspath(index_path)!r} ({name})",
        )
    settings = overrides.get("settings")
    if settings is None:
        settings_class = getattr(cls, "settings_class", PipelineSettings)
        settings = settings_class.from_dict(index.get("settings", {}))
    pipe: _Pipe = cls(**kwargs, settings=settings)  # type: ignore[call-arg]
    if device is not None and torch.device(device).type != "meta":
        mover = getattr(getattr(pipe, "audio_encoder", None), "to", None)
        if callable(mover):
            mover(device=device)
    return pipe
