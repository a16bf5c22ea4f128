"""emo: one portrait + one audio track -> a talking or singing video (the EMO architecture).

``import emo`` is cheap: torch, transformers, PyAV and soundfile are imported
only when a name that needs them is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emo import errors, plugins
from emo._lazy import lazy_getattr
from emo._version import __version__

if TYPE_CHECKING:
    from emo.audio.loading import load_audio
    from emo.io.reader import read_video
    from emo.pipelines.emo_pipeline import EMOPipeline, EMOPipelineOutput
    from emo.pipelines.hallo_pipeline import HalloPipeline
    from emo.pipelines.loading import load_pipeline
    from emo.provenance.detect import detect

__all__ = [
    "EMOPipeline",
    "EMOPipelineOutput",
    "HalloPipeline",
    "__version__",
    "detect",
    "errors",
    "load_audio",
    "load_pipeline",
    "plugins",
    "read_video",
]

# Public name -> module that defines it; imported on first attribute access.
_LAZY = {
    "EMOPipeline": "emo.pipelines.emo_pipeline",
    "EMOPipelineOutput": "emo.pipelines.emo_pipeline",
    "HalloPipeline": "emo.pipelines.hallo_pipeline",
    "load_pipeline": "emo.pipelines.loading",
    "detect": "emo.provenance.detect",
    "load_audio": "emo.audio.loading",
    "read_video": "emo.io.reader",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    # The public names (lazy ones included) for tab completion, not import helpers.
    return sorted(__all__)
