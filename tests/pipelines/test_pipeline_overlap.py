"""Decoding and writing on a background thread: the same bytes, the same errors, bounded memory."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from emo.errors import InputError, NumericalError, VideoError
from emo.pipelines.emo_pipeline import EMOPipeline
from emo.pipelines.overlap import consume_clips, resolve_overlap


def _no_worker_left() -> bool:
    return not any(t.name == "emo-clip-writer" for t in threading.enumerate())


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_overlapped_video_is_byte_identical(
    tiny_pipe: EMOPipeline,
    portrait_path: Path,
    short_speech: np.ndarray,
    tmp_path: Path,
    suffix: str,
) -> None:
    videos, frames = {}, {}
    for overlap in (False, True):
        out = tiny_pipe(
            portrait_path,
            short_speech,
            audio_rate=16000,
            generator=torch.Generator().manual_seed(5),
            output_path=tmp_path / f"{overlap}{suffix}",
            output_type="pt",
            overlap_decoding=overlap,
        )
        assert out.path is not None
        videos[overlap], frames[overlap] = out.path.read_bytes(), out.frames
    assert frames[True].shape[0] == 16  # 4 clips of 4 frames
    assert torch.equal(frames[True], frames[False])
    assert videos[True] == videos[False]
    assert _no_worker_left()


def test_overlapped_frames_in_memory_are_identical(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray
) -> None:
    runs = [
        tiny_pipe(
            portrait_path,
            short_speech,
            audio_rate=16000,
            generator=torch.Generator().manual_seed(1),
            output_type="np",
            overlap_decoding=overlap,
        ).frames
        for overlap in (False, True)
    ]
    assert np.array_equal(runs[0], runs[1])


def test_worker_error_is_the_same_error_and_leaves_no_file(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray, tmp_path: Path
) -> None:
    vae = copy.deepcopy(tiny_pipe.vae)
    with torch.no_grad():
        vae.decoder.conv_out.weight.fill_(float("nan"))  # decoding fails; encoding works
    broken = EMOPipeline(**{**tiny_pipe.components, "vae": vae})
    broken.set_progress_bar_config(disable=True)
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous video")
    messages = []
    for overlap in (False, True):
        with pytest.raises(NumericalError, match="clip 1") as info:
            broken(
                portrait_path,
                short_speech,
                audio_rate=16000,
                output_path=target,
                overlap_decoding=overlap,
            )
        messages.append(str(info.value))
        assert target.read_bytes() == b"previous video"
        assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
    assert messages[0] == messages[1]
    assert _no_worker_left()


def test_interrupt_while_overlapping_leaves_no_partial_output(
    tiny_pipe: EMOPipeline, portrait_path: Path, short_speech: np.ndarray, tmp_path: Path
) -> None:
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous video")

    def interrupt(pipe: EMOPipeline, step: int, t: Any, kwargs: dict[str, Any]) -> None:
        if kwargs["clip_index"] == 2:  # clips 0 and 1 are with the writer by now
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tiny_pipe(
            portrait_path,
            short_speech,
            audio_rate=16000,
            output_path=target,
            callback_on_step_end=interrupt,
            overlap_decoding=True,
        )
    assert target.read_bytes() == b"previous video"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
    assert _no_worker_left()


def test_the_main_thread_runs_at_most_one_clip_ahead() -> None:
    produced, consumed = [], []
    ahead = []

    def clips() -> Iterator[tuple[int, torch.Tensor]]:
        for index in range(6):
            produced.append(index)
            ahead.append(len(produced) - len(consumed))
            yield index, torch.full((2,), float(index))

    def slow(index: int, latents: torch.Tensor) -> None:
        time.sleep(0.05)  # a decoder slower than the denoising
        assert threading.current_thread().name == "emo-clip-writer"
        consumed.append((index, float(latents[0])))

    consume_clips(clips(), slow, overlap=True)
    assert consumed == [(i, float(i)) for i in range(6)]  # every clip, in order
    # One clip decoding, one waiting, one being produced: never more in memory.
    assert max(ahead) <= 3


def test_worker_error_stops_the_producer_and_is_raised_as_it_was() -> None:
    produced = []

    def clips() -> Iterator[tuple[int, torch.Tensor]]:
        for index in range(20):
            produced.append(index)
            yield index, torch.zeros(1)

    def failing(index: int, latents: torch.Tensor) -> None:
        if index == 1:
            raise VideoError("disk full while writing clip 2")

    with pytest.raises(VideoError, match="clip 2"):
        consume_clips(clips(), failing, overlap=True)
    assert len(produced) < 20  # the generation stopped soon after the failure
    assert _no_worker_left()


def test_overlap_setting_is_checked_and_defaults_by_device() -> None:
    assert resolve_overlap(None, torch.device("cpu")) is False
    assert resolve_overlap(None, torch.device("cuda")) is True
    assert resolve_overlap(True, torch.device("cpu")) is True
    with pytest.raises(InputError, match="overlap_decoding"):
        resolve_overlap("yes", torch.device("cpu"))  # type: ignore[arg-type]


def test_command_line_switch_gives_the_same_file(
    portrait_path: Path, speech_path: Path, tmp_path: Path
) -> None:
    from emo.cli import main

    written = {}
    for switch in ("on", "off"):
        out = tmp_path / f"{switch}.mp4"
        common = ["--steps", "1", "--size", "32", "--face-mask", "full", "--quiet"]
        args = ["generate", str(portrait_path), str(speech_path), "-o", str(out), *common]
        assert main([*args, "--overlap-decoding", switch]) == 0
        written[switch] = out.read_bytes()
    assert written["on"] == written["off"]
