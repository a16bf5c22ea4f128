"""Job lists: JSONL and CSV, bad lines become failing jobs, settings and fingerprints."""

from __future__ import annotations

from pathlib import Path

import pytest

from emo.errors import InputError
from emo.jobs.spec import jobs_from_records, read_jobs


def test_jsonl_and_csv_give_the_same_jobs(tmp_path: Path) -> None:
    (tmp_path / "jobs.jsonl").write_text(
        '{"portrait": "p.png", "audio": "a.wav", "output": "x/one.mp4", "seed": 7}\n'
        "\n"
        "# a comment\n"
        '{"portrait": "p.png", "audio": "b.wav", "output": "two.webm", "steps": 3, "fps": 30}\n'
    )
    (tmp_path / "jobs.csv").write_text(
        "portrait,audio,output,seed,steps,fps\n"
        "p.png,a.wav,x/one.mp4,7,,\n"
        "p.png,b.wav,two.webm,,3,30\n"
    )
    from_json, from_csv = read_jobs(tmp_path / "jobs.jsonl"), read_jobs(tmp_path / "jobs.csv")
    assert [j.output for j in from_json] == ["x/one.mp4", "two.webm"]
    assert [(j.output, dict(j.settings), j.error) for j in from_json] == [
        (j.output, dict(j.settings), j.error) for j in from_csv
    ]
    assert [j.line for j in from_json] == [1, 4]
    assert from_json[1].settings == {"steps": 3, "fps": 30.0}
    assert isinstance(from_csv[1].settings["steps"], int)
    # Relative inputs are relative to the job file's folder.
    assert from_csv[0].input_path("audio") == tmp_path.resolve() / "a.wav"


def test_bad_lines_become_failing_jobs_and_the_rest_stay(tmp_path: Path) -> None:
    (tmp_path / "jobs.jsonl").write_text(
        '{"portrait": "p.png", "audio": "a.wav", "output": "ok.mp4"}\n'
        "not json\n"
        '["a", "list"]\n'
        '{"portrait": "p.png", "audio": "a.wav"}\n'
        '{"portrait": "p.png", "audio": "a.wav", "output": "../escape.mp4"}\n'
        '{"portrait": "p.png", "audio": "a.wav", "output": "s.mp4", "seed": "seven"}\n'
        '{"portrait": "p.png", "audio": "a.wav", "output": "u.mp4", "colour": "red"}\n'
        '{"portrait": "p.png", "audio": "a.wav", "output": "ok.mp4"}\n'
        '{"portrait": "p.png", "audio": "a.wav", "output": "z.mp4", "size": 64, "width": 32}\n'
    )
    jobs = read_jobs(tmp_path / "jobs.jsonl")
    assert jobs[0].error is None and jobs[0].key == "ok.mp4"
    errors = [j.error or "" for j in jobs[1:]]
    assert "not valid JSON" in errors[0]
    assert "not a JSON object" in errors[1]
    assert "output must be" in errors[2]
    assert "relative path inside the output folder" in errors[3]
    assert "seed must be a number" in errors[4]
    assert "unknown field(s) 'colour'" in errors[5]
    assert "also the output of line 1" in errors[6]
    assert "not both" in errors[7]
    # Every invalid line has its own results key: none hides another job's record.
    keys = [j.key for j in jobs]
    assert len(set(keys)) == len(keys) and keys[7] == "<line 8>"


def test_csv_cells_are_checked(tmp_path: Path) -> None:
    (tmp_path / "jobs.csv").write_text(
        "portrait,audio,output,steps\np.png,a.wav,a.mp4,2.5\np.png,a.wav,b.mp4,2,extra\n"
    )
    first, second = read_jobs(tmp_path / "jobs.csv")
    assert "steps '2.5' is not an integer" in (first.error or "")
    assert "more cells than the header" in (second.error or "")


def test_a_list_that_cannot_be_read_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_jobs(tmp_path / "missing.jsonl")
    (tmp_path / "jobs.csv").write_text("image,sound\np.png,a.wav\n")
    with pytest.raises(InputError, match="missing: portrait, audio, output"):
        read_jobs(tmp_path / "jobs.csv")


def test_settings_defaults_and_fingerprint() -> None:
    (job,) = jobs_from_records(
        [{"portrait": "p.png", "audio": "a.wav", "output": "o.mp4", "size": 64, "seed": 3}]
    )
    defaults = {"steps": 5, "height": 32, "width": 32, "seed": 0}
    seed, arguments = job.call_arguments(defaults)
    assert seed == 3
    assert arguments == {"num_inference_steps": 5, "height": 64, "width": 64}
    base = job.fingerprint(defaults)
    assert job.fingerprint(dict(defaults)) == base
    assert job.fingerprint({**defaults, "steps": 6}) != base  # a new default: made again
    assert job.fingerprint(defaults, extra="another model") != base
    (moved,) = jobs_from_records(
        [{"portrait": "p.png", "audio": "a.wav", "output": "o.mp4", "size": 64, "seed": 4}]
    )
    assert moved.fingerprint(defaults) != base
