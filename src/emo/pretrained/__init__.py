"""Models that ship inside the package, loaded by name.

``EMOPipeline.from_pretrained("emo-demo")`` and ``emo generate`` without
``--model`` load the bundled demonstration model: a small EMO trained by
``examples/train_demo.py`` with emo's own trainer on synthetic cartoon-like
talking heads (:mod:`emo.datasets.synthetic`), 64x64 pixels. It is a
demonstration that the whole system learns lip sync, not a model for
photographs. See the "demo model" guide page for what it can and cannot do.

A path that exists always wins over a bundled name, so a local folder called
``emo-demo`` is loaded as a folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from emo.errors import ConfigError

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_MODEL_ENV",
    "bundled_model_path",
    "bundled_models",
    "default_model",
    "resolve_model",
]

#: The model ``emo generate`` uses when no ``--model`` is given.
DEFAULT_MODEL = "emo-demo"
#: Environment variable that replaces :data:`DEFAULT_MODEL` (a name or folder; ``none``:
#: the ``tiny`` preset with random weights, as emo's own plumbing tests use).
DEFAULT_MODEL_ENV = "EMO_DEFAULT_MODEL"

_HERE = Path(__file__).resolve().parent
_INDEX = "model_index.json"


def bundled_models() -> list[str]:
    """Names of the models shipped in this installation (folders holding a pipeline index)."""
    return sorted(p.name for p in _HERE.iterdir() if (p / _INDEX).is_file())


def bundled_model_path(name: str) -> Path:
    """The folder of the bundled model ``name``.

    Raises
    ------
    ConfigError
        If no bundled model has that name.
    """
    folder = _HERE / name
    if not name or os.sep in name or not (folder / _INDEX).is_file():
        raise ConfigError(
            f"no bundled model called {name!r}; bundled models: {bundled_models() or 'none'}"
        )
    return folder


def default_model() -> str | None:
    """The model ``emo generate`` loads without ``--model``; ``None``: random ``tiny`` weights.

    :data:`DEFAULT_MODEL_ENV` wins when set (``none`` or empty: ``None``); otherwise
    :data:`DEFAULT_MODEL` when it is installed, else ``None``.
    """
    chosen = os.environ.get(DEFAULT_MODEL_ENV)
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "none") else chosen
    return DEFAULT_MODEL if DEFAULT_MODEL in bundled_models() else None


def resolve_model(name_or_path: str | os.PathLike[str]) -> Path:
    """A pipeline folder from a path, or from the name of a bundled model.

    An existing path is returned as it is; otherwise a bundled model of that name;
    otherwise the path is returned unchanged (loading it then reports what is missing).
    """
    path = Path(name_or_path)
    if path.exists() or not isinstance(name_or_path, str):
        return path
    if name_or_path in bundled_models():
        return _HERE / name_or_path
    return path
