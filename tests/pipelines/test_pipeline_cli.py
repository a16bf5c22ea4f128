"""``emo generate`` from the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import pytest

from emo.cli import main


def test_generate_writes_a_video(
    portrait_path: Path, speech_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo.mp4"
    code = main(
        [
            "generate",
            str(portrait_path),
            str(speech_path),
            "-o",
            str(out),
            "--steps",
            "1",
            "--size",
            "32",
            "--face-mask",
            "full",
            "--quiet",
            "--seed",
            "1",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "RANDOM weights" in captured.err and "wrote" in captured.out
    with av.open(str(out)) as container:
        assert container.streams.video and container.streams.audio


def test_generate_bad_input_exits_1_without_traceback(tmp_path: Path, speech_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "emo.cli",
            "generate",
            str(tmp_path / "nope.png"),
            str(speech_path),
            "-o",
            str(tmp_path / "x.mp4"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "nope.png" in result.stderr
    assert not (tmp_path / "x.mp4").exists()


def test_generate_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["generate", "only-one-arg"])
    assert info.value.code == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--size", "0"], "--size must be positive"),
        (["--size", "30"], "multiple of 8"),
        (["--steps", "0"], "--steps must be positive"),
        (["--fps", "-1"], "--fps must be positive"),
        (["--device", "meta"], "meta"),
        (["--box", "1,2,3"], "four numbers"),
    ],
)
def test_generate_rejects_bad_options_before_loading(
    portrait_path: Path,
    speech_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    out = tmp_path / "x.mp4"
    code = main(["generate", str(portrait_path), str(speech_path), "-o", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 1 and message in err
    assert "RANDOM weights" not in err  # failed before any model was built
    assert not out.exists()


def test_generate_empty_output_and_unknown_suffix(
    portrait_path: Path, speech_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", str(portrait_path), str(speech_path), "-o", ""]) == 1
    assert "empty" in capsys.readouterr().err
    assert main(["generate", str(portrait_path), str(speech_path), "-o", "x.docx"]) == 1
    assert "no video writer" in capsys.readouterr().err


def test_generate_with_a_box(portrait_path: Path, speech_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "box.mp4"
    code = main(
        ["generate", str(portrait_path), str(speech_path), "-o", str(out), "--steps", "1",
         "--size", "32", "--box", "0.3,0.2,0.7,0.6", "--quiet"]
    )  # fmt: skip
    assert code == 0 and out.is_file()
