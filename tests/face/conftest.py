"""Fixtures of the face tests (they need emo[face]: dlib, its models, OpenCV; and scikit-image)."""

from __future__ import annotations

import pytest

pytest.importorskip("cv2")
pytest.importorskip("dlib")
pytest.importorskip("skimage.data")

from emo.face import FaceAnalyzer


@pytest.fixture(scope="session")
def analyzer() -> FaceAnalyzer:
    """One dlib analyzer for the whole session (the landmark model takes a second to load)."""
    return FaceAnalyzer("dlib")
