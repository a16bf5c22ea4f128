"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import emo.plugins

FIXTURES = Path(__file__).parent / "fixtures"
PLUGIN_DISTS = FIXTURES / "plugin_dists"


@pytest.fixture
def third_party_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Put the fixture plugin distributions (real dist-info metadata) on ``sys.path``."""
    monkeypatch.syspath_prepend(str(PLUGIN_DISTS))
    monkeypatch.delenv("EMO_DISABLE_PLUGINS", raising=False)
    emo.plugins.refresh()
    yield PLUGIN_DISTS
    monkeypatch.undo()
    emo.plugins.refresh()
