"""Discovery, loading and in-process registration of plugins.

Names come from entry-point metadata (no plugin module is imported to list them);
a plugin is imported the first time it is asked for and then cached.
"""

from __future__ import annotations

import functools
import importlib.metadata as metadata
import inspect
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

from emo.errors import (
    EMOWarning,
    PluginContractError,
    PluginError,
    PluginLoadError,
    PluginNotFoundError,
)
from emo.plugins.kinds import KINDS, KindSpec, normalize_kind

__all__ = [
    "BUILTIN_DISTRIBUTION",
    "DISABLE_ENV",
    "PluginInfo",
    "PluginStatus",
    "available",
    "check",
    "create",
    "list_plugins",
    "load",
    "plugin_name_of",
    "refresh",
    "register",
    "unregister",
]

BUILTIN_DISTRIBUTION = "emo"
DISABLE_ENV = "EMO_DISABLE_PLUGINS"

_T = TypeVar("_T")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class PluginInfo:
    """One way a plugin name is provided.

    Attributes
    ----------
    kind
        The plugin kind (``"scheduler"``, ...).
    name
        The registry name.
    value
        The entry point's ``module:attr``, or ``module:QualName`` of an in-process registration.
    distribution
        The installed distribution that declares it (None for in-process registrations).
    version
        That distribution's version.
    source
        ``"builtin"``, ``"entry_point"`` (third party) or ``"registered"`` (in-process).
    """

    kind: str
    name: str
    value: str
    distribution: str | None
    version: str | None
    source: Literal["builtin", "entry_point", "registered"]

    @property
    def origin(self) -> str:
        """Where it comes from, for messages: ``"entry point 'x = m:C' of distribution 'd 1.0'"``."""
        if self.source == "registered":
            return f"in-process registration {self.value!r}"
        dist = f"{self.distribution} {self.version}" if self.version else str(self.distribution)
        return f"entry point '{self.name} = {self.value}' of distribution {dist!r}"


@dataclass(frozen=True)
class PluginStatus:
    """Result of :func:`check`: a plugin, whether it loads, and why not.

    Attributes
    ----------
    info
        The winning provider of the name.
    loads
        True when the object imported and passed the contract check.
    error
        The error message when it did not.
    shadowed
        Other providers of the same name that lost.
    """

    info: PluginInfo
    loads: bool
    error: str | None
    shadowed: tuple[PluginInfo, ...]


class _Registry:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._discovered: dict[str, dict[str, list[tuple[PluginInfo, metadata.EntryPoint]]]] | None
        self._discovered = None
        self._registered: dict[str, dict[str, tuple[PluginInfo, Any]]] = {k: {} for k in KINDS}
        self._cache: dict[tuple[str, str], Any] = {}
        self._warned: set[tuple[str, str]] = set()

    # -- discovery -----------------------------------------------------------------
    def _disabled(self) -> tuple[bool, set[str]]:
        raw = os.environ.get(DISABLE_ENV, "").strip()
        if raw.lower() in {"1", "true", "yes", "all", "*"}:
            return True, set()
        return False, {_canonical(p) for p in raw.split(",") if p.strip()}

    def _discover(self) -> dict[str, dict[str, list[tuple[PluginInfo, metadata.EntryPoint]]]]:
        with self._lock:
            if self._discovered is not None:
                return self._discovered
            all_off, off = self._disabled()
            found: dict[str, dict[str, list[tuple[PluginInfo, metadata.EntryPoint]]]] = {}
            for kind, spec in KINDS.items():
                per_name: dict[str, list[tuple[PluginInfo, metadata.EntryPoint]]] = {}
                seen: set[tuple[str, str, str | None]] = set()
                for ep in metadata.entry_points(group=spec.group):
                    dist = getattr(ep, "dist", None)
                    dist_name = dist.metadata["Name"] if dist is not None else None
                    version = dist.version if dist is not None else None
                    builtin = (
                        dist_name is not None and _canonical(dist_name) == BUILTIN_DISTRIBUTION
                    )
                    builtin = builtin and ep.value.startswith("emo.")
                    if not builtin and (
                        all_off
                        or (dist_name is not None and _canonical(dist_name) in off)
                        or _canonical(ep.name) in off
                    ):
                        continue
                    key = (ep.name, ep.value, dist_name)
                    if key in seen:  # the same distribution seen twice on sys.path
                        continue
                    seen.add(key)
                    info = PluginInfo(
                        kind=kind,
                        name=ep.name,
                        value=ep.value,
                        distribution=dist_name,
                        version=version,
                        source="builtin" if builtin else "entry_point",
                    )
                    per_name.setdefault(ep.name, []).append((info, ep))
                for candidates in per_name.values():
                    # Deterministic winner: built-in first, then by distribution name.
                    candidates.sort(
                        key=lambda c: (
                            c[0].source != "builtin",
                            _canonical(c[0].distribution or ""),
                        )
                    )
                found[kind] = per_name
            self._discovered = found
            return found

    def refresh(self) -> None:
        with self._lock:
            self._discovered = None
            self._cache.clear()
            self._warned.clear()

    # -- listing -------------------------------------------------------------------
    def providers(self, spec: KindSpec, name: str) -> list[PluginInfo]:
        registered = self._registered[spec.kind].get(name)
        discovered = [info for info, _ in self._discover()[spec.kind].get(name, [])]
        return ([registered[0]] if registered else []) + discovered

    def names(self, spec: KindSpec) -> list[str]:
        return sorted(set(self._discover()[spec.kind]) | set(self._registered[spec.kind]))

    # -- registration --------------------------------------------------------------
    def register(self, spec: KindSpec, name: str, obj: Any, override: bool) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"a {spec.kind} plugin needs a non-empty string name, got {name!r}")
        with self._lock:
            existing = self.providers(spec, name)
            if existing and not override:
                raise PluginError(
                    f"{spec.kind} {name!r} is already provided by {existing[0].origin}; "
                    "pass override=True to replace it"
                )
            _check_contract(spec, name, obj, origin=f"registration of {name!r}")
            value = _describe(obj)
            info = PluginInfo(spec.kind, name, value, None, None, "registered")
            self._registered[spec.kind][name] = (info, obj)
            self._cache.pop((spec.kind, name), None)

    def unregister(self, spec: KindSpec, name: str) -> None:
        with self._lock:
            if self._registered[spec.kind].pop(name, None) is None:
                raise PluginNotFoundError(f"no in-process {spec.kind} registration named {name!r}")
            self._cache.pop((spec.kind, name), None)

    # -- loading -------------------------------------------------------------------
    def load(self, spec: KindSpec, name: str) -> Any:
        with self._lock:
            cached = self._cache.get((spec.kind, name), _MISSING)
            if cached is not _MISSING:
                return cached
            registered = self._registered[spec.kind].get(name)
            if registered is not None:
                obj = registered[1]
            else:
                candidates = self._discover()[spec.kind].get(name)
                if not candidates:
                    raise PluginNotFoundError(
                        f"no {spec.kind} plugin named {name!r}; available: "
                        f"{', '.join(self.names(spec)) or 'none'} (run `emo plugins` to see all)"
                    )
                info, ep = candidates[0]
                self._warn_duplicates(spec, name, [c[0] for c in candidates])
                try:
                    obj = ep.load()
                except Exception as exc:
                    advice = (
                        "reinstall emo (this is a built-in)"
                        if info.source == "builtin"
                        else f"reinstall or fix that package, or set {DISABLE_ENV}="
                        f"{info.distribution} to skip it"
                    )
                    raise PluginLoadError(
                        f"{spec.kind} plugin {name!r} failed to import from {info.origin}: "
                        f"{type(exc).__name__}: {exc}; {advice}"
                    ) from exc
                _check_contract(spec, name, obj, origin=info.origin)
            self._cache[(spec.kind, name)] = obj
            return obj

    def _warn_duplicates(self, spec: KindSpec, name: str, infos: list[PluginInfo]) -> None:
        if len(infos) < 2 or (spec.kind, name) in self._warned:
            return
        self._warned.add((spec.kind, name))
        others = ", ".join(repr(i.distribution) for i in infos[1:])
        warnings.warn(
            f"{spec.kind} plugin {name!r} is declared by several distributions: "
            f"{infos[0].distribution!r} (used), {others} (ignored). A built-in can only be "
            "replaced in-process with emo.plugins.register(..., override=True).",
            EMOWarning,
            stacklevel=4,
        )


_MISSING = object()
_REGISTRY = _Registry()


def _describe(obj: Any) -> str:
    target = (
        obj
        if isinstance(obj, type) or (callable(obj) and hasattr(obj, "__qualname__"))
        else type(obj)
    )
    return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', repr(target))}"


def _has_method(obj: Any, method: str) -> bool:
    """True if ``obj`` (class or instance) really defines ``method``.

    Looked up on the class's MRO, not through ``getattr``: every class is callable
    through ``type.__call__``, which must not count as a face mask's ``__call__``.
    """
    cls = obj if isinstance(obj, type) else type(obj)
    for klass in cls.__mro__:
        if klass is not object and method in vars(klass):
            return callable(getattr(obj, method, None))
    return not isinstance(obj, type) and callable(
        vars(obj).get(method) if hasattr(obj, "__dict__") else None
    )


def _check_contract(spec: KindSpec, name: str, obj: Any, origin: str) -> None:
    """Raise :class:`PluginContractError` unless ``obj`` (class or instance) fits ``spec``."""
    missing = [m for m in spec.methods if not _has_method(obj, m)]
    if not isinstance(obj, type):
        missing += [a for a in spec.attributes if not hasattr(obj, a)]
    if missing:
        raise PluginContractError(
            f"{spec.kind} plugin {name!r} ({origin}) resolves to {_describe(obj)}, which lacks "
            f"{', '.join(missing)} required by {spec.protocol} (subclass {spec.base})"
        )


def list_plugins(kind: str | None = None) -> list[PluginInfo]:
    """List the winning provider of every plugin name, without importing any plugin.

    Parameters
    ----------
    kind
        One kind, or ``None`` for all four.
    """
    specs = [normalize_kind(kind)] if kind else list(KINDS.values())
    return [_REGISTRY.providers(s, n)[0] for s in specs for n in _REGISTRY.names(s)]


def available(kind: str) -> list[str]:
    """Sorted names of the plugins of ``kind`` (nothing is imported)."""
    return _REGISTRY.names(normalize_kind(kind))


def load(kind: str, name: str) -> Any:
    """Import (once) and return the object registered as ``name``, usually a class.

    Raises
    ------
    PluginNotFoundError
        If no plugin of that kind has that name.
    PluginLoadError
        If its module fails to import; the message names the entry point and distribution.
    PluginContractError
        If the object lacks what the kind's contract requires.
    """
    return _REGISTRY.load(normalize_kind(kind), name)


def create(kind: str, spec: Any, /, **kwargs: Any) -> Any:
    """Turn a name, class or instance into a checked plugin instance.

    Parameters
    ----------
    kind
        The plugin kind.
    spec
        A registry name (``"ddim"``), a class (instantiated with ``kwargs``) or an
        instance (returned as is; ``kwargs`` must then be empty).
    **kwargs
        Constructor arguments.
    """
    kind_spec = normalize_kind(kind)
    if isinstance(spec, str):
        obj = _REGISTRY.load(kind_spec, spec)
        label = spec
    else:
        obj, label = spec, _describe(spec)
    # Classes and factory functions are called; anything else is a built instance.
    if isinstance(obj, (type, functools.partial)) or inspect.isroutine(obj):
        instance = obj(**kwargs)
    else:
        if kwargs:
            raise PluginError(
                f"got an already built {kind_spec.kind} ({_describe(obj)}) and constructor "
                f"arguments {sorted(kwargs)}; pass a name or class to construct one"
            )
        instance = obj
    _check_contract(kind_spec, label, instance, origin="the object given")
    return instance


@overload
def register(
    kind: str, name: str, obj: None = None, *, override: bool = False
) -> Callable[[_T], _T]: ...
@overload
def register(kind: str, name: str, obj: _T, *, override: bool = False) -> _T: ...
def register(kind: str, name: str, obj: Any = None, *, override: bool = False) -> Any:
    """Register ``obj`` as plugin ``name`` of ``kind`` in this process.

    Use directly, ``register("scheduler", "mine", MyScheduler)``, or as a
    decorator, ``@register("scheduler", "mine")``. A name that already exists
    (built-in, entry point or earlier registration) needs ``override=True``.

    Raises
    ------
    PluginError
        If the name is taken and ``override`` is false.
    PluginContractError
        If ``obj`` does not satisfy the kind's contract.
    """
    spec = normalize_kind(kind)
    if obj is None:

        def decorator(target: _T) -> _T:
            _REGISTRY.register(spec, name, target, override)
            return target

        return decorator
    _REGISTRY.register(spec, name, obj, override)
    return obj


def unregister(kind: str, name: str) -> None:
    """Remove an in-process registration (entry points are untouched)."""
    _REGISTRY.unregister(normalize_kind(kind), name)


def refresh() -> None:
    """Forget discovered entry points and loaded objects; re-read ``EMO_DISABLE_PLUGINS``.

    Call it after installing a plugin package in a running process.
    """
    _REGISTRY.refresh()


def check(kind: str | None = None) -> list[PluginStatus]:
    """Try to load every plugin (of one kind or all) and report which load.

    Never raises for a broken plugin: the error is in :attr:`PluginStatus.error`.
    """
    specs = [normalize_kind(kind)] if kind else list(KINDS.values())
    statuses = []
    for spec in specs:
        for name in _REGISTRY.names(spec):
            providers = _REGISTRY.providers(spec, name)
            error = None
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", EMOWarning)
                    _REGISTRY.load(spec, name)
            except PluginError as exc:
                error = str(exc)
            statuses.append(PluginStatus(providers[0], error is None, error, tuple(providers[1:])))
    return statuses


def plugin_name_of(kind: str, obj: Any) -> str | None:
    """Return the registry name under which ``obj`` (an instance or class) is provided.

    Looks at in-process registrations, then the class's ``name`` attribute if that
    name resolves to the same class, then loaded entry points. ``None`` if unknown.
    """
    spec = normalize_kind(kind)
    cls = obj if isinstance(obj, type) else type(obj)
    for name, (_, registered) in _REGISTRY._registered[spec.kind].items():
        if registered is cls or registered is obj:
            return name
    declared = getattr(cls, "name", None)
    candidates: Iterable[str] = [declared] if isinstance(declared, str) and declared else []
    for name in [*candidates, *_REGISTRY.names(spec)]:
        try:
            if _REGISTRY.load(spec, name) is cls:
                return name
        except PluginError:
            continue
    return None
