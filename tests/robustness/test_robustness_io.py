"""Bad input to images, the video reader and the video writers gets an emo error, no file.

Each case once escaped as a raw exception (TypeError, ValueError, AssertionError, a
PyAV MemoryError, an out-of-memory RuntimeError) or destroyed data at the target.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from emo.errors import ImageError, InputError, VideoError
from emo.io.image import crop_and_resize, load_image
from emo.io.reader import VideoReader, read_video
from emo.io.writers import writer_for_path
from emo.io.writers.frames import PNGFramesWriter
from emo.io.writers.memory import MemoryWriter

FRAMES = np.random.default_rng(0).integers(0, 255, (2, 16, 16, 3), dtype=np.uint8)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# -- writers: the output path ---------------------------------------------------------------
@pytest.mark.parametrize("path", [None, 5, b"out.mp4"])
def test_writer_rejects_a_path_that_is_not_a_path(path: Any) -> None:
    with pytest.raises(VideoError, match="output path must be a str"):
        PNGFramesWriter().write(FRAMES, path, fps=25)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_writer_never_replaces_a_special_file(tmp_path: Path) -> None:
    # Writing to /dev/null as root used to rename the finished mp4 over the device node.
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    with pytest.raises(VideoError, match="not a regular file"):
        writer_for_path(fifo).write(FRAMES, fifo, fps=25)
    assert fifo.is_fifo()
    assert leftovers(tmp_path) == []


def test_frames_writer_keeps_a_folder_of_other_files(tmp_path: Path) -> None:
    # The frames writer swaps the whole folder: it used to delete whatever was there.
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.png").write_bytes(b"precious")
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(VideoError, match="already holds other files"):
        PNGFramesWriter().write(FRAMES, folder, fps=25)
    assert (folder / "holiday.png").read_bytes() == b"precious"
    assert sorted(os.listdir(folder)) == ["holiday.png", "notes.txt"]
    assert leftovers(tmp_path) == []


def test_frames_writer_still_replaces_its_own_output(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    PNGFramesWriter().write(FRAMES, folder, fps=25, audio=np.zeros(800), sample_rate=16000)
    PNGFramesWriter().write(FRAMES[:1], folder, fps=25)
    assert sorted(os.listdir(folder)) == ["000000.png"]
    empty = tmp_path / "empty"
    empty.mkdir()
    PNGFramesWriter().write(FRAMES, empty, fps=25)
    assert len(os.listdir(empty)) == 2


# -- writers: arguments -----------------------------------------------------------------------
@pytest.mark.parametrize("size", [(None, 16), (float("nan"), 16), ("x", 16)])
def test_writer_open_rejects_bad_sizes(tmp_path: Path, size: tuple[Any, Any]) -> None:
    with pytest.raises(InputError, match="width and height"):
        MemoryWriter().open("memory", fps=25, width=size[0], height=size[1])


def test_writer_rejects_bool_fps() -> None:
    with pytest.raises(InputError, match="fps"):
        MemoryWriter().write(FRAMES, "memory", fps=True)


@pytest.mark.parametrize("rate", ["16000", [16000]])
def test_writer_rejects_bad_sample_rates(rate: Any) -> None:
    with pytest.raises(InputError, match="sample_rate"):
        MemoryWriter().write(FRAMES, "memory", fps=25, audio=np.zeros(100), sample_rate=rate)


def test_webm_writer_rejects_empty_audio(tmp_path: Path) -> None:
    # Zero samples at a rate Opus resamples used to raise MemoryError inside PyAV.
    path = tmp_path / "out.webm"
    with pytest.raises(InputError, match="no samples"):
        writer_for_path(path).write(
            FRAMES, path, fps=25, audio=np.zeros(0, np.float32), sample_rate=16000
        )
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_meta_tensors() -> None:
    with pytest.raises(InputError, match="meta"):
        MemoryWriter().write(torch.zeros(2, 16, 16, 3, device="meta"), "memory", fps=25)
    with pytest.raises(InputError, match="meta"):
        MemoryWriter().write(
            FRAMES, "memory", fps=25, audio=torch.zeros(10, device="meta"), sample_rate=16000
        )


# -- reader ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "v.mp4"
    writer_for_path(path).write(np.zeros((4, 16, 16, 3), np.uint8), path, fps=25)
    return path


def test_reader_rejects_a_path_that_is_not_a_path() -> None:
    with pytest.raises(VideoError, match="video path must be a str"):
        read_video(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("start", "count"), [("a", None), (float("nan"), None), (1.5, None), (0, "b"), (0, np.inf)]
)
def test_reader_rejects_bad_frame_numbers(video: Path, start: Any, count: Any) -> None:
    with pytest.raises(InputError, match="must be an int"):
        read_video(video, start_frame=start, num_frames=count)


def test_reader_index_and_closed_reader(video: Path) -> None:
    reader = VideoReader(video)
    assert reader[np.int64(1)].shape == (16, 16, 3)
    with pytest.raises(InputError, match="frame index"):
        reader["a"]  # type: ignore[index]
    reader.close()
    with pytest.raises(VideoError, match="closed"):
        reader.read(0, 1)


# -- images ------------------------------------------------------------------------------------
IMAGE = np.zeros((32, 48, 3), np.uint8)


def test_load_image_rejects_meta_tensor() -> None:
    with pytest.raises(ImageError, match="meta"):
        load_image(torch.zeros(3, 4, 4, device="meta"))


@pytest.mark.parametrize("box", ["abcd", {"x": 1}])
def test_crop_rejects_unparsable_boxes(box: Any) -> None:
    with pytest.raises(ImageError, match="four finite numbers"):
        crop_and_resize(IMAGE, box, 16, 16)


def test_crop_rejects_a_box_outside_the_image() -> None:
    # It used to crop replicated edge pixels: a silent, meaningless portrait.
    with pytest.raises(ImageError, match="outside"):
        crop_and_resize(IMAGE, (-100, -100, -50, -50), 16, 16)
    with pytest.raises(ImageError, match="outside"):
        crop_and_resize(IMAGE, (100, 100, 200, 200), 16, 16)


def test_crop_rejects_a_huge_box() -> None:
    # It used to try to allocate a 10^12 x 10^12 padded image.
    with pytest.raises(ImageError, match="times the 48x32 image"):
        crop_and_resize(IMAGE, (0, 0, 1e12, 1e12), 16, 16)


@pytest.mark.parametrize("size", ["a", None, float("nan"), 16.5, 10**6])
def test_crop_rejects_bad_output_sizes(size: Any) -> None:
    with pytest.raises(ImageError, match="output height"):
        crop_and_resize(IMAGE, (0, 0, 10, 10), size, 16)
