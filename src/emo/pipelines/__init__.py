"""Pipelines: :class:`~emo.pipelines.emo_pipeline.EMOPipeline` and its settings.

The heavy modules load on first use, so ``import emo.pipelines`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emo.pipelines.emo_pipeline import EMOPipeline, EMOPipelineOutput
    from emo.pipelines.settings import PipelineSettings

__all__ = ["EMOPipeline", "EMOPipelineOutput", "PipelineSettings"]

_LAZY = {
    "EMOPipeline": "emo.pipelines.emo_pipeline",
    "EMOPipelineOutput": "emo.pipelines.emo_pipeline",
    "PipelineSettings": "emo.pipelines.settings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'emo.pipelines' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
