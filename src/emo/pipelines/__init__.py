"""Pipelines: :class:`~emo.pipelines.emo_pipeline.EMOPipeline` and its settings.

The heavy modules load on first use, so ``import emo.pipelines`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emo._lazy import lazy_getattr

if TYPE_CHECKING:
    from emo.pipelines.emo_pipeline import EMOPipeline, EMOPipelineOutput
    from emo.pipelines.settings import PipelineSettings

__all__ = ["EMOPipeline", "EMOPipelineOutput", "PipelineSettings"]

_LAZY = {
    "EMOPipeline": "emo.pipelines.emo_pipeline",
    "EMOPipelineOutput": "emo.pipelines.emo_pipeline",
    "PipelineSettings": "emo.pipelines.settings",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
