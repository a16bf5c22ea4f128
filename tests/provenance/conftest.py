"""Fixtures of the provenance tests (the clips themselves are in provenance_clips.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("skimage")

from provenance_clips import talking_clip


@pytest.fixture(scope="session")
def portrait_path() -> Path:
    return Path(__file__).resolve().parents[2] / "examples" / "portrait.png"


@pytest.fixture(scope="session")
def make_clip() -> Callable[..., np.ndarray]:
    """:func:`talking_clip`, for tests."""
    return talking_clip
