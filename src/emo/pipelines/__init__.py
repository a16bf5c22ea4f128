"""Pipelines: :class:`~emo.pipelines.emo_pipeline.EMOPipeline` and its settings.

The heavy modules load on first use, so ``import emo.pipelines`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emo._lazy import lazy_getattr

if TYPE_CHECKING:
    from emo.pipelines.emo_pipeline import EMOPipeline, EMOPipelineOutput
    from emo.pipelines.hallo_pipeline import HalloPipeline
    from emo.pipelines.loading import load_pipeline
    from emo.pipelines.settings import PipelineSettings

__all__ = ["EMOPipeline", "EMOPipelineOutput", "HalloPipeline", "PipelineSettings", "load_pipeline"]

_LAZY = {
    "EMOPipeline": "emo.pipelines.emo_pipeline",
    "EMOPipelineOutput": "emo.pipelines.emo_pipeline",
    "HalloPipeline": "emo.pipelines.hallo_pipeline",
    "load_pipeline": "emo.pipelines.loading",
    "PipelineSettings": "emo.pipelines.settings",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
