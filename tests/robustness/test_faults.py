"""Fault injection: signals, full disks, huge and truncated inputs, NaN, concurrent writers.

Every case checks the exit code (or exception), the one-line message, that no
partial or temporary file is left (for SIGKILL: after the next run) and that an
output file that existed before is untouched. Real generations run in
subprocesses (``emo generate`` with the tiny preset on one second of speech).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from emo.cli import main as cli_main
from emo.errors import (
    ImageTooLargeError,
    InputTooLargeError,
    NumericalError,
    OutputInUseError,
)
from emo.io.writers.pyav import MP4Writer
from emo.limits import limits_changed
from emo.pipelines.emo_pipeline import EMOPipeline
from emo.pipelines.settings import PipelineSettings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
OLD_BYTES = b"an earlier video the user wants to keep\n"
#: Seed of the random signal times; printed in every failure message.
SEED = int(os.environ.get("EMO_FAULT_SEED", "18"))
#: Arguments of a quick but real generation (tiny preset, random weights, 32 px).
QUICK = ["--size", "32", "--face-mask", "full", "--quiet", "--seed", "0"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    samples, rate = sf.read(str(EXAMPLES / "speech.wav"), dtype="float32")
    speech = folder / "speech1s.wav"
    sf.write(str(speech), samples[:rate], rate)
    return {"image": EXAMPLES / "portrait.png", "audio": speech}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def entries(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def emo_command(inputs: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "emo.cli",
        "generate",
        str(inputs["image"]),
        str(inputs["audio"]),
        "-o",
        str(out),
        *QUICK,
        *extra,
    ]


def start(command: list[str], **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,  # type: ignore[call-overload]
    )


def wait_for_line(process: subprocess.Popen[str], text: str, timeout: float = 120.0) -> list[str]:
    """Read stderr lines until one contains ``text`` (emo is then inside ``main``)."""
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} never appeared on stderr: {lines}")


def finish(process: subprocess.Popen[str], lines: list[str]) -> tuple[int, list[str]]:
    _, rest = process.communicate(timeout=120)
    return process.returncode, [*lines, *rest.splitlines()]


def emo_lines(lines: list[str]) -> list[str]:
    """stderr lines of emo's own messages, without the random-weights notice."""
    return [line.strip() for line in lines if line.strip() and "RANDOM weights" not in line]


# -- signals ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "code", "point"),
    [("SIGTERM", 143, 0), ("SIGTERM", 143, 1), ("SIGHUP", 129, 2)],
)
def test_terminating_signal_stops_cleanly(
    inputs: dict[str, Path], tmp_path: Path, name: str, code: int, point: int
) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(OLD_BYTES)
    # A random moment of a generation far longer (200 steps) than the delay: inside it.
    delay = random.Random(SEED * 10 + point).uniform(0.0, 2.5)
    process = start(emo_command(inputs, out, "--steps", "200"))
    lines = wait_for_line(process, "RANDOM weights")
    time.sleep(delay)
    process.send_signal(getattr(signal, name))
    returncode, lines = finish(process, lines)
    context = f"{name} after {delay:.2f} s (EMO_FAULT_SEED={SEED}): {lines}"
    assert returncode == code, context
    assert emo_lines(lines) == [f"emo: terminated by {name}"], context
    assert entries(tmp_path) == ["out.mp4"], context
    assert out.read_bytes() == OLD_BYTES, context


def test_sigkill_leftovers_are_removed_by_the_next_run(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(OLD_BYTES)
    stranger = tmp_path / ".out.mp4.user-notes.part"  # not emo's: must survive
    stranger.write_text("mine")
    process = start(emo_command(inputs, out, "--steps", "200"))
    lines = wait_for_line(process, "RANDOM weights")
    # Kill once the writer's temporary file exists: mid-generation, the worst moment.
    deadline = time.monotonic() + 60
    while not any(n.endswith(".part") and ".emo-" in n for n in entries(tmp_path)):
        assert time.monotonic() < deadline and process.poll() is None, lines
        time.sleep(0.05)
    time.sleep(random.Random(SEED).uniform(0.0, 1.0))
    process.kill()
    returncode, lines = finish(process, lines)
    assert returncode == -signal.SIGKILL
    left = [n for n in entries(tmp_path) if ".emo-" in n]
    assert left, "SIGKILL cannot clean up: something must be left for the next run"
    assert out.read_bytes() == OLD_BYTES

    again = subprocess.run(emo_command(inputs, out, "--steps", "1"), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert entries(tmp_path) == sorted([stranger.name, "out.mp4"])
    assert stranger.read_text() == "mine"
    assert out.read_bytes() != OLD_BYTES and out.stat().st_size > 1000


STUCK = """
import sys, numpy as np, torch
torch.set_num_threads(1)
from emo.interrupts import stop_on_signals
from emo.io.writers.pyav import MP4Writer
with stop_on_signals(grace_seconds=1.0):
    session = MP4Writer().open(sys.argv[1], fps=25, width=16, height=16)
    session.write(np.zeros((2, 16, 16, 3), np.uint8))
    a = torch.randn(6000, 6000)
    print("ready", flush=True)
    a @ a  # one operation of many seconds: Python cannot run a signal handler inside it
    print("the operation returned first", flush=True)
"""


def test_signal_during_a_long_operation_still_cleans_up(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(OLD_BYTES)
    process = start([sys.executable, "-c", STUCK, str(out)])
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    returncode, lines = finish(process, [])
    assert returncode == 143, lines
    assert time.monotonic() - began < 4.0
    assert emo_lines(lines) == [
        "emo: terminated by SIGTERM: the running operation did not return within 1 s, "
        "so emo stopped it (temporary files of 1 output(s) removed)"
    ]
    assert entries(tmp_path) == ["out.mp4"] and out.read_bytes() == OLD_BYTES


# -- a full file system ------------------------------------------------------------------------
def _limit_file_size() -> None:
    # Past the limit write() fails with EFBIG, like ENOSPC an error of the OS call itself.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


def test_file_size_limit_fails_cleanly(inputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(OLD_BYTES)
    result = subprocess.run(
        emo_command(inputs, out, "--steps", "1"),
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size,
    )
    lines = emo_lines(result.stderr.splitlines())
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and lines[0].startswith("emo: error: "), lines
    assert "File too large" in lines[0] and "out.mp4" in lines[0]
    assert entries(tmp_path) == ["out.mp4"]
    assert out.read_bytes() == OLD_BYTES


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KB tmpfs (needs the right to mount: root in a container; skipped otherwise)."""
    mount = tmp_path / "full"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_full_disk_fails_cleanly(inputs: dict[str, Path], small_tmpfs: Path) -> None:
    out = small_tmpfs / "out.mp4"
    out.write_bytes(OLD_BYTES)
    ballast = small_tmpfs / "ballast"
    # Leave ~8 KB: less than the video needs.
    with open(ballast, "wb") as handle, contextlib.suppress(OSError):
        handle.write(b"\0" * (256 * 1024 - 8 * 1024))
    result = subprocess.run(
        emo_command(inputs, out, "--steps", "1"), capture_output=True, text=True
    )
    lines = emo_lines(result.stderr.splitlines())
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and "No space left on device" in lines[0], lines
    assert entries(small_tmpfs) == ["ballast", "out.mp4"]
    assert out.read_bytes() == OLD_BYTES


def _limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2500 << 20, 2500 << 20))


def test_out_of_memory_is_one_line(inputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(OLD_BYTES)
    result = subprocess.run(
        emo_command(inputs, out, "--steps", "1", "--size", "4096"),
        capture_output=True,
        text=True,
        preexec_fn=_limit_address_space,
    )
    if "RANDOM weights" not in result.stderr:
        pytest.skip(f"python and torch do not start in 2.5 GB of address space: {result.stderr}")
    lines = emo_lines(result.stderr.splitlines())
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and lines[0].startswith("emo: error: not enough memory"), lines
    assert "--size 4096" in lines[0] and "smaller --size" in lines[0]
    assert entries(tmp_path) == ["out.mp4"] and out.read_bytes() == OLD_BYTES


# -- huge and truncated inputs -------------------------------------------------------------
def write_huge_png(path: Path, width: int, height: int) -> None:
    """A valid 1-bit grayscale PNG: 20000 x 20000 pixels in ~50 KB."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    row = b"\0" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def run_cli(command: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """Run ``emo`` in this process (these refusals come before any model is loaded)."""
    capsys.readouterr()
    code = cli_main(command[3:])
    return code, emo_lines(capsys.readouterr().err.splitlines())


def test_huge_png_is_refused_before_any_work(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = tmp_path / "huge.png"
    write_huge_png(huge, 20000, 20000)
    out = tmp_path / "out.mp4"
    out.write_bytes(OLD_BYTES)
    command = emo_command({**inputs, "image": huge}, out, "--steps", "1")
    code, lines = run_cli(command, capsys)
    assert code == 1
    assert len(lines) == 1 and "20000x20000" in lines[0] and "EMO_MAX_IMAGE_PIXELS" in lines[0]
    assert "corrupt" not in lines[0]
    assert entries(tmp_path) == ["huge.png", "out.mp4"] and out.read_bytes() == OLD_BYTES
    # The same file in Python, and the limit raised: then FFmpeg's own ceiling is named.
    from emo.io.image import load_image

    with pytest.raises(ImageTooLargeError, match="100,000,000"):
        load_image(huge)
    with limits_changed(max_image_pixels=None), pytest.raises(ImageTooLargeError, match="FFmpeg"):
        load_image(huge)


def test_long_audio_and_huge_frames_are_refused_before_any_work(
    inputs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "out.mp4"
    with monkeypatch.context() as patch:
        patch.setenv("EMO_MAX_AUDIO_SECONDS", "0.5")
        code, lines = run_cli(emo_command(inputs, out, "--steps", "1"), capsys)
    assert code == 1 and len(lines) == 1, lines
    assert "0:00:01" in lines[0] and "EMO_MAX_AUDIO_SECONDS" in lines[0]
    code, lines = run_cli(emo_command(inputs, out, "--steps", "1", "--size", "8192"), capsys)
    assert code == 1 and len(lines) == 1, lines
    assert "8192x8192" in lines[0] and "EMO_MAX_FRAME_PIXELS" in lines[0]
    assert entries(tmp_path) == []


def test_truncated_image_is_named_corrupt(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = tmp_path / "cut.png"
    cut.write_bytes(inputs["image"].read_bytes()[:3000])
    out = tmp_path / "out.mp4"
    out.write_bytes(OLD_BYTES)
    code, lines = run_cli(emo_command({**inputs, "image": cut}, out, "--steps", "1"), capsys)
    assert code == 1 and len(lines) == 1, lines
    assert "cut.png" in lines[0] and "corrupt" in lines[0]
    assert entries(tmp_path) == ["cut.png", "out.mp4"] and out.read_bytes() == OLD_BYTES


def test_truncated_audio(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(OLD_BYTES)
    # A video's audio cut in half: the container is unreadable, said in one line.
    frames = np.zeros((25, 32, 32, 3), dtype=np.uint8)
    samples, rate = sf.read(str(inputs["audio"]), dtype="float32")
    whole = tmp_path / "whole.mp4"
    MP4Writer().write(frames, whole, fps=25, audio=samples, sample_rate=rate)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    whole.unlink()
    code, lines = run_cli(emo_command({**inputs, "audio": cut}, out, "--steps", "1"), capsys)
    assert code == 1 and len(lines) == 1, lines
    assert "cut.mp4" in lines[0] and "corrupt" in lines[0]
    assert entries(tmp_path) == ["cut.mp4", "out.mp4"] and out.read_bytes() == OLD_BYTES
    # A WAV cut short still holds valid samples: the video is as long as they are.
    short = tmp_path / "short.wav"
    short.write_bytes(inputs["audio"].read_bytes()[:20_000])  # 44-byte header + 9978 samples
    code, lines = run_cli(emo_command({**inputs, "audio": short}, out, "--steps", "1"), capsys)
    assert code == 0, lines
    import av

    with av.open(str(out)) as container:
        assert container.streams.video[0].frames == 16  # ceil(9978 / 16000 * 25)


# -- NaN in a step -------------------------------------------------------------------------
FAST = PipelineSettings(
    height=32,
    width=32,
    fps=25.0,
    frames_per_clip=4,
    motion_frames=2,
    num_inference_steps=3,
    guidance_scale=2.0,
    reference_guidance_scale=1.0,
)


@pytest.fixture(scope="module")
def pipe() -> EMOPipeline:
    built = EMOPipeline.from_preset("tiny", audio_encoder="mel", face_mask="full", seed=0)
    built.settings = FAST
    built.set_progress_bar_config(disable=True)
    return built


def test_nan_in_a_step_is_reported_with_step_and_clip(
    pipe: EMOPipeline, inputs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(OLD_BYTES)
    seen: list[tuple[int, int]] = []

    def overflow(_: object, step: int, __: object, state: dict[str, object]) -> dict[str, object]:
        seen.append((int(state["clip_index"]), step))  # type: ignore[call-overload]
        latents = state["latents"]
        assert isinstance(latents, torch.Tensor)
        if state["clip_index"] == 2 and step == 1:
            latents = latents.clone()
            latents[0, 0, 0, 0, 0] = float("inf")  # what a float16 overflow leaves
        return {"latents": latents}

    with pytest.raises(NumericalError) as info:
        pipe(inputs["image"], inputs["audio"], output_path=out, callback_on_step_end=overflow)
    message = str(info.value)
    assert "step 2 of 3" in message and "clip 3 of 7" in message
    assert "float32" in message and "\n" not in message
    assert seen[-1] == (2, 2)  # the clip's steps finish, then it stops: no sync per step
    assert entries(tmp_path) == ["out.mp4"] and out.read_bytes() == OLD_BYTES


def test_nan_from_the_decoder_is_reported(
    pipe: EMOPipeline, inputs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out.mp4"
    conv = pipe.vae.decoder.conv_out
    saved = conv.bias.detach().clone()
    try:
        with torch.no_grad():
            conv.bias[0] = float("nan")
        with pytest.raises(NumericalError, match="VAE decoder produced NaN .* in clip 1"):
            pipe(inputs["image"], inputs["audio"], output_path=out)
    finally:
        with torch.no_grad():
            conv.bias.copy_(saved)
    assert entries(tmp_path) == []


# -- concurrent writers --------------------------------------------------------------------
def test_concurrent_generations_one_wins_the_other_fails(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.mp4"
    first = start(emo_command(inputs, out, "--steps", "12"))
    lines = wait_for_line(first, "RANDOM weights")
    deadline = time.monotonic() + 60
    # The temporary appears only once the claim's lock is held (the lock file alone
    # exists for a moment before its lock is taken).
    while not list(tmp_path.glob(".out.mp4.emo-*.part")):
        assert time.monotonic() < deadline and first.poll() is None, lines
        time.sleep(0.05)
    # The second writer of the same path, in this process, while the first holds it.
    frames = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    with pytest.raises(OutputInUseError, match=r"out\.mp4.*another emo writer \(process \d+\)"):
        MP4Writer().write(frames, out, fps=25)
    # A second emo generate fails at once, before it loads a model.
    capsys.readouterr()
    assert cli_main(emo_command(inputs, out, "--steps", "1")[3:]) == 1
    second = emo_lines(capsys.readouterr().err.splitlines())
    assert len(second) == 1 and "being written right now" in second[0], second
    returncode, lines = finish(first, lines)
    assert returncode == 0, lines
    assert entries(tmp_path) == ["out.mp4"]
    import av

    with av.open(str(out)) as container:  # the winner's file, complete
        assert sum(1 for _ in container.decode(video=0)) == 25


def test_concurrent_writers_in_threads(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    writer = MP4Writer()
    frames = np.full((3, 16, 16, 3), 128, dtype=np.uint8)
    results: list[str] = []
    opened = threading.Barrier(2, timeout=30)

    def write() -> None:
        try:
            session = writer.open(out, fps=25, width=16, height=16)
        except OutputInUseError:
            opened.wait()
            results.append("refused")
            return
        with session:
            opened.wait()
            session.write(frames)
            session.close()
        results.append("wrote")

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["refused", "wrote"]
    assert entries(tmp_path) == ["out.mp4"]


def test_frame_size_limit_in_writers(tmp_path: Path) -> None:
    with pytest.raises(InputTooLargeError, match="EMO_MAX_FRAME_PIXELS"):
        MP4Writer().open(tmp_path / "x.mp4", fps=25, width=100_000, height=100_000)
    assert entries(tmp_path) == []
