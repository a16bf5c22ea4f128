"""The job list: one video per line of a JSONL or CSV file.

Every job names a portrait, an audio track and an output name (a path under the
output folder), and may set its own seed and generation settings::

    {"portrait": "faces/ann.png", "audio": "lines/001.wav", "output": "ann/001.mp4", "seed": 7}

    portrait,audio,output,seed,steps
    faces/ann.png,lines/001.wav,ann/001.mp4,7,
    faces/bob.jpg,lines/002.flac,bob/002.webm,,20

Relative input paths are relative to the job file's folder. A line that is not a
valid job (no output name, an unknown field, a seed that is not a number...) becomes
a job that fails with a message saying what is wrong; it never stops the other jobs.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from emo.errors import InputError

__all__ = ["FIELDS", "SETTINGS", "Job", "job_list", "jobs_from_records", "line_key", "read_jobs"]

#: Per-job settings and their types. ``steps`` is ``num_inference_steps``; ``size``
#: sets both ``height`` and ``width``.
SETTINGS: dict[str, type] = {
    "seed": int,
    "steps": int,
    "size": int,
    "height": int,
    "width": int,
    "fps": float,
    "guidance_scale": float,
    "reference_guidance_scale": float,
    "init_strength": float,
    "head_motion_speed": float,
}
#: Every field a job line may have.
FIELDS = ("portrait", "audio", "output", *SETTINGS)
_REQUIRED = ("portrait", "audio", "output")
#: Job setting -> argument of :meth:`EMOPipeline.__call__` (``seed`` and ``size`` aside).
_CALL_NAMES = {"steps": "num_inference_steps"}


def line_key(line: int) -> str:
    """The results key of a line that is not a valid job: ``"<line 12>"``."""
    return f"<line {line}>"


def is_line_key(key: str) -> bool:
    """Whether ``key`` is a :func:`line_key`."""
    return key.startswith("<line ") and key.endswith(">")


@dataclass(frozen=True)
class Job:
    """One video to make.

    Attributes
    ----------
    index
        Position in the job list (0-based).
    line
        Line of the job file it came from (1-based).
    output
        The output name: a relative POSIX path under the output folder, or ``None`` when
        the line has none (then :attr:`error` says so).
    portrait, audio
        The input paths as written in the job line.
    base
        The folder relative input paths are resolved against.
    settings
        The job's own settings (keys of :data:`SETTINGS`), already of the right type.
    error
        Why the line is not a valid job, or ``None``.
    """

    index: int
    line: int
    output: str | None
    portrait: str | None = None
    audio: str | None = None
    base: str = "."
    settings: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def key(self) -> str:
        """The name that identifies the job in the results: its output name, or for a line
        that is not a valid job :func:`line_key` (two lines never share a key)."""
        return (
            self.output if self.output is not None and self.error is None else line_key(self.line)
        )

    def input_path(self, which: str) -> Path:
        """The portrait's or the audio's path, resolved against :attr:`base`."""
        value = self.portrait if which == "portrait" else self.audio
        return Path(self.base) / str(value)

    def merged_settings(self, defaults: Mapping[str, Any]) -> dict[str, Any]:
        """The job's settings over ``defaults`` (a setting the job leaves out comes from there)."""
        merged = {k: v for k, v in defaults.items() if v is not None}
        merged.update(self.settings)
        if "size" in self.settings:  # the job's own size beats default heights and widths
            merged.pop("height", None)
            merged.pop("width", None)
        return merged

    def fingerprint(self, defaults: Mapping[str, Any], extra: str = "") -> str:
        """SHA-256 of what decides the video: inputs as written, output, settings, ``extra``.

        A job whose fingerprint changed since its output was made is made again.
        """
        text = json.dumps(
            {
                "portrait": self.portrait,
                "audio": self.audio,
                "output": self.output,
                "settings": self.merged_settings(defaults),
                "extra": extra,
            },
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def call_arguments(self, defaults: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """The seed and the keyword arguments of :meth:`EMOPipeline.__call__` for this job."""
        merged = self.merged_settings(defaults)
        seed = int(merged.pop("seed", 0))
        size = merged.pop("size", None)
        if size is not None:
            merged["height"] = merged["width"] = size
        return seed, {_CALL_NAMES.get(k, k): v for k, v in merged.items()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (:meth:`from_dict` reads it back)."""
        return {
            "index": self.index,
            "line": self.line,
            "output": self.output,
            "portrait": self.portrait,
            "audio": self.audio,
            "base": self.base,
            "settings": dict(self.settings),
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        """The job :meth:`to_dict` described."""
        return cls(**{**data, "settings": dict(data["settings"])})


def _convert(name: str, value: Any, from_text: bool) -> Any:
    """``value`` as the type of setting ``name``; raises ``ValueError`` with the reason."""
    kind = SETTINGS[name]
    if from_text:
        text = str(value).strip()
        try:
            return int(text) if kind is int else float(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise ValueError(f"{name} {text!r} is not {what}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {json.dumps(value)}")
    if kind is int:
        if not float(value).is_integer():
            raise ValueError(f"{name} must be a whole number, got {value}")
        return int(value)
    return float(value)


def _output_name(value: Any) -> str:
    """The normalised output name; raises ``ValueError`` when it is not a relative path."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("output must be a non-empty file name such as 'ann/001.mp4'")
    path = PurePosixPath(value.strip().replace(os.sep, "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(
            f"output {value!r} must be a relative path inside the output folder (no '..', "
            "not absolute)"
        )
    return path.as_posix()


def _job(
    index: int,
    line: int,
    fields: Mapping[str, Any],
    base: str,
    from_text: bool,
    problems: list[str] | None = None,
) -> Job:
    """Build one job from a line's fields; a bad line gives a job with ``error`` set."""
    problems = list(problems or [])
    output: str | None = None
    try:
        output = _output_name(fields.get("output"))
    except ValueError as exc:
        problems.append(str(exc))
    unknown = sorted(k for k in fields if k not in FIELDS)
    if unknown:
        problems.append(
            f"unknown field(s) {', '.join(map(repr, unknown))} (known: {', '.join(FIELDS)})"
        )
    inputs: dict[str, str | None] = {}
    for name in ("portrait", "audio"):
        value = fields.get(name)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{name} must be a file path")
            inputs[name] = None
        else:
            inputs[name] = value.strip()
    settings: dict[str, Any] = {}
    for name in SETTINGS:
        value = fields.get(name)
        if value is None or (from_text and str(value).strip() == ""):
            continue
        try:
            settings[name] = _convert(name, value, from_text)
        except ValueError as exc:
            problems.append(str(exc))
    if "size" in settings and ("height" in settings or "width" in settings):
        problems.append("give size, or height and width, not both")
    return Job(
        index=index,
        line=line,
        output=output,
        portrait=inputs["portrait"],
        audio=inputs["audio"],
        base=base,
        settings=settings,
        error="; ".join(problems) or None,
    )


def _mark_duplicates(jobs: list[Job]) -> list[Job]:
    """Jobs after the first with the same output fail: two jobs never write one file."""
    first: dict[str, int] = {}
    out: list[Job] = []
    for job in jobs:
        name = job.output
        if name is not None and job.error is None:
            if name in first:
                message = (
                    f"output {name!r} is also the output of line {first[name]}; "
                    "give each job its own output name"
                )
                job = replace(job, error=message)
            else:
                first[name] = job.line
        out.append(job)
    return out


def _read_jsonl(text: str, base: str) -> list[Job]:
    jobs: list[Job] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            fields = json.loads(stripped)
        except json.JSONDecodeError as exc:
            fields, problem = {}, f"line {number} is not valid JSON ({exc.msg})"
        else:
            problem = "" if isinstance(fields, dict) else f"line {number} is not a JSON object"
        if problem:
            jobs.append(Job(index=len(jobs), line=number, output=None, base=base, error=problem))
        else:
            jobs.append(_job(len(jobs), number, fields, base, from_text=False))
    return jobs


def _read_csv(text: str, base: str, name: str) -> list[Job]:
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [h for h in _REQUIRED if h not in header]
    if missing:
        raise InputError(
            f"job list {name!r}: the CSV header must name the columns portrait, audio and "
            f"output (missing: {', '.join(missing)}; found: {', '.join(header) or 'nothing'})"
        )
    reader.fieldnames = header
    jobs: list[Job] = []
    for row in reader:
        fields = {k: v for k, v in row.items() if k is not None and v is not None and v != ""}
        if not fields:
            continue
        problems = [] if None not in row else ["the row has more cells than the header has columns"]
        jobs.append(_job(len(jobs), reader.line_num, fields, base, True, problems))
    return jobs


def read_jobs(path: str | os.PathLike[str]) -> list[Job]:
    """Read a job list: JSONL (``.jsonl``, ``.ndjson``) or CSV (``.csv``), else by its first character.

    JSONL: one JSON object per line; blank lines and lines starting with ``#`` are
    skipped. CSV: a header row naming the columns (``portrait``, ``audio``, ``output``
    and any of :data:`SETTINGS`); an empty cell leaves a setting to the defaults.

    Raises
    ------
    InputError
        If the file cannot be read, or a CSV file lacks a required column. A bad line
        never raises: it becomes a job whose :attr:`Job.error` says what is wrong.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"job list {str(file)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the job list {str(file)!r}: {exc}") from exc
    base = str(file.resolve().parent)
    suffix = file.suffix.lower()
    if suffix in (".jsonl", ".ndjson") or (suffix != ".csv" and text.lstrip().startswith("{")):
        jobs = _read_jsonl(text, base)
    else:
        jobs = _read_csv(text, base, str(file))
    return _mark_duplicates(jobs)


def jobs_from_records(
    records: Iterable[Mapping[str, Any] | Job], base: str | os.PathLike[str] = "."
) -> list[Job]:
    """Jobs from mappings with the fields of a JSONL line (or :class:`Job` objects, renumbered).

    Relative input paths are resolved against ``base`` (by default the working folder).
    """
    root = str(Path(base).resolve())
    jobs: list[Job] = []
    for number, record in enumerate(records, start=1):
        if isinstance(record, Job):
            jobs.append(Job(**{**record.to_dict(), "index": len(jobs), "line": number}))
        elif isinstance(record, Mapping):
            jobs.append(_job(len(jobs), number, record, root, from_text=False))
        else:
            problem = f"job {number} must be a mapping, got {type(record).__name__}"
            jobs.append(Job(index=len(jobs), line=number, output=None, base=root, error=problem))
    return _mark_duplicates(jobs)


def job_list(
    jobs: str | os.PathLike[str] | Sequence[Mapping[str, Any] | Job],
) -> list[Job]:
    """A job file's jobs, or :func:`jobs_from_records` of a sequence."""
    if isinstance(jobs, (str, os.PathLike)):
        return read_jobs(jobs)
    return jobs_from_records(jobs)
