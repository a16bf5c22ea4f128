"""The benchmark can fail: truth scores high, delays, frozen mouths and wrong audio score low."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dlib", reason="the benchmark measures faces with emo[face]")

from emo.datasets.synthetic import make_clip, write_clip
from emo.evaluation import (
    BenchmarkReport,
    heldout_cases,
    run_benchmark,
    score_video_file,
    truth_generator,
)


@pytest.fixture(scope="module")
def report() -> BenchmarkReport:
    cases = heldout_cases(1, speeds=(0.0, 2.0), duration=2.4, singing=False)
    other = {}

    def other_audio(truth: object) -> object:
        if "clip" not in other:
            other["clip"] = make_clip(7, 99, duration=2.4, split="heldout")
        return other["clip"]

    generators = {
        "truth": truth_generator(),
        "late": truth_generator(delay=3),
        "frozen": truth_generator(frozen_mouth=True),
        "other audio": truth_generator(audio_of=other_audio),  # type: ignore[arg-type]
    }
    return run_benchmark(generators, cases, frames_per_clip=12, identity_frames=2)


def test_ground_truth_scores_near_perfect(report: BenchmarkReport) -> None:
    truth = report.summary()["truth"]
    assert truth["lip_sync_truth"] > 0.9
    assert truth["offset_truth"] == 0
    assert truth["face_ratio"] > 0.9
    assert truth["identity"] > 0.97


def test_late_video_gives_its_delay_as_a_negative_offset(report: BenchmarkReport) -> None:
    late = report.summary()["late"]
    assert late["offset_truth"] == -3
    assert late["lip_sync_truth"] < report.summary()["truth"]["lip_sync_truth"] - 0.2


def test_frozen_mouth_and_other_audio_score_near_zero(report: BenchmarkReport) -> None:
    summary = report.summary()
    assert abs(summary["frozen"]["lip_sync_truth"]) < 0.3
    assert abs(summary["other audio"]["lip_sync_truth"]) < 0.3
    assert abs(summary["frozen"]["lip_sync_loudness"]) < 0.3


def test_head_motion_rises_with_the_requested_speed(report: BenchmarkReport) -> None:
    by_speed = report.summary()["truth"]["by_speed"]
    assert by_speed["2"]["head_velocity_mean"] > by_speed["0"]["head_velocity_mean"] + 0.5
    assert by_speed["2"]["box_motion"] > 2 * by_speed["0"]["box_motion"]
    assert report.summary()["truth"]["velocity_rises"] is True
    assert "Head velocity rises with the requested speed: truth: yes" in report.to_markdown()


def test_report_tables_and_json(report: BenchmarkReport, tmp_path: Path) -> None:
    table = report.to_markdown()
    assert "| metric | truth | late | frozen | other audio | late / truth |" in table
    assert "lip sync r vs truth" in table and "requested speed" in table
    data = json.loads(json.dumps(report.to_json()))
    assert set(data["cases"]) == {"truth", "late", "frozen", "other audio"}
    assert len(data["cases"]["truth"]) == 2
    assert data["summary"]["truth"]["seconds_per_frame"] >= 0


def test_audio_shifted_by_k_frames_in_a_file_gives_offset_k(tmp_path: Path) -> None:
    clip = make_clip(0, 500, duration=3.0, split="heldout", speed=0.5)
    k = 2
    samples = k * clip.audio.sample_rate // 25
    shifted = np.concatenate([np.zeros(samples, np.float32), clip.audio.waveform[:-samples]])
    late_audio = type(clip.audio)(shifted, clip.audio.sample_rate, clip.audio.units, "speech", 0)
    import dataclasses

    path = write_clip(dataclasses.replace(clip, audio=late_audio), tmp_path / "late.mp4")
    score = score_video_file(path)  # the sidecar's truth is read too
    assert score.lip_sync_loudness is not None and score.lip_sync_truth is not None
    assert score.lip_sync_loudness.offset == k
    assert score.lip_sync_truth.offset == 0  # the picture itself is in sync with its truth
    assert score.lip_sync_truth.correlation > 0.9


def test_an_untrained_pipeline_runs_and_fails_the_benchmark() -> None:
    import torch

    from emo import EMOPipeline
    from emo.evaluation import pipeline_generator

    pipe = EMOPipeline.from_preset("tiny", face_mask="full")
    pipe.set_progress_bar_config(disable=True)
    generate = pipeline_generator(
        pipe, num_inference_steps=1, generator=torch.Generator().manual_seed(0)
    )
    cases = heldout_cases(1, speeds=(1.0,), duration=0.5, size=64, singing=False)
    report = run_benchmark(
        {"truth": truth_generator(), "random": generate}, cases, frames_per_clip=12
    )
    summary = report.summary()
    assert summary["truth"]["face_ratio"] > 0.9
    assert summary["random"]["face_ratio"] < 0.5  # noise: no face, so no lip sync
    assert summary["random"]["seconds_per_frame"] > summary["truth"]["seconds_per_frame"]
    assert summary["random"]["peak_rss_mib"] > 0
    assert "random / truth" in report.to_markdown()
