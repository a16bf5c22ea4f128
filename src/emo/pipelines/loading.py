"""``load_pipeline``: open any model folder emo can run, with the pipeline class it needs."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from emo.pipelines.emo_pipeline import EMOPipeline
    from emo.pipelines.hallo_pipeline import HalloPipeline

__all__ = ["is_hallo_model", "load_pipeline"]


def is_hallo_model(model: str | os.PathLike[str]) -> bool:
    """Whether ``model`` is Hallo's ``pretrained_models`` folder or a saved HalloPipeline."""
    from emo.loaders.hallo import find_hallo_root

    if find_hallo_root(model) is not None:
        return True
    index = os.path.join(os.fspath(model), "model_index.json")
    if not os.path.isfile(index):
        return False
    try:
        with open(index, encoding="utf-8") as handle:
            saved = json.load(handle).get("_class_name", "")
    except (OSError, ValueError, AttributeError):
        return False
    return str(saved).endswith(":HalloPipeline")


def load_pipeline(
    model: str | os.PathLike[str],
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    **overrides: Any,
) -> EMOPipeline | HalloPipeline:
    """Load a model folder with the right pipeline class.

    Parameters
    ----------
    model
        Hallo's ``pretrained_models/`` folder (:class:`~emo.pipelines.hallo_pipeline.HalloPipeline`),
        a folder saved by either pipeline (its ``model_index.json`` names the class), or a
        bundled model's name (``"emo-demo"``).
    device, dtype, **overrides
        As in the pipelines' ``from_pretrained``.

    Returns
    -------
    EMOPipeline or HalloPipeline
    """
    hallo = is_hallo_model(model)
    if hallo:
        from emo.pipelines.hallo_pipeline import HalloPipeline

        return HalloPipeline.from_pretrained(model, device=device, dtype=dtype, **overrides)
    from emo.pipelines.emo_pipeline import EMOPipeline

    return EMOPipeline.from_pretrained(model, device=device, dtype=dtype, **overrides)
