"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import emo.plugins

FIXTURES = Path(__file__).parent / "fixtures"
PLUGIN_DISTS = FIXTURES / "plugin_dists"


@pytest.fixture(autouse=True, scope="session")
def _no_installed_plugins() -> Iterator[None]:
    """Tests see only emo's built-ins (and the fixture plugins they ask for).

    Third-party plugins installed next to emo (broken ones included) must not change
    test results; subprocesses the tests start inherit the setting.
    """
    saved = os.environ.get(emo.plugins.registry.DISABLE_ENV)
    os.environ[emo.plugins.registry.DISABLE_ENV] = "1"
    emo.plugins.refresh()
    yield
    if saved is None:
        os.environ.pop(emo.plugins.registry.DISABLE_ENV, None)
    else:
        os.environ[emo.plugins.registry.DISABLE_ENV] = saved
    emo.plugins.refresh()


@pytest.fixture(autouse=True, scope="session")
def _random_default_model() -> Iterator[None]:
    """``emo generate`` without ``--model`` uses the tiny random preset in tests (fast plumbing).

    The bundled demo model has its own tests, which name it or clear the variable.
    """
    saved = os.environ.get("EMO_DEFAULT_MODEL")
    os.environ["EMO_DEFAULT_MODEL"] = "none"
    yield
    if saved is None:
        os.environ.pop("EMO_DEFAULT_MODEL", None)
    else:
        os.environ["EMO_DEFAULT_MODEL"] = saved


@pytest.fixture
def third_party_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Put the fixture plugin distributions (real dist-info metadata) on ``sys.path``."""
    monkeypatch.syspath_prepend(str(PLUGIN_DISTS))
    monkeypatch.delenv("EMO_DISABLE_PLUGINS", raising=False)
    emo.plugins.refresh()
    yield PLUGIN_DISTS
    monkeypatch.undo()
    emo.plugins.refresh()
