"""The default face mask works on a plain install (no OpenCV, no dlib)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PORTRAIT = Path(__file__).resolve().parents[2] / "examples" / "portrait.png"

# Runs in a fresh interpreter where importing cv2 or dlib fails, as on `pip install emo`.
_PLAIN_INSTALL = """
import json, sys, warnings
sys.modules["cv2"] = None
sys.modules["dlib"] = None
import numpy as np, torch
from emo.errors import EMOWarning, PluginLoadError
from emo.pipelines.emo_pipeline import EMOPipeline

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    pipe = EMOPipeline.from_preset("tiny")
pipe.set_progress_bar_config(disable=True)
out = pipe(sys.argv[1], np.zeros(1600, np.float32), audio_rate=16000, height=32, width=32,
           num_inference_steps=1, frames_per_clip=4, motion_frames=2, output_type="np",
           generator=torch.Generator().manual_seed(0))
try:
    EMOPipeline.from_preset("tiny", face_mask="auto")
    explicit = "built"
except PluginLoadError as exc:
    explicit = str(exc)
print(json.dumps({
    "mask": type(pipe.face_mask).__name__,
    "warnings": [str(w.message) for w in caught if issubclass(w.category, EMOWarning)],
    "frames": list(out.frames.shape),
    "explicit": explicit,
}))
"""


def test_from_preset_without_a_face_detector_falls_back_to_full_with_a_warning() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PLAIN_INSTALL, str(PORTRAIT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["mask"] == "FullFrameMask"
    assert len(report["warnings"]) == 1
    assert "emo[face]" in report["warnings"][0] and "'full'" in report["warnings"][0]
    assert report["frames"] == [3, 32, 32, 3]
    assert "emo[face]" in report["explicit"]  # asking for 'auto' by name still says what to do


def test_the_default_is_auto_where_a_detector_is_installed() -> None:
    pytest.importorskip("cv2")
    from emo.face_masks.default import default_face_mask
    from emo.face_masks.opencv import AutoFaceMask

    assert isinstance(default_face_mask(), AutoFaceMask)
