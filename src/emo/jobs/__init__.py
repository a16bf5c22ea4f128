"""Many videos in one run: a resumable job list, sharded over processes with torchrun.

``emo generate-many JOBS -o OUT_DIR`` (and :meth:`EMOPipeline.generate_many
<emo.pipelines.emo_pipeline.EMOPipeline.generate_many>`) loads the model once per
process and makes one video per line of a JSONL or CSV job list:

- :mod:`emo.jobs.spec`: the job list (portrait, audio, output name, seed, settings);
- :mod:`emo.jobs.results`: the results file (done / failed / skipped per job) and the
  per-process files it is merged from;
- :mod:`emo.jobs.plan`: which jobs to run (resume: verified outputs are skipped) and
  which process runs which;
- :mod:`emo.jobs.progress`: one progress bar over the whole list, all processes included;
- :mod:`emo.jobs.runner`: the run itself, :func:`~emo.jobs.runner.generate_many`.

Under ``torchrun --nproc_per_node N -m emo.generate_many JOBS -o OUT_DIR`` every
process takes its share of the jobs; the union of the outputs equals a one-process
run byte for byte. See the "many videos" guide page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emo._lazy import lazy_getattr

if TYPE_CHECKING:
    from emo.jobs.results import BatchSummary
    from emo.jobs.runner import generate_many
    from emo.jobs.spec import Job, read_jobs

__all__ = ["BatchSummary", "Job", "generate_many", "read_jobs"]

_LAZY = {
    "BatchSummary": "emo.jobs.results",
    "Job": "emo.jobs.spec",
    "generate_many": "emo.jobs.runner",
    "read_jobs": "emo.jobs.spec",
}

__getattr__ = lazy_getattr(__name__, _LAZY, globals())
