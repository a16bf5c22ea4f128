"""Audio decoded from emo's own MP4 has exactly the samples that went in (no AAC padding)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emo.audio.alignment import num_video_frames
from emo.audio.loading import audio_duration, load_audio
from emo.io.writers import writer_for_path


@pytest.mark.parametrize(("rate", "fps", "frames"), [(16000, 25.0, 50), (44100, 30000 / 1001, 30)])
def test_mp4_audio_length_matches_the_video(
    tmp_path: Path, rate: int, fps: float, frames: int
) -> None:
    path = tmp_path / "clip.mp4"
    seconds = frames / fps
    audio = (0.3 * np.sin(np.arange(round(seconds * rate)) / 5.0)).astype(np.float32)
    writer_for_path(path).write(
        np.zeros((frames, 32, 32, 3), np.uint8), path, fps=fps, audio=audio, sample_rate=rate
    )
    waveform = load_audio(path, sample_rate=16000)
    assert abs(waveform.shape[0] - audio_duration(path) * 16000) <= 1
    assert num_video_frames(int(waveform.shape[0]), 16000, fps) == frames
