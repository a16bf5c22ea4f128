"""Writer options refuse bools and non-integers where a count or a rate is expected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from emo.errors import InputError
from emo.io.writers.frames import PNGFramesWriter
from emo.io.writers.pyav import GIFWriter, MP4Writer, WebMWriter


@pytest.mark.parametrize(
    ("writer", "option", "value"),
    [
        (MP4Writer, "audio_bitrate", True),
        (MP4Writer, "audio_bitrate", 128.5),
        (WebMWriter, "cpu_used", True),
        (WebMWriter, "cpu_used", 9),
        (WebMWriter, "audio_bitrate", False),
        (GIFWriter, "loop", True),
        (GIFWriter, "loop", -2),
        (PNGFramesWriter, "compression_level", True),
    ],
)
def test_bad_option_values_are_refused(
    writer: Any, option: str, value: Any, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match=option):
        writer(**{option: value})
    target = tmp_path / ("out" + (writer.suffixes[0] if writer.suffixes else ""))
    with pytest.raises(InputError, match=option):  # per-video overrides are checked too
        writer().open(target, fps=25, width=8, height=8, **{option: value})
    assert list(tmp_path.iterdir()) == []


def test_good_values_pass() -> None:
    assert MP4Writer(audio_bitrate=128_000).config["audio_bitrate"] == 128_000
    assert WebMWriter(cpu_used=0).options({"cpu_used": 8})["cpu_used"] == 8
    assert GIFWriter(loop=-1).config["loop"] == -1
