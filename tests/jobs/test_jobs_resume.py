"""One process: results records, bad inputs fail their own job, resume, retry, the command."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from jobs_helpers import results, tree, write_jobs

from emo.cli import main
from emo.errors import OutputInUseError
from emo.io.claim import OutputClaim
from emo.jobs.results import RankLog, read_records, sha256_of
from emo.pipelines.emo_pipeline import EMOPipeline


def _job(portrait: Path, audio: Path, output: str, **settings: object) -> dict[str, object]:
    return {"portrait": str(portrait), "audio": str(audio), "output": output, **settings}


def test_each_job_makes_the_video_a_single_call_makes(
    pipe: EMOPipeline, portrait: Path, clips: list[Path], tmp_path: Path
) -> None:
    jobs = [
        _job(portrait, clips[0], "a/one.mp4", seed=3),
        _job(portrait, clips[1], "two.mp4", steps=1),
    ]
    summary = pipe.generate_many(jobs, tmp_path / "out", progress=False, defaults={"seed": 5})
    assert (summary.done, summary.failed, summary.total, summary.processes) == (2, 0, 2, 1)
    assert summary.ok and summary.per_rank == {0: 2}

    for name, audio, seed, steps in (("a/one.mp4", clips[0], 3, None), ("two.mp4", clips[1], 5, 1)):
        single = tmp_path / "single" / name
        single.parent.mkdir(parents=True, exist_ok=True)
        pipe(
            str(portrait),
            str(audio),
            generator=torch.Generator("cpu").manual_seed(seed),
            num_inference_steps=steps,
            output_path=single,
        )
        assert (tmp_path / "out" / name).read_bytes() == single.read_bytes(), name

    record = results(tmp_path / "out")["a/one.mp4"]
    out_file = tmp_path / "out" / "a" / "one.mp4"
    assert record["status"] == "done" and record["path"] == str(out_file.absolute())
    assert (record["frames"], record["fps"], record["seed"]) == (8, 25.0, 3)
    assert record["sha256"] == sha256_of(out_file)
    assert record["portrait_sha256"] == sha256_of(portrait)
    assert record["audio_sha256"] == sha256_of(clips[0])
    assert record["seconds"] > 0 and record["rank"] == 0
    assert set(tree(tmp_path / "out")) == {"a/one.mp4", "two.mp4"}  # no temporaries


def test_a_bad_input_fails_its_own_job_and_the_run_goes_on(
    pipe: EMOPipeline, portrait: Path, clips: list[Path], tmp_path: Path
) -> None:
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("these are not samples")
    jobs = [
        _job(tmp_path / "missing.png", clips[0], "no_portrait.mp4"),
        _job(portrait, not_audio, "not_audio.mp4"),
        _job(portrait, clips[0], "bad_suffix.txt"),
        _job(portrait, clips[0], "bad_size.mp4", size=30),
        {"portrait": str(portrait), "output": "no_audio.mp4"},
        _job(portrait, clips[0], "good.mp4"),
    ]
    summary = pipe.generate_many(jobs, tmp_path / "out", progress=False)
    assert (summary.done, summary.failed, summary.invalid) == (1, 5, 1)
    found = results(tmp_path / "out")
    assert found["good.mp4"]["status"] == "done"
    errors = {k: (r["error"], r["message"]) for k, r in found.items() if r["status"] == "failed"}
    assert errors["no_portrait.mp4"][0] == "ImageError"
    assert "missing.png" in errors["no_portrait.mp4"][1]
    assert errors["not_audio.mp4"][0] == "AudioError"
    assert errors["bad_suffix.txt"][0] == "VideoError"
    assert (
        errors["bad_size.mp4"][0] == "InputError" and "multiples of 8" in errors["bad_size.mp4"][1]
    )
    assert "audio must be a file path" in errors["<line 5>"][1]
    assert [f["job"] for f in summary.failures] == [
        "no_portrait.mp4",
        "not_audio.mp4",
        "bad_suffix.txt",
        "bad_size.mp4",
        "<line 5>",
    ]
    assert set(tree(tmp_path / "out")) == {"good.mp4"}
    assert "failed: no_portrait.mp4 (line 1): ImageError:" in summary.format()


def test_a_rerun_skips_verified_outputs_and_remakes_broken_or_changed_ones(
    pipe: EMOPipeline, portrait: Path, clips: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    jobs = [_job(portrait, clips[i], f"v{i}.mp4", seed=i) for i in range(4)]
    pipe.generate_many(jobs, out, progress=False)
    first = tree(out)
    stats = {name: os.stat(out / name) for name in first}

    again = pipe.generate_many(jobs, out, progress=False)
    assert (again.done, again.skipped_done, again.failed) == (0, 4, 0)
    for name, stat in stats.items():  # not rewritten
        now = os.stat(out / name)
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert {r["status"] for r in results(out).values()} == {"skipped"}

    (out / "v0.mp4").write_bytes(first["v0.mp4"][:-100])  # truncated
    (out / "v1.mp4").unlink()
    jobs[2] = {**jobs[2], "seed": 10}  # the job changed
    third = pipe.generate_many(jobs, out, progress=False)
    assert (third.done, third.skipped_done) == (3, 1)
    remade = tree(out)
    assert remade["v0.mp4"] == first["v0.mp4"] and remade["v1.mp4"] == first["v1.mp4"]
    assert remade["v2.mp4"] != first["v2.mp4"] and remade["v3.mp4"] == first["v3.mp4"]
    assert {r["status"] for r in results(out).values()} == {"done", "skipped"}
    # A new default (or model) is a change too.
    fourth = pipe.generate_many(jobs, out, progress=False, fingerprint="another model")
    assert fourth.done == 4


def test_failed_jobs_are_retried_only_when_asked(
    pipe: EMOPipeline, portrait: Path, clips: list[Path], tmp_path: Path
) -> None:
    out, later = tmp_path / "out", tmp_path / "later.png"
    jobs = [_job(later, clips[0], "late.mp4"), _job(portrait, clips[1], "fine.mp4")]
    first = pipe.generate_many(jobs, out, progress=False)
    assert (first.done, first.failed) == (1, 1)
    failed_at = results(out)["late.mp4"]["time"]

    shutil.copy(portrait, later)  # the input is fixed, the job line is the same
    second = pipe.generate_many(jobs, out, progress=False)
    assert (second.done, second.failed, second.skipped_failed, second.skipped_done) == (0, 0, 1, 1)
    record = results(out)["late.mp4"]
    assert (record["status"], record["was"], record["time"]) == ("skipped", "failed", failed_at)
    assert not second.ok and second.failures[0]["job"] == "late.mp4"

    third = pipe.generate_many(jobs, out, progress=False, retry_failed=True)
    assert (third.done, third.failed, third.skipped_done) == (1, 0, 1)
    assert third.ok and results(out)["late.mp4"]["status"] == "done"


def test_a_second_run_on_the_same_folder_is_refused(
    pipe: EMOPipeline, portrait: Path, clips: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with OutputClaim(out / "results.jsonl"), pytest.raises(OutputInUseError, match="results"):
        pipe.generate_many([_job(portrait, clips[0], "a.mp4")], out, progress=False)
    assert not (out / "a.mp4").exists()


def test_a_torn_last_line_is_skipped_and_the_next_record_starts_a_line(tmp_path: Path) -> None:
    path = tmp_path / "results.rank-00000.jsonl"
    with RankLog(path) as log:
        log.append({"job": "a.mp4", "status": "done"})
    with open(path, "a") as file:
        file.write('{"job": "b.mp4", "sta')  # killed while writing
    with RankLog(path) as log:
        log.append({"job": "c.mp4", "status": "failed"})
    assert [r["job"] for r in read_records(path)] == ["a.mp4", "c.mp4"]


def test_the_command_shows_progress_prints_a_summary_and_says_1_when_a_job_failed(
    model_dir: Path,
    portrait: Path,
    clips: list[Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    jobs = write_jobs(
        tmp_path / "jobs.jsonl",
        [_job(portrait, clips[0], "a.mp4"), _job(tmp_path / "nope.png", clips[0], "b.mp4")],
    )
    out = tmp_path / "out"
    args = ["generate-many", str(jobs), "-o", str(out), "--model", str(model_dir)]
    assert main([*args, "--threads", "1", "--steps", "1"]) == 1
    captured = capsys.readouterr()
    assert "emo jobs" in captured.err and "done=1 failed=1" in captured.err
    assert "emo: 2 jobs: 1 done, 1 failed" in captured.out and "nope.png" in captured.out
    assert results(out)["a.mp4"]["status"] == "done"

    write_jobs(jobs, [_job(portrait, clips[0], "a.mp4")])  # the bad job left out
    assert main([*args, "--threads", "1", "--steps", "1", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "1 done before (skipped)" in captured.out and captured.err == ""
    assert main([*args, "--threads", "1", "--quiet"]) == 0  # --steps changed: made again
    assert "emo: 1 job: 1 done" in capsys.readouterr().out


def test_the_progress_bar_counts_the_records_of_every_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from emo.jobs.progress import BatchProgress
    from emo.jobs.results import ResultsStore

    store = ResultsStore(tmp_path)
    with (
        BatchProgress(store, 4, skipped=2, interval=3600) as bar,
        RankLog(store.rank_path(0)) as zero,
        RankLog(store.rank_path(1)) as one,
    ):
        zero.append({"job": "a.mp4", "status": "done"})
        one.append({"job": "b.mp4", "status": "failed"})
        with open(store.rank_path(1), "a") as file:
            file.write('{"job": "c.mp4", "status": "do')  # being written
        bar.refresh()
        assert (bar.done, bar.failed) == (1, 1)
        with open(store.rank_path(1), "a") as file:
            file.write('ne"}\n')
        bar.refresh()
        assert (bar.done, bar.failed) == (2, 1)
    err = capsys.readouterr().err
    assert "3/4" in err and "done=2 failed=1 skipped=2" in err
