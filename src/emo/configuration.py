"""Configs captured from ``__init__`` signatures, and their persistence.

A class that derives from :class:`ConfigMixin` needs no config class of its own:
the arguments its ``__init__`` was called with (defaults filled in) *are* its
config. They are captured before the body of ``__init__`` runs, frozen into a
:class:`FrozenConfig`, and stamped with the class, the plugin name and the emo
version, so a saved component can be rebuilt with :meth:`ConfigMixin.from_config`.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from emo._version import __version__
from emo.errors import ConfigArgumentError, ConfigError, EMOError, EMOWarning, InputError

__all__ = [
    "CONFIG_NAME",
    "ConfigMixin",
    "FrozenConfig",
    "atomic_write_text",
    "class_path",
    "import_class",
    "init_arguments",
    "is_trusted_module",
    "load_config",
    "read_json_object",
]

CONFIG_NAME = "config.json"

_T = TypeVar("_T", bound="ConfigMixin")


def _freeze(key: str, value: Any) -> Any:
    """Return an immutable, JSON-compatible copy of ``value`` or raise :class:`ConfigError`."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"config value {key!r}={value!r} is not finite; JSON cannot hold it")
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(f"{key}[{i}]", v) for i, v in enumerate(value))
    if isinstance(value, Mapping):
        items = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"config value {key!r} has a non-string key {k!r}")
            items[k] = _freeze(f"{key}.{k}", v)
        return FrozenConfig(items)
    raise ConfigError(
        f"config value {key!r} of type {type(value).__name__} is not JSON-serialisable; "
        "pass plain numbers, strings, lists or dicts to __init__, or list the argument in "
        "the class's `config_ignore`"
    )


def _thaw(value: Any) -> Any:
    if isinstance(value, FrozenConfig):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


class FrozenConfig(Mapping[str, Any]):
    """An immutable, JSON-serialisable mapping; keys are also readable as attributes.

    Parameters
    ----------
    data
        The items. Lists become tuples and nested mappings become ``FrozenConfig``.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        frozen = {str(k): _freeze(str(k), v) for k, v in (data or {}).items()}
        object.__setattr__(self, "_data", frozen)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, key: str) -> Any:
        if key == "_data" or key.startswith("__"):
            # Not set yet (copy/pickle build the object without __init__): no recursion.
            raise AttributeError(key)
        try:
            return self._data[key]
        except KeyError:
            raise AttributeError(f"config has no key {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("FrozenConfig is immutable; use from_config(cfg, **overrides)")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        frozen = other if isinstance(other, FrozenConfig) else FrozenConfig(other)
        same: bool = self._data == frozen._data
        return same

    def __reduce__(self) -> tuple[type[FrozenConfig], tuple[dict[str, Any]]]:
        return (FrozenConfig, (self.to_dict(),))

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def __repr__(self) -> str:
        return f"FrozenConfig({self.to_dict()!r})"

    def to_dict(self) -> dict[str, Any]:
        """Return a mutable deep copy with lists instead of tuples."""
        thawed: dict[str, Any] = _thaw(self)
        return thawed

    def to_json_string(self) -> str:
        """Return the config as indented, key-sorted JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def public(self) -> dict[str, Any]:
        """Return the items that are ``__init__`` arguments (no ``_``-prefixed stamps)."""
        return {k: v for k, v in self.to_dict().items() if not k.startswith("_")}


def init_arguments(cls: type) -> frozenset[str]:
    """Names of the keyword arguments of ``cls.__init__`` (its config keys), ``self`` excluded."""
    parameters = inspect.signature(cls.__init__).parameters  # type: ignore[misc]
    return frozenset(
        name
        for name, p in parameters.items()
        if name != "self"
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    )


def class_path(cls: type) -> str:
    """Return ``"module:QualName"`` for ``cls``, the form stored in ``_class_name``."""
    return f"{cls.__module__}:{cls.__qualname__}"


def is_trusted_module(name: str) -> bool:
    """Whether a class path's module may be resolved from a saved file.

    emo's own modules, and modules this process has already imported (their code has
    run by the user's choice; reading an attribute runs nothing new). Anything else
    would be *imported*, i.e. run, because a file said so: a downloaded folder (or one
    with a ``.py`` file next to it on ``sys.path``) could run any code.
    """
    return name == "emo" or name.startswith("emo.") or name in sys.modules


def import_class(path: str, *, what: str = "a config") -> type:
    """Resolve the class named by a ``"module:QualName"`` string read from a saved file.

    Only emo's own modules are imported; another module must already be imported (see
    :func:`is_trusted_module`). Registered plugins are found through the plugin
    registry instead (:mod:`emo.pipelines.persistence`).

    Parameters
    ----------
    path
        ``"module:QualName"``.
    what
        Where the path was read, for messages.

    Raises
    ------
    ConfigError
        If the path is malformed, names a module that is neither emo's nor imported,
        or the module or attribute cannot be found, or it is not a class.
    """
    module_name, _, qualname = path.partition(":")
    if not qualname or not module_name:
        raise ConfigError(f"class path {path!r} in {what} is not of the form 'module:QualName'")
    if not is_trusted_module(module_name):
        raise ConfigError(
            f"{what} names the class {path!r}, which is neither an emo class nor a registered "
            f"plugin; emo does not import module {module_name!r} because a saved file says so "
            "(a shared folder must not run code). If you trust that package, import it "
            "yourself first (or install it so that it registers its plugin), or build the "
            "component yourself and pass it in"
        )
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"cannot import {path!r} named in {what} ({exc}); install the package that "
            "provides it or edit '_class_name'"
        ) from exc
    if not isinstance(obj, type):
        raise ConfigError(f"{path!r} named in {what} is not a class")
    return obj


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed into place."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_config(directory: str | os.PathLike[str], name: str = CONFIG_NAME) -> FrozenConfig:
    """Read ``directory/name`` (a JSON object) into a :class:`FrozenConfig`.

    Raises
    ------
    ConfigError
        If the file is missing or is not a JSON object.
    """
    if not isinstance(directory, (str, os.PathLike)):
        raise ConfigError(f"a config folder must be a path, got {type(directory).__name__}")
    path = Path(directory) / name
    if not path.is_file():
        raise ConfigError(f"no {name} in {os.fspath(directory)!r}; is this a saved emo folder?")
    return FrozenConfig(read_json_object(path))


def read_json_object(
    path: str | os.PathLike[str], *, error: type[EMOError] = ConfigError
) -> dict[str, Any]:
    """Read a JSON file that must hold an object (a config, an index).

    Parameters
    ----------
    path
        The file.
    error
        The :class:`~emo.errors.EMOError` subclass to raise (:class:`~emo.errors.CheckpointError`
        for files inside a checkpoint).

    Raises
    ------
    EMOError
        ``error``, naming the file, if it cannot be read, is not JSON or not an object.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise error(f"{os.fspath(path)!r} is not readable JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise error(f"{os.fspath(path)!r} must hold a JSON object")
    return data


def _wrap_init(init: Callable[..., None]) -> Callable[..., None]:
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self: ConfigMixin, *args: Any, **kwargs: Any) -> None:
        outermost = "_config" not in self.__dict__
        if outermost:
            try:
                bound = signature.bind(self, *args, **kwargs)
            except TypeError as exc:
                raise ConfigArgumentError(
                    f"{type(self).__name__}(): {exc}; its arguments are "
                    f"{list(signature.parameters)[1:]}"
                ) from None
            bound.apply_defaults()
            values: dict[str, Any] = {}
            for name, value in list(bound.arguments.items())[1:]:
                kind = signature.parameters[name].kind
                if kind is inspect.Parameter.VAR_POSITIONAL:
                    continue
                if kind is inspect.Parameter.VAR_KEYWORD:
                    values.update(value)
                else:
                    values[name] = value
            for name in type(self).config_ignore:
                values.pop(name, None)
            values["_class_name"] = class_path(type(self))
            plugin_name = getattr(type(self), "name", None)
            values["_plugin_name"] = plugin_name if isinstance(plugin_name, str) else None
            values["_emo_version"] = __version__
            # object.__setattr__: nn.Module.__setattr__ needs Module.__init__ to have run.
            object.__setattr__(self, "_config", FrozenConfig(values))
        init(self, *args, **kwargs)

    return __init__


class ConfigMixin:
    """Capture ``__init__`` arguments as an immutable config; save and rebuild from it.

    Subclasses just write a normal ``__init__`` with JSON-friendly arguments.
    Arguments named in ``config_ignore`` (e.g. a live object) are left out.
    """

    config_name: ClassVar[str] = CONFIG_NAME
    config_ignore: ClassVar[tuple[str, ...]] = ()
    _config: FrozenConfig

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "_emo_wraps_config", False):
            wrapped = _wrap_init(init)
            wrapped._emo_wraps_config = True  # type: ignore[attr-defined]
            cls.__init__ = wrapped  # type: ignore[method-assign]

    @property
    def config(self) -> FrozenConfig:
        """The frozen ``__init__`` arguments, plus ``_class_name``, ``_plugin_name``, ``_emo_version``."""
        try:
            config: FrozenConfig = self.__dict__["_config"]
            return config
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__} has no config: its __init__ was not wrapped "
                "(define __init__ in the class body)"
            ) from None

    @classmethod
    def from_config(cls: type[_T], config: Mapping[str, Any], **overrides: Any) -> _T:
        """Build an instance from a config mapping, with some values replaced.

        Keys the signature does not know are dropped, so a config of one scheduler
        can build another that shares some settings. Dropping keys from a config
        stamped with this very class warns, since that means the schema drifted.

        Parameters
        ----------
        config
            A :class:`FrozenConfig` (e.g. ``other.config``) or a plain mapping.
        **overrides
            Values that replace the config's; they must be ``__init__`` arguments.

        Raises
        ------
        ConfigError
            If an override is not an argument of ``cls.__init__``.
        """
        if not isinstance(config, Mapping):
            raise ConfigError(
                f"{cls.__name__}.from_config needs a mapping (a dict or another object's "
                f".config), got {type(config).__name__}"
            )
        parameters = inspect.signature(cls.__init__).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        accepted = init_arguments(cls)
        bad = sorted(k for k in overrides if k not in accepted and not takes_any)
        if bad:
            raise ConfigError(
                f"{cls.__name__}.from_config got unknown overrides {bad}; accepted: {sorted(accepted)}"
            )
        data = {k: _thaw(v) for k, v in config.items() if not k.startswith("_")}
        unknown = sorted(k for k in data if k not in accepted) if not takes_any else []
        if unknown and config.get("_class_name") == class_path(cls):
            warnings.warn(
                f"{cls.__name__}.from_config ignores keys its __init__ does not take: {unknown}",
                EMOWarning,
                stacklevel=2,
            )
        kwargs = {k: v for k, v in data.items() if k not in unknown}
        kwargs.update(overrides)
        return cls(**kwargs)

    def save_config(self, directory: str | os.PathLike[str]) -> Path:
        """Write the config as ``directory/config.json`` (atomically) and return its path."""
        if not isinstance(directory, (str, os.PathLike)):
            raise ConfigError(
                f"{type(self).__name__}.save_config needs a folder path, got "
                f"{type(directory).__name__}"
            )
        folder = Path(directory)
        path = folder / self.config_name
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, self.config.to_json_string())
        except OSError as exc:
            raise ConfigError(
                f"cannot write {os.fspath(path)!r}: {exc}; give a writable folder path "
                "(not an existing file)"
            ) from exc
        return path


def parse_key_values(items: Sequence[str], what: str) -> dict[str, Any]:
    """Parse command-line ``KEY=VALUE`` items; values are read as JSON, else kept as strings.

    Parameters
    ----------
    items
        E.g. ``["training.max_steps=10", "name=run"]``.
    what
        How the items were given (``"--set"``, ``"option"``), for the error message.

    Raises
    ------
    InputError
        If an item has no ``=`` or an empty key.
    """
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"{what} {item!r} must look like KEY=VALUE")
        try:
            parsed[key] = json.loads(value)
        except ValueError:
            parsed[key] = value
    return parsed
