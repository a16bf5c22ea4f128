"""The generator needs numpy only, and importing the evaluation package loads nothing."""

from __future__ import annotations

import subprocess
import sys


def test_generator_and_evaluation_imports_stay_light() -> None:
    code = (
        "import sys\n"
        "import emo.evaluation\n"
        "from emo.datasets.synthetic import make_clip\n"
        "clip = make_clip(1, 1, duration=0.2, size=32)\n"
        "heavy = [m for m in ('torch', 'av', 'soundfile', 'cv2', 'dlib', 'emo.face',\n"
        "         'emo.evaluation.scoring') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print(clip.num_frames)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "5"
