"""Find and load the trained face models that the ``face`` extra installs.

The networks are dlib's (``dlib-bin`` wheel): its HOG + linear SVM frontal face detector
(built into dlib), the 68-point shape predictor (an ensemble of regression trees trained on
the iBUG 300-W faces) and the ResNet face descriptor (128-D, trained for face recognition).
The two model files come in the ``face-recognition-models`` package; nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
from functools import cache
from pathlib import Path
from typing import Any

from emo.errors import PluginLoadError

__all__ = [
    "DESCRIPTOR_FILE",
    "SHAPE_FILE",
    "import_dlib",
    "load_descriptor",
    "load_shape",
    "model_dir",
]

SHAPE_FILE = "shape_predictor_68_face_landmarks.dat"
DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"

_INSTALL = 'run `pip install "emo[face]"` (dlib-bin and face-recognition-models)'


def import_dlib() -> Any:
    """Import and return dlib, or raise an emo error that says how to install it.

    Raises
    ------
    PluginLoadError
        If ``dlib`` is not installed.
    """
    try:
        import dlib
    except ImportError as exc:
        raise PluginLoadError(
            f"face analysis needs dlib, which is not installed; {_INSTALL}"
        ) from exc
    return dlib


def model_dir() -> Path:
    """Return the folder holding the model files.

    ``EMO_FACE_MODELS`` names another folder with the same file names; otherwise the
    ``models/`` folder of the installed ``face-recognition-models`` package (found without
    importing it: its ``__init__`` needs ``pkg_resources``, which new setuptools dropped).

    Raises
    ------
    PluginLoadError
        If neither is there.
    """
    override = os.environ.get("EMO_FACE_MODELS")
    if override:
        path = Path(override)
        if not path.is_dir():
            raise PluginLoadError(
                f"EMO_FACE_MODELS={override!r} is not a folder; unset it or point it at a folder "
                f"holding {SHAPE_FILE}"
            )
        return path
    spec = importlib.util.find_spec("face_recognition_models")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / "models"
        if path.is_dir():
            return path
    raise PluginLoadError(
        f"the face models (package face-recognition-models) are not installed; {_INSTALL}"
    )


def _model_file(name: str) -> str:
    path = model_dir() / name
    if not path.is_file():
        raise PluginLoadError(f"face model file {str(path)!r} is missing; reinstall: {_INSTALL}")
    return os.fspath(path)


@cache
def load_detector() -> Any:
    """dlib's HOG frontal face detector (shared: it holds no per-call state)."""
    return import_dlib().get_frontal_face_detector()


@cache
def load_shape() -> Any:
    """dlib's 68-point shape predictor (about 100 MB in memory, loaded once per process)."""
    return import_dlib().shape_predictor(_model_file(SHAPE_FILE))


@cache
def load_descriptor() -> Any:
    """dlib's ResNet face descriptor network (128-D), loaded once per process."""
    return import_dlib().face_recognition_model_v1(_model_file(DESCRIPTOR_FILE))
