"""Deprecation aliases: old names keep working for a while, with a warning naming the new one.

Used where the structure clean-up (one home per importer, one name per concept)
changed a public name: a moved module, a renamed keyword argument, a renamed
attribute or config key. Every alias raises :class:`DeprecationWarning` and is
listed in the docs; it will be removed in a future release.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["moved_module", "renamed_arguments", "renamed_keys", "warn_renamed"]

_F = TypeVar("_F", bound=Callable[..., Any])


def warn_renamed(old: str, new: str, *, where: str = "", stacklevel: int = 3) -> None:
    """Raise the :class:`DeprecationWarning` of a renamed name (``old`` -> ``new``)."""
    prefix = f"{where}: " if where else ""
    warnings.warn(
        f"{prefix}{old!r} is deprecated, use {new!r} (the old name will be removed in a "
        "future release)",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def moved_module(old: str, new: str) -> Callable[[str], Any]:
    """Build the ``__getattr__`` of a module that moved: names resolve in ``new``, with a warning.

    The old module stays importable, so code written against the old path keeps
    working for a deprecation period; every name read through it raises a
    :class:`DeprecationWarning` that names the new home.

    Parameters
    ----------
    old
        The old module's ``__name__``.
    new
        The module the names now live in.

    Returns
    -------
    Callable[[str], Any]
        The function to bind as ``__getattr__`` in the old module.
    """

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):  # dunder probes (copy, pickle, inspect) are not API
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        try:
            value = getattr(importlib.import_module(new), name)
        except AttributeError:
            raise AttributeError(f"module {old!r} has no attribute {name!r}") from None
        warnings.warn(
            f"{old} moved to {new}; import {name} from {new} (the old module will be "
            "removed in a future release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return value

    return __getattr__


def renamed_keys(data: Mapping[str, Any], renames: Mapping[str, str], where: str) -> dict[str, Any]:
    """Return ``data`` with old keys renamed (warning once per old key found).

    Parameters
    ----------
    data
        A keyword-argument or config mapping.
    renames
        Old name -> new name.
    where
        What ``data`` configures, for the messages (``"run_benchmark()"``, ``"data"``).

    Raises
    ------
    TypeError
        If both the old and the new name are given.
    """
    out = dict(data)
    for old, new in renames.items():
        if old not in out:
            continue
        if new in out:
            raise TypeError(
                f"{where}: got both {old!r} (deprecated) and {new!r}; pass only {new!r}"
            )
        warn_renamed(old, new, where=where, stacklevel=4)
        out[new] = out.pop(old)
    return out


def renamed_arguments(**renames: str) -> Callable[[_F], _F]:
    """Decorate a function whose keyword arguments were renamed (``old="new"``).

    Calls with an old name still work, with a :class:`DeprecationWarning`.

    Examples
    --------
    >>> @renamed_arguments(clip_length="frames_per_clip")
    ... def seams(frames_per_clip: int) -> int:
    ...     return frames_per_clip
    """

    def decorate(function: _F) -> _F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if any(old in kwargs for old in renames):
                kwargs = renamed_keys(kwargs, renames, f"{function.__qualname__}()")
            return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
