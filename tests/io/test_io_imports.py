"""Importing the io and face-mask packages, and building writers, stays cheap."""

from __future__ import annotations

import subprocess
import sys


def test_no_av_or_cv2_until_used() -> None:
    code = (
        "import sys, emo, emo.io, emo.io.writers, emo.face_masks, emo.plugins\n"
        "emo.plugins.create('video_writer', 'mp4')\n"
        "emo.plugins.create('face_mask', 'box', box=[0, 0, 1, 1])\n"
        "emo.io.writers.writer_for_path('x.webm')\n"
        "assert callable(emo.read_video) and callable(emo.io.load_image)\n"
        "print(sorted(m for m in ('av', 'cv2', 'PIL') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
