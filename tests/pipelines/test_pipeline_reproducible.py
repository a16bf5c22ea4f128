"""Same inputs and seed give a byte-identical video file, whatever else the process did.

The two runs differ in their heap garbage on purpose (``MALLOC_PERTURB_`` fills every
``malloc`` block with a different byte in each run; glibc reads it, other C libraries
ignore it): an encoder that reads memory it never wrote then gives different bytes.
Before the fix, libx264's AVX-512 routines did exactly that.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from emo.io.writers.pyav import MP4Writer
from emo.io.writers.x264_cpu import detected_x264_capabilities, x264_params_without_avx512


def _generate(image: Path, audio: Path, out: Path, perturb: int) -> bytes:
    env = {**os.environ, "MALLOC_PERTURB_": str(perturb), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "emo.cli",
            "generate",
            str(image),
            str(audio),
            "-o",
            str(out),
            "--steps",
            "2",
            "--size",
            "64",
            "--face-mask",
            "full",
            "--seed",
            "3",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return out.read_bytes()


def test_two_generate_runs_with_one_seed_give_identical_mp4_bytes(
    portrait_path: Path, speech_path: Path, tmp_path: Path
) -> None:
    # 3.4 s, 85 frames: without the fix these two runs differ (measured: 2 s did not).
    first = _generate(portrait_path, speech_path, tmp_path / "a.mp4", perturb=17)
    second = _generate(portrait_path, speech_path, tmp_path / "b.mp4", perturb=201)
    assert len(first) > 1000
    assert first == second


_ENCODE = """
import sys, numpy as np
from emo.io.writers import writer_for_path
frames = np.load(sys.argv[1])
tone = np.sin(2 * np.pi * 440 * np.arange(48000 * 4) / 48000).astype(np.float32) * 0.3
with writer_for_path(sys.argv[2]).open(
    sys.argv[2], fps=25, width=64, height=64, audio=tone, sample_rate=48000
) as session:
    for start in range(0, len(frames), 4):
        session.write(frames[start:start + 4])
"""


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_writer_bytes_do_not_depend_on_heap_garbage(tmp_path: Path, suffix: str) -> None:
    # Smooth moving noise, like a random model's output (uniform noise did not show the bug).
    rng = np.random.default_rng(0)
    coarse = torch.from_numpy(rng.standard_normal((1, 3, 12, 8, 8)).astype(np.float32))
    video = F.interpolate(coarse, size=(90, 64, 64), mode="trilinear")[0]
    frames = ((video.clamp(-2, 2) + 2) / 4 * 255).round().byte().permute(1, 2, 3, 0).numpy()
    np.save(tmp_path / "frames.npy", frames)
    outputs = []
    for run, perturb in enumerate((17, 201)):  # two byte values that showed the bug
        target = tmp_path / f"{run}{suffix}"
        subprocess.run(
            [sys.executable, "-c", _ENCODE, str(tmp_path / "frames.npy"), str(target)],
            check=True,
            env={**os.environ, "MALLOC_PERTURB_": str(perturb)},
            timeout=120,
        )
        outputs.append(target.read_bytes())
    assert outputs[0] == outputs[1]  # webm: also no random Matroska segment/track UIDs


def test_only_avx512_is_dropped_from_the_capabilities() -> None:
    assert x264_params_without_avx512(("MMX2", "SSE2Fast", "AVX2", "AVX512")) == {
        "x264-params": "asm=MMX2,SSE2Fast,AVX2"
    }
    assert x264_params_without_avx512(("MMX2", "SSE4.2", "AVX2")) == {}
    assert x264_params_without_avx512(None) == {}


def test_the_mp4_writer_passes_the_capabilities_of_this_cpu_without_avx512() -> None:
    found = detected_x264_capabilities()
    assert found, "libx264 did not log its CPU capabilities: the probe needs updating"
    options = MP4Writer().video_options(MP4Writer().options({}))[1]
    if "AVX512" in found:
        kept = options["x264-params"].removeprefix("asm=").split(",")
        assert kept == [name for name in found if name != "AVX512"]
    else:
        assert "x264-params" not in options
