"""The audio probe: how much of the mouth's opening a model's audio tokens carry."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def probe() -> ModuleType:
    return load_benchmark("demo_audio_probe")


def _clip(rng: np.random.Generator, group: str) -> dict[str, Any]:
    mouth = np.clip(rng.normal(0.3, 0.2, 60), 0, 1)
    # the tokens carry the opening in one channel; the features only noise;
    # the loudness is the opening plus as much noise again
    tokens = np.concatenate([mouth[:, None], rng.normal(size=(60, 5))], 1)
    return {
        "windows": rng.normal(size=(60, 6)),
        "tokens": tokens,
        "loudness": (mouth + rng.normal(0, 0.2, 60))[:, None],
        "mouth": mouth,
        "group": group,
    }


def test_the_probe_reads_the_opening_from_tokens_that_carry_it(probe: ModuleType) -> None:
    rng = np.random.default_rng(0)
    train = [_clip(rng, "formant") for _ in range(20)]
    heldout = [_clip(rng, "held-out voice") for _ in range(4)] + [_clip(rng, "formant")]
    figures = probe.probe(train, heldout)
    assert set(figures) == {"formant", "held-out voice"}
    voice = figures["held-out voice"]
    assert voice["clips"] == 4
    assert voice["tokens"] > 0.99  # fitted on other clips, read exactly
    assert abs(voice["features"]) < 0.4  # noise predicts nothing
    want = np.mean([np.corrcoef(c["loudness"][:, 0], c["mouth"])[0, 1] for c in heldout[:4]])
    assert voice["loudness"] == pytest.approx(want)


def test_clip_groups_follow_the_truth_s_voice_split(probe: ModuleType) -> None:
    assert probe.clip_group({"audio": {"mode": "speech"}}) == "formant"
    assert probe.clip_group({"audio": {"engine": "espeak-ng", "heldout_by": ""}}) == "seen voice"
    assert probe.clip_group({"audio": {"engine": "espeak-ng", "heldout_by": "voice"}}) == (
        "held-out voice"
    )
    assert probe.clip_group({"audio": {"engine": "festival-hts", "heldout_by": "engine"}}) == (
        "held-out engine"
    )


def test_the_probe_runs_on_written_clips_with_the_bundled_model(
    probe: ModuleType, tmp_path: Path
) -> None:
    from emo.datasets.synthetic import make_clip, write_clip

    for side, seeds in (("train", range(4)), ("heldout", range(10, 12))):
        for seed in seeds:
            clip = make_clip(seed, 100 + seed, duration=1.2, size=32, split="heldout")
            write_clip(clip, tmp_path / side / "sub" / f"clip{seed}.mp4")
    (tmp_path / "train" / "voices.json").write_text("{}")  # not a clip: skipped
    out = tmp_path / "probe.json"
    assert probe.main(["--model", "emo-demo", "--train", str(tmp_path / "train"),
                       "--heldout", str(tmp_path / "heldout"), "--json", str(out)]) == 0  # fmt: skip
    figures = json.loads(out.read_text())
    assert list(figures) == ["formant"] and figures["formant"]["clips"] == 2
    assert all(-1 <= figures["formant"][k] <= 1 for k in ("loudness", "features", "tokens"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        probe.main(["--train", str(tmp_path / "train"), "--heldout", str(tmp_path / "empty")])
