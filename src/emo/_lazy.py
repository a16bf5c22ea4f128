"""Lazy public names for packages: the name is imported on first access (PEP 562).

Every emo package re-exports names whose modules pull heavy dependencies (torch,
transformers, av). ``import emo`` must stay cheap, so each package maps its public
names to the module that defines them and imports that module only when asked.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(
    package: str, lazy: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """Build a package's module-level ``__getattr__`` for its lazily imported names.

    Parameters
    ----------
    package
        The package's ``__name__`` (for the error message).
    lazy
        Public name -> module that defines it.
    namespace
        The package's ``globals()``: a resolved name is cached there, so each
        module is looked up once.

    Returns
    -------
    Callable[[str], Any]
        The function to bind as ``__getattr__`` in the package.
    """

    def __getattr__(name: str) -> Any:
        module = lazy.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
