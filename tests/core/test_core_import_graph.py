"""No import circles inside ``emo``: its modules form a layered, acyclic import graph.

The graph is read from the source with :mod:`ast` (nothing is imported). A node is
a module of ``src/emo``; an edge ``a -> b`` is an ``import`` statement in ``a`` that
loads ``b``. Two graphs are checked:

- module-level imports (what runs when ``a`` is imported);
- every import that can run, deferred ones inside functions included (what runs
  when ``a`` is used), so a circle cannot hide behind a function-level import.

Imports inside ``if TYPE_CHECKING:`` never run and are not edges. An import of an
ancestor package (``emo`` from ``emo.models.vae``) is not an edge either: Python
always finishes the package's ``__init__`` first. A name read from a package that
re-exports it lazily (its ``_LAZY`` table) is an edge to the defining module.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import emo

SOURCE = Path(emo.__file__).parent


def _modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package ``__init__``)."""
    found = {}
    for path in SOURCE.rglob("*.py"):
        parts = ["emo", *path.relative_to(SOURCE).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join(parts)] = (path, is_package)
    return found


MODULES = _modules()


def _lazy_table(package: str) -> dict[str, str]:
    """A package's lazily re-exported names, ``_LAZY = {name: module}`` (package ``__init__`` files import nothing heavy)."""
    table = getattr(importlib.import_module(package), "_LAZY", {})
    return {str(k): str(v) for k, v in table.items()}


TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, (path, _) in MODULES.items()}
LAZY = {name: _lazy_table(name) for name, (_, is_package) in MODULES.items() if is_package}


def _owner(dotted: str) -> str | None:
    """The emo module that ``import dotted`` loads last (``emo.a.b.Name`` -> ``emo.a.b``)."""
    while dotted and dotted not in MODULES:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def _is_type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in ast.unparse(test)


def _imports(nodes: list[ast.stmt], *, deferred: bool, top: bool = True) -> Iterator[ast.stmt]:
    """Import statements that run: module level, and with ``deferred`` those in bodies too."""
    for node in nodes:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _imports(node.orelse, deferred=deferred, top=top)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if top or deferred:
                yield node
            continue
        nested = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        if nested and not deferred:
            continue
        for field in ("body", "orelse", "finalbody", "handlers"):
            children = getattr(node, field, None)
            if isinstance(children, list):
                statements = [c for c in children if isinstance(c, ast.stmt)]
                for handler in children:
                    if isinstance(handler, ast.ExceptHandler):
                        statements.extend(handler.body)
                yield from _imports(statements, deferred=deferred, top=top and not nested)


def _targets(module: str, node: ast.stmt) -> Iterator[str]:
    """The emo modules an import statement in ``module`` loads."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    assert isinstance(node, ast.ImportFrom)
    base = node.module or ""
    if node.level:
        package = module if MODULES[module][1] else module.rpartition(".")[0]
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        if submodule in MODULES:
            yield submodule
        elif alias.name in LAZY.get(base, {}):
            yield LAZY[base][alias.name]
        else:
            yield base


def import_graph(*, deferred: bool) -> dict[str, set[str]]:
    """Module -> the emo modules it imports (see the module docstring for what counts)."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for module, tree in TREES.items():
        for node in _imports(tree.body, deferred=deferred):
            for target in _targets(module, node):
                owner = _owner(target)
                if owner is None or owner == module or module.startswith(owner + "."):
                    continue
                graph[module].add(owner)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as ``[a, b, ..., a]``, or ``None`` when the graph is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


@pytest.mark.parametrize("deferred", [False, True], ids=["module-level", "with-deferred"])
def test_emo_has_no_import_circles(deferred: bool) -> None:
    graph = import_graph(deferred=deferred)
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_graph_sees_real_edges() -> None:
    # Guards the checker itself: known edges of each kind are found.
    top = import_graph(deferred=False)
    full = import_graph(deferred=True)
    assert "emo.models.unet_2d" in top["emo.loaders.diffusers_unet"]  # module level
    assert "emo.loaders.diffusers_unet" not in top["emo.models.backbone"]
    assert "emo.loaders.diffusers_unet" in full["emo.models.backbone"]  # inside a method
    assert "emo.pipelines.emo_pipeline" not in full["emo.pipelines.builders"]  # TYPE_CHECKING
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_loaders_import_no_network_that_imports_them() -> None:
    # The layering the issue asked for: importers depend on networks, never the reverse
    # at module level, and networks reach importers only from their classmethods.
    top = import_graph(deferred=False)
    for module, targets in top.items():
        if module.startswith("emo.models."):
            assert not any(t.startswith("emo.loaders") for t in targets), module


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [
        ("emo.models.convert_sd", "emo.loaders.diffusers_unet", "load_pretrained_unet"),
        ("emo.models.convert_single_file", "emo.loaders.single_file", "load_sd15_single_file"),
        ("emo.models.convert_animatediff", "emo.loaders.animatediff", "load_motion_module_weights"),
        ("emo.models.vae", "emo.loaders.diffusers_vae", "convert_diffusers_vae_state_dict"),
    ],
)
def test_moved_importers_keep_their_old_paths_with_a_warning(old: str, new: str, name: str) -> None:
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(new), name)
    with pytest.raises(AttributeError, match="no_such_name"):
        module.no_such_name  # noqa: B018
