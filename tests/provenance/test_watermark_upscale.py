"""The mark on upscaled frames: texture measured at the size the frames were made."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from emo.errors import InputError, VideoError
from emo.provenance import attacks
from emo.provenance.payload import Payload
from emo.provenance.watermark import Watermarker

PAYLOAD = Payload(version="0.1.0", video_id=4242)


def _upscaled(clip: np.ndarray, factor: int) -> np.ndarray:
    """A clip enlarged ``factor`` times the way the pipeline does it (bicubic)."""
    x = torch.from_numpy(clip).permute(0, 3, 1, 2).float()
    size = (clip.shape[1] * factor, clip.shape[2] * factor)
    y = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
    return y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def test_upscale_measures_texture_at_the_made_size(make_clip: Callable[..., np.ndarray]) -> None:
    # A 64-pixel clip written at 256: measured as it is, it has no pixel-scale texture
    # and the mark sits at its floor; measured at 64 pixels it gets the strength it would
    # have had there, within the 40 dB bound, and outlives a re-encode at CRF 28.
    big = _upscaled(make_clip(3, size=64, frames=8), 4)
    marker = Watermarker()
    floor = marker.embed(big, PAYLOAD).numpy()
    scaled = marker.embed(big, PAYLOAD, upscale=4).numpy()
    assert _psnr(scaled, big) < _psnr(floor, big) - 3.0
    assert all(_psnr(s, b) >= 40.0 for s, b in zip(scaled, big, strict=True))
    edited = attacks.reencode_h264(attacks.reencode_h264(scaled, crf=18), crf=28)
    assert marker.detect(edited).found
    # upscale=1 is the mark as it always was.
    assert np.array_equal(marker.embed(big, PAYLOAD, upscale=1.0).numpy(), floor)


@pytest.mark.parametrize("bad", [0.5, 0, -2, float("nan"), float("inf"), True, "4"])
def test_bad_upscale_is_an_input_error(bad: object) -> None:
    frames = np.zeros((1, 64, 64, 3), np.uint8)
    with pytest.raises(InputError, match="upscale"):
        Watermarker().embed(frames, PAYLOAD, upscale=bad)  # type: ignore[arg-type]


def test_reencode_file_refuses_what_is_not_a_video(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="cannot read"):
        attacks.reencode_h264_file(tmp_path / "missing.mp4", tmp_path / "out.mp4")
    sound = Path(__file__).resolve().parents[2] / "examples" / "speech.wav"
    with pytest.raises(VideoError, match="no video stream"):
        attacks.reencode_h264_file(sound, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()
