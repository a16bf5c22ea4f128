"""Measure talking-head videos: lip sync, identity, head motion, seams, cost.

==========================================  ======================================
name                                        defined in
==========================================  ======================================
``pearson``, ``lip_sync``, ``seam_jump``    :mod:`emo.evaluation.signals` (numpy only)
``score_video``, ``score_video_file``       :mod:`emo.evaluation.scoring`
``run_benchmark``, ``heldout_cases``, ...   :mod:`emo.evaluation.benchmark`
==========================================  ======================================

Scoring needs the face analysis (``pip install "emo[face]"``); every name is
imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emo._lazy import lazy_getattr

if TYPE_CHECKING:
    from emo.evaluation.benchmark import (
        BenchmarkCase,
        BenchmarkReport,
        CaseResult,
        Generator,
        heldout_cases,
        pipeline_generator,
        portrait_of,
        run_benchmark,
        truth_generator,
    )
    from emo.evaluation.scoring import VideoScore, score_video, score_video_file
    from emo.evaluation.signals import LipSync, SeamJump, lip_sync, pearson, seam_jump

__all__ = [
    "BenchmarkCase",
    "BenchmarkReport",
    "CaseResult",
    "Generator",
    "LipSync",
    "SeamJump",
    "VideoScore",
    "heldout_cases",
    "lip_sync",
    "pearson",
    "pipeline_generator",
    "portrait_of",
    "run_benchmark",
    "score_video",
    "score_video_file",
    "seam_jump",
    "truth_generator",
]

_LAZY = {
    **dict.fromkeys(
        [
            "BenchmarkCase",
            "BenchmarkReport",
            "CaseResult",
            "Generator",
            "heldout_cases",
            "pipeline_generator",
            "portrait_of",
            "run_benchmark",
            "truth_generator",
        ],
        "emo.evaluation.benchmark",
    ),
    **dict.fromkeys(["VideoScore", "score_video", "score_video_file"], "emo.evaluation.scoring"),
    **dict.fromkeys(
        ["LipSync", "SeamJump", "lip_sync", "pearson", "seam_jump"], "emo.evaluation.signals"
    ),
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
