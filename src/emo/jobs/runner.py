"""Run a job list with one loaded pipeline, on one process or sharded over many.

One run, on every process (rank) of the group:

1. rank 0 takes the output folder (an exclusive claim on ``results.jsonl``, so a
   second run of the same folder fails at once), merges what a killed run left,
   reads the job list and plans (:mod:`emo.jobs.plan`); the plan goes to every rank;
2. each rank makes its share of the pending jobs: the video is written to a
   temporary name and renamed when complete (the video writers do that), then its
   record is appended to the rank's results file;
3. after a barrier, rank 0 merges the records into ``results.jsonl``.

A job that fails (a bad input: an :mod:`emo.errors` error; or any other exception)
is recorded with its message and the run goes on. Ctrl-C and SIGTERM stop the run;
the video being written is removed, and a rerun makes it again.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emo.errors import EMOError, InputError
from emo.jobs.plan import Plan, failed_record, make_plan, shard
from emo.jobs.progress import BatchProgress
from emo.jobs.results import BatchSummary, RankLog, ResultsStore, sha256_of, state_of, utc_now
from emo.jobs.spec import Job, job_list

if TYPE_CHECKING:
    from emo.pipelines.emo_pipeline import EMOPipeline
    from emo.training.distributed import DistContext

__all__ = ["DEFAULT_TIMEOUT", "generate_many", "run_job"]

#: How long a process waits for the others (at the start and at the end of a run):
#: a process whose share ends early waits at the end for the slowest one.
DEFAULT_TIMEOUT = timedelta(days=7)

RecordCallback = Callable[[dict[str, Any]], None]


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError))):
        return True
    text = str(exc).lower()  # CPU allocations fail with a plain RuntimeError
    return isinstance(exc, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text
    )


def _unexpected_message(exc: BaseException) -> tuple[str, str]:
    """Error name and message of an exception that is not an emo error."""
    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    if _is_out_of_memory(exc):
        return (
            "InsufficientMemoryError",
            f"not enough memory for this video: {text}; use a smaller size, shorter audio or "
            "more memory",
        )
    return type(exc).__name__, f"{text} (an unexpected error: please report it)"


def run_job(
    pipe: EMOPipeline,
    job: Job,
    out_dir: Path,
    *,
    defaults: Mapping[str, Any],
    extra: str = "",
    watermark: Any = True,
    rank: int = 0,
) -> dict[str, Any]:
    """Make one job's video; return its record (done or failed). Never raises for a bad job.

    Parameters
    ----------
    pipe
        The loaded pipeline.
    job
        The job.
    out_dir
        The output folder: the video goes to ``out_dir / job.output``.
    defaults
        Settings for what the job leaves out.
    extra
        Part of the job's fingerprint (see :meth:`Job.fingerprint <emo.jobs.spec.Job.fingerprint>`).
    watermark
        Passed to the pipeline.
    rank
        The process, for the record.
    """
    import torch

    began = time.perf_counter()
    fingerprint = job.fingerprint(defaults, extra)
    try:
        if job.error is not None or job.output is None:
            raise InputError(job.error or "the job has no output name")
        target = out_dir / job.output
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the folder of output {job.output!r}: {exc}") from exc
        seed, arguments = job.call_arguments(defaults)
        portrait, audio = job.input_path("portrait"), job.input_path("audio")
        result = pipe(
            str(portrait),
            str(audio),
            generator=torch.Generator("cpu").manual_seed(seed),
            output_path=target,
            watermark=watermark,
            **arguments,
        )
        assert not isinstance(result, tuple)
        return {
            "job": job.key,
            "line": job.line,
            "status": "done",
            "path": str(target),
            "frames": result.num_frames,
            "fps": result.fps,
            "seconds": round(time.perf_counter() - began, 3),
            "sha256": sha256_of(target),
            "portrait_sha256": sha256_of(portrait),
            "audio_sha256": sha256_of(audio),
            "job_sha256": fingerprint,
            "seed": seed,
            "rank": rank,
            "time": utc_now(),
        }
    except EMOError as exc:
        error, message = type(exc).__name__, str(exc)
    except Exception as exc:  # a bug or an exhausted device must not stop the other jobs
        error, message = _unexpected_message(exc)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    seconds = time.perf_counter() - began
    return failed_record(job, error, message, seconds=seconds, fingerprint=fingerprint, rank=rank)


def _context(dist: DistContext | None, timeout: timedelta) -> DistContext:
    if dist is not None:
        return dist
    from emo.training.distributed import init_distributed

    # gloo: the collectives are a few small messages; and unlike NCCL it waits as long
    # as ``timeout`` says without a watchdog, on CPUs and GPUs alike.
    return init_distributed("cpu", "gloo", timeout=timeout)


def _plan_on_rank0(
    store: ResultsStore,
    jobs: str | os.PathLike[str] | Sequence[Mapping[str, Any] | Job],
    *,
    defaults: Mapping[str, Any],
    extra: str,
    retry_failed: bool,
) -> Plan:
    """Merge what a killed run left, read the jobs, plan, and record the skipped and invalid."""
    listed = job_list(jobs)
    order = [job.key for job in listed]
    latest = store.consolidate(order)
    plan = make_plan(
        listed, latest, store.folder, defaults=defaults, extra=extra, retry_failed=retry_failed
    )
    store.consolidate(order, plan.records)
    return plan


def generate_many(
    pipe: EMOPipeline,
    jobs: str | os.PathLike[str] | Sequence[Mapping[str, Any] | Job],
    output_dir: str | os.PathLike[str],
    *,
    defaults: Mapping[str, Any] | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    watermark: Any = True,
    fingerprint: str = "",
    dist: DistContext | None = None,
    timeout: timedelta = DEFAULT_TIMEOUT,
    on_record: RecordCallback | None = None,
) -> BatchSummary:
    """Make every video of a job list with one loaded pipeline; resumable, shardable.

    Parameters
    ----------
    pipe
        The pipeline; it is loaded once and makes every job of this process.
    jobs
        A job file (JSONL or CSV, see :func:`~emo.jobs.spec.read_jobs`) or a sequence of
        mappings with the fields of a JSONL line (relative paths: from the working folder).
    output_dir
        Where the videos (each at its job's output name) and ``results.jsonl`` go.
    defaults
        Settings for what a job leaves out (keys of :data:`~emo.jobs.spec.SETTINGS`:
        ``seed``, ``steps``, ``size``...); the pipeline's own settings otherwise.
    retry_failed
        Run again the jobs that failed in an earlier run (otherwise they are skipped
        unless their line changed).
    progress
        Show one bar over the whole list (rank 0) and each video's steps.
    watermark
        Passed to every generation (see :meth:`EMOPipeline.__call__
        <emo.pipelines.emo_pipeline.EMOPipeline.__call__>`).
    fingerprint
        Text naming what else decides the videos (the model): a change makes every job
        again. The command line puts the model and its options there.
    dist
        The process group; by default torchrun's environment (``RANK``, ``WORLD_SIZE``...)
        decides, and a gloo group is created when there are several processes.
    timeout
        How long a process waits for the others at the start and the end of the run.
    on_record
        Called with each record this process writes (after writing it).

    Returns
    -------
    BatchSummary
        The same on every process.

    Raises
    ------
    InputError
        If the job list cannot be read or the output folder cannot be written; a bad
        job never raises.
    OutputInUseError
        If another run is using ``output_dir`` now.
    """
    from emo.errors import OutputInUseError
    from emo.io.claim import OutputClaim

    defaults = dict(defaults or {})
    extra = f"{fingerprint}|watermark={watermark!r}" if watermark is not True else fingerprint
    out_dir = Path(output_dir).absolute()
    store = ResultsStore(out_dir)
    ctx = _context(dist, timeout)
    claim: OutputClaim | None = None
    bar: BatchProgress | None = None
    began = time.monotonic()
    try:
        plan_text, failure = "", None
        if ctx.is_main:
            try:
                try:
                    out_dir.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise InputError(
                        f"cannot create the output folder {str(out_dir)!r}: {exc}"
                    ) from exc
                claim = OutputClaim(store.results_path, error=InputError).acquire()
                plan = _plan_on_rank0(
                    store, jobs, defaults=defaults, extra=extra, retry_failed=retry_failed
                )
                plan_text = plan.to_json()
            except EMOError as exc:  # the other processes must hear of it, not wait
                plan_text, failure = "!" + type(exc).__name__ + ":" + str(exc), exc
        plan_text = ctx.gather_strings(plan_text)[0]  # rank 0's plan, on every rank
        if failure is not None:
            raise failure
        if plan_text.startswith("!"):
            name, message = plan_text[1:].split(":", 1)
            raise (OutputInUseError if name == "OutputInUseError" else InputError)(message)
        plan = Plan.from_json(plan_text)
        mine = shard(plan.pending, ctx.rank, ctx.world_size)
        if ctx.is_main:
            bar = BatchProgress(
                store,
                len(plan.pending),
                skipped=plan.skipped_done + plan.skipped_failed,
                disable=not progress,
            )
        saved = dict(getattr(pipe, "_progress_config", {}))
        step_bar = (
            {"leave": False, "position": 1} if progress and ctx.is_main else {"disable": True}
        )
        try:
            with RankLog(store.rank_path(ctx.rank)) as log:
                for job in mine:
                    pipe.set_progress_bar_config(**{**saved, **step_bar, "desc": job.key})
                    record = run_job(
                        pipe,
                        job,
                        out_dir,
                        defaults=defaults,
                        extra=extra,
                        watermark=watermark,
                        rank=ctx.rank,
                    )
                    log.append(record)
                    if bar is not None:
                        bar.refresh()
                    if on_record is not None:
                        on_record(record)
        finally:
            pipe.set_progress_bar_config(**saved)
        ctx.barrier()
        summary_text = ""
        if ctx.is_main:
            if bar is not None:
                bar.refresh()
                bar.close()
            summary_text = _finish(store, plan, began, ctx.world_size)
        summary_text = ctx.gather_strings(summary_text)[0]
        return BatchSummary.from_dict(json.loads(summary_text))
    finally:
        if bar is not None:
            bar.close()
        if claim is not None:
            claim.release()
        if dist is None:
            ctx.close()


def _finish(store: ResultsStore, plan: Plan, began: float, processes: int) -> str:
    """Merge this run's records into ``results.jsonl``; the summary as JSON text."""
    per_rank: dict[int, int] = {}
    done = failed = 0
    for rank, record in store.rank_records():
        per_rank[rank] = per_rank.get(rank, 0) + 1
        done += record.get("status") == "done"
        failed += record.get("status") == "failed"
    merged = store.consolidate(plan.order)
    listed = set(plan.order)
    failures = [r for k, r in merged.items() if k in listed and state_of(r) == "failed"]
    summary = BatchSummary(
        total=len(plan.order),
        done=done,
        failed=failed + plan.invalid,
        skipped_done=plan.skipped_done,
        skipped_failed=plan.skipped_failed,
        seconds=time.monotonic() - began,
        processes=processes,
        results_path=store.results_path,
        failures=failures,
        invalid=plan.invalid,
        per_rank=per_rank,
    )
    data = summary.to_dict()
    with RankLog(store.runs_path) as runs:
        runs.append({**data, "failures": len(failures), "time": utc_now()})
    return json.dumps(data)
