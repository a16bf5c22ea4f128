"""``import emo`` stays cheap."""

from __future__ import annotations

import subprocess
import sys


def test_import_emo_does_not_import_heavy_modules() -> None:
    code = (
        "import sys, emo\n"
        "emo.plugins.list_plugins()\n"
        "heavy = [m for m in ('torch', 'transformers', 'av', 'soundfile', 'cv2', 'diffusers',\n"
        "         'emo.audio.wav2vec2', 'emo.schedulers.ddim', 'emo.io.writers.pyav')\n"
        "         if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print(emo.__version__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == __import__("emo").__version__


def test_lazy_attribute_errors_cleanly() -> None:
    import emo

    try:
        emo.does_not_exist  # noqa: B018
    except AttributeError as exc:
        assert "does_not_exist" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")
