"""Typed settings from JSON: dataclasses filled from dicts, with clear errors.

Every key of a settings section is a field of a frozen dataclass. A key the
dataclass does not have, or a value of the wrong type, raises
:class:`~emo.errors.ConfigError` naming the full key (``optimizer.learning_rate``),
the type it needs and, for a typo, the closest known key.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, Union

from emo._deprecation import renamed_keys
from emo.errors import ConfigError

__all__ = ["from_dict", "to_dict"]

_T = TypeVar("_T")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return " or ".join(repr(v) for v in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin is not None:
        return {tuple: "a list", list: "a list", dict: "an object"}.get(origin, str(tp))
    if dataclasses.is_dataclass(tp):
        return "an object"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _convert(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked (and converted: lists -> tuples, dicts -> dataclasses) against ``tp``."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is typing.Literal:
        if value in typing.get_args(tp) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be {_type_name(tp)}, got {value!r}")
    if origin in (Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _convert(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key} must be {_type_name(tp)}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin in (tuple, list):
        args = typing.get_args(tp)
        if isinstance(value, (list, tuple)):
            if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
                return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
            if origin is tuple:
                if len(value) != len(args):
                    raise ConfigError(f"{key} must be a list of {len(args)} values, got {value!r}")
                return tuple(
                    _convert(v, a, f"{key}[{i}]")
                    for i, (v, a) in enumerate(zip(value, args, strict=True))
                )
            return [_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
            return dict(value)
    elif dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if isinstance(value, Mapping):
            return from_dict(tp, value, prefix=f"{key}.")
    raise ConfigError(f"{key} must be {_type_name(tp)}, got {value!r}")


def from_dict(cls: type[_T], data: Mapping[str, Any], *, prefix: str = "") -> _T:
    """Build the dataclass ``cls`` from ``data``, checking every key and type.

    Parameters
    ----------
    cls
        A dataclass whose fields are annotated with JSON-like types (``int``,
        ``float``, ``bool``, ``str``, ``None`` unions, ``Literal``, tuples, lists,
        ``dict[str, Any]``, nested dataclasses).
    data
        The parsed JSON object.
    prefix
        Key path of ``data`` in the whole config, for messages.

    Raises
    ------
    ConfigError
        For an unknown key, a missing required key, or a value of the wrong type.

    Notes
    -----
    A dataclass with a ``renamed_keys`` class attribute (old key -> new key) also
    accepts its old keys, with a :class:`DeprecationWarning`.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a JSON object, got {data!r}")
    renames = getattr(cls, "renamed_keys", None)
    if renames:  # a section whose keys were renamed still reads old configs, with a warning
        data = renamed_keys(data, renames, prefix.rstrip(".") or "config")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), list(fields), n=1)
        hint = f"; did you mean {prefix + close[0]!r}?" if close else ""
        raise ConfigError(
            f"unknown setting {prefix + str(key)!r}{hint} (known in this section: {sorted(fields)})"
        )
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name in data:
            values[name] = _convert(data[name], hints[name], f"{prefix}{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing setting {prefix + name!r} ({_type_name(hints[name])})")
    try:
        return cls(**values)
    except ConfigError as exc:
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: {exc}") from None


def to_dict(obj: Any) -> Any:
    """The JSON-ready form of a settings dataclass (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
