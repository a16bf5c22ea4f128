"""The demo-model benchmark's own measures: the autoencoder ceiling, identity retrieval,
the case geometry, the mouth in pauses and the target rows."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("demo_model")


def _summary(truth: float, model: float, autoencoder: float | None) -> dict[str, dict[str, Any]]:
    def stats(identity: float) -> dict[str, Any]:
        return {
            "identity": identity,
            "lip_sync_truth": 0.9,
            "offset_truth": 0,
            "appearance_psnr": 25.0,
            "seam_ratio": 1.0,
            "face_ratio": 1.0,
            "by_speed": {"0.0": {"head_velocity_mean": 1.0}, "1.0": {"head_velocity_mean": 2.0}},
        }

    summary = {"truth": stats(truth), "emo-demo": stats(model)}
    if autoencoder is not None:
        summary["autoencoder"] = stats(autoencoder)
    return summary


def test_identity_margin_is_what_the_autoencoder_loses_plus_the_stated_margin(
    bench: ModuleType,
) -> None:
    margin = bench.IDENTITY_MARGIN
    row = next(
        r for r in bench.targets(_summary(0.98, 0.90, 0.88), "emo-demo") if "identity" in r[0]
    )
    assert row[2] and "0.100 lost by the autoencoder" in row[0]
    below = 0.88 - margin - 0.01
    row = next(
        r for r in bench.targets(_summary(0.98, below, 0.88), "emo-demo") if "identity" in r[0]
    )
    assert not row[2]
    # Without an autoencoder column the margin alone applies.
    row = next(
        r for r in bench.targets(_summary(0.98, 0.90, None), "emo-demo") if "identity" in r[0]
    )
    assert not row[2]


def test_autoencoder_round_trip_is_the_vae_decoding_its_own_encoding(bench: ModuleType) -> None:
    from emo.models.vae import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1,
        norm_num_groups=4,
        latent_channels=4,
    ).eval()
    frames = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    out = bench.autoencoder_round_trip(vae, frames, batch=2)
    assert out.shape == frames.shape and out.dtype == np.uint8
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.no_grad():
        expected = vae.decode(vae.encode(x).mode()).clamp(-1, 1)
    expected_u8 = ((expected + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(out, expected_u8)


def test_identity_retrieval_finds_each_truth_clip_s_own_portrait(bench: ModuleType) -> None:
    pytest.importorskip("dlib", reason="the benchmark measures faces with emo[face]")
    from emo.evaluation.benchmark import crop_case, heldout_cases
    from emo.face import FaceAnalyzer

    cases = heldout_cases(2, speeds=[0.0], duration=0.4, size=96, singing=False)
    clips, portraits = [], []
    for case in cases:
        clip, portrait = crop_case(case, 64, 1.3)
        clips.append(clip.frames)
        portraits.append(portrait)
    analyzer = FaceAnalyzer()
    right = bench.identity_retrieval({"truth": clips}, portraits, [0, 1], analyzer)
    assert right == {"truth": {"descriptor": 1.0, "appearance": 1.0}}
    # The same videos labelled with the other identity: never retrieved.
    swapped = bench.identity_retrieval({"truth": clips[::-1]}, portraits[::-1], [0, 1], analyzer)
    assert swapped == {"truth": {"descriptor": 1.0, "appearance": 1.0}}
    wrong = bench.identity_retrieval({"truth": clips[::-1]}, portraits, [0, 1], analyzer)
    assert wrong == {"truth": {"descriptor": 0.0, "appearance": 0.0}}


def test_enlarge_for_analysis_reaches_the_analysis_size_by_a_whole_factor() -> None:
    pytest.importorskip("cv2", reason="the enlargement uses OpenCV (emo[face])")
    from emo.evaluation.scoring import enlarge_for_analysis

    frames = np.random.default_rng(0).integers(0, 256, (2, 64, 80, 3), dtype=np.uint8)
    big = enlarge_for_analysis(frames, 256)
    assert big.shape == (2, 256, 320, 3) and big.dtype == np.uint8
    assert enlarge_for_analysis(frames, 100).shape == (2, 128, 160, 3)  # factor 2, not 1.56
    assert enlarge_for_analysis(frames, 64) is frames  # large enough: untouched


def test_crop_case_gives_the_face_crop_clip_and_portrait() -> None:
    from emo.evaluation.benchmark import crop_case, heldout_cases

    case = heldout_cases(1, speeds=[0.0], duration=0.2, size=96, singing=False)[0]
    clip, portrait = crop_case(case, 64)
    assert clip.frames.shape[1:] == (64, 64, 3) and portrait.shape == (64, 64, 3)
    assert clip.frames.shape[0] == case.clip().frames.shape[0]
    assert portrait.dtype == np.uint8


def _units(*spans: tuple[str, float, float]) -> list[Any]:
    from emo.datasets.synthetic.speech import Unit

    return [
        Unit(phoneme, start, end, 0.0 if phoneme == "_" else 0.8) for phoneme, start, end in spans
    ]


def test_pause_frames_are_inside_long_silences_with_a_margin_and_speech_touches_none(
    bench: ModuleType,
) -> None:
    # 10 fps: frame i is [i/10, (i+1)/10). Silence 0-0.5 s (two units, one pause), speech
    # 0.5-1.0 s with a 0.1 s gap (too short to be a pause), silence 1.0-1.3 s, speech after.
    units = _units(
        ("_", 0.0, 0.2),
        ("_", 0.2, 0.5),
        ("a", 0.5, 0.7),
        ("_", 0.7, 0.8),
        ("o", 0.8, 1.0),
        ("_", 1.0, 1.3),
        ("m", 1.3, 1.4),
        ("a", 1.4, 1.6),
    )
    pause, speech = bench.pause_frames(units, 10.0, 16, min_pause=0.25, margin=1)
    # Frames 0-4 lie in the first pause; with one neighbour each side, frames 0-3 (frame 0's
    # left neighbour is itself). Frames 10-12 lie in the second; only 11 has both neighbours.
    assert np.flatnonzero(pause).tolist() == [0, 1, 2, 3, 11]
    # Speech: no frame within one of a pause; the short gap (frame 7) is speech.
    assert np.flatnonzero(speech).tolist() == [6, 7, 8, 14, 15]
    none, _ = bench.pause_frames(units, 10.0, 16, min_pause=0.6, margin=1)
    assert not none.any()


def test_the_truth_mouth_is_closed_on_every_pause_frame(bench: ModuleType) -> None:
    from emo.datasets.synthetic import make_clip

    clip = make_clip(3, 5, duration=4.0, size=32, speed=0.0, split="heldout")
    pause, speech = bench.pause_frames(clip.audio.units, float(clip.fps), clip.num_frames)
    assert pause.sum() >= 5 and speech.sum() >= 20 and not (pause & speech).any()
    assert np.all(clip.mouth_open[pause] == 0.0)
    assert clip.mouth_open[speech].mean() > 0.2


def test_pause_ratio_is_the_opening_above_the_closed_mouth_pooled_over_cases(
    bench: ModuleType,
) -> None:
    pause = np.array([True, True, False, False, False])
    speech = ~pause
    closed = 0.05
    shut = np.array([0.05, 0.05, 0.25, 0.35, np.nan])  # no face in the last frame: skipped
    assert bench.pause_ratio([(shut, pause, speech)], [closed]) == pytest.approx(0.0)
    ajar = np.array([0.10, 0.10, 0.25, 0.35, 0.30])  # 0.05 above closed in pauses, 0.25 in speech
    assert bench.pause_ratio([(ajar, pause, speech)], [closed]) == pytest.approx(0.2)
    # Pooled: the frames of both cases together, each above its own closed mouth.
    other = np.array([0.2, 0.2, 0.2, 0.2, 0.2])
    pooled = bench.pause_ratio([(ajar, pause, speech), (other, pause, speech)], [closed, 0.1])
    assert pooled == pytest.approx(((0.05 * 2 + 0.1 * 2) / 4) / ((0.2 + 0.3 + 0.25 + 0.1 * 3) / 6))
    # Nothing to compare: no pause frames, or a mouth that never opens.
    assert math.isnan(bench.pause_ratio([(ajar, np.zeros(5, bool), speech)], [closed]))
    assert math.isnan(bench.pause_ratio([(np.full(5, 0.05), pause, speech)], [closed]))
    assert math.isnan(bench.pause_ratio([]))


def test_a_video_s_closed_mouth_is_its_own_low_percentile(bench: ModuleType) -> None:
    # A blurred mouth reading 0.02 when closed, below a sharp portrait's 0.05: above its own
    # closed reading the pauses are shut, above the portrait's they would be negative.
    blurred = np.array([0.02] * 6 + [0.12, 0.2, 0.18, 0.15] * 6 + [np.nan])
    pause = np.zeros(blurred.size, bool)
    pause[:6] = True
    speech = ~pause
    closed = bench.closed_reading(blurred)
    assert closed == pytest.approx(0.02)
    assert bench.pause_ratio([(blurred, pause, speech)]) == pytest.approx(0.0)
    assert bench.pause_ratio([(blurred, pause, speech)], [0.05]) < 0
    # A mouth that stays open in the pause reads it well above the closures between words.
    ajar = blurred.copy()
    ajar[:6] = 0.15
    ajar[6:30:4] = 0.02
    ratio = bench.pause_ratio([(ajar, pause, speech)])
    assert ratio > 0.7
    assert math.isnan(bench.closed_reading(np.full(4, np.nan)))


def test_case_geometry_comes_from_the_model_s_training_recipe(
    bench: ModuleType, tmp_path: Path
) -> None:
    assert bench.case_geometry(tmp_path, 96) == (144, 96, 1.3)  # no record: the shipped proportion
    recipe = {"render_size": 160, "resolution": 96, "crop": 1.25}
    (tmp_path / "training.json").write_text(json.dumps({"recipe": recipe}))
    assert bench.case_geometry(tmp_path, 96) == (160, 96, 1.25)
    with pytest.raises(ValueError, match="trained at 96 px"):
        bench.case_geometry(tmp_path, 64)


def test_the_shipped_model_s_cases_are_cropped_as_its_training_clips(bench: ModuleType) -> None:
    from emo.pretrained import bundled_model_path

    folder = bundled_model_path("emo-demo")
    height = json.loads((folder / "model_index.json").read_text())["settings"]["height"]
    recipe = json.loads((folder / "training.json").read_text())["recipe"]
    assert bench.case_geometry(folder, height) == (
        recipe["render_size"],
        height,
        recipe["crop"],
    )


def test_targets_add_retrieval_and_the_held_out_voice_rows(bench: ModuleType) -> None:
    summary = _summary(0.98, 0.97, 0.97)
    rows = {t: (m, ok) for t, m, ok in bench.targets(summary, "emo-demo")}
    # Without the measurements the rows say so and neither pass nor fail.
    assert rows["identity retrieval by descriptor >= 75%"] == ("not measured", None)
    heldout = [t for t in rows if t.startswith(("held-out voice", "held-out engine"))]
    assert len(heldout) == 6 and all(rows[t][1] is None for t in heldout)
    assert all("--voices" in rows[t][0] for t in heldout)

    groups = {
        "held-out voice": {"lip_sync_truth": 0.85, "offsets": [0], "pause_ratio": 0.1},
        "held-out engine": {"lip_sync_truth": 0.75, "offsets": [0, -1], "pause_ratio": 0.4},
    }
    found = bench.targets(
        summary, "emo-demo", groups=groups, retrieval={"descriptor": 0.75, "appearance": 1.0}
    )
    rows = {t: (m, ok) for t, m, ok in found}
    assert rows["identity retrieval by descriptor >= 75%"] == ("75%", True)
    assert rows["held-out voice: lip sync r vs truth >= 0.8"] == ("0.850", True)
    assert rows["held-out voice: offset vs truth == 0 frames in every case"] == ("[0]", True)
    assert rows["held-out voice: opening in pauses <= 0.25 of that in speech"] == ("0.100", True)
    assert rows["held-out engine: lip sync r vs truth >= 0.8"][1] is False
    assert rows["held-out engine: offset vs truth == 0 frames in every case"][1] is False
    assert rows["held-out engine: opening in pauses <= 0.25 of that in speech"][1] is False
    # A group measured without pause frames fails its pause row rather than passing it.
    groups["held-out voice"]["pause_ratio"] = None
    rows = {t: ok for t, _, ok in bench.targets(summary, "emo-demo", groups=groups)}
    assert rows["held-out voice: opening in pauses <= 0.25 of that in speech"] is False
    # The rows of the current table are all still there.
    assert sum(1 for t in rows if not t.startswith(("held-out", "identity retrieval"))) == 6


def test_the_vae_retrieval_benchmark_prints_the_round_trip_of_the_bundled_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("dlib", reason="the descriptor is dlib's (emo[face])")
    module = load_benchmark("demo_vae_retrieval")
    assert module.main(["--model", "emo-demo", "--identities", "2", "--frames", "2"]) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1]
    cells = [c.strip() for c in row.strip("|").split("|")]
    from emo.pretrained import resolve_model

    settings = json.loads((resolve_model("emo-demo") / "model_index.json").read_text())
    assert cells[:2] == ["emo-demo", str(settings["settings"]["height"])]
    assert all(c.endswith("%") and 0 <= int(c[:-1]) <= 100 for c in cells[2:])


def test_a_voice_group_s_lip_sync_is_the_mean_of_its_scored_cases(bench: ModuleType) -> None:
    from types import SimpleNamespace

    from emo.evaluation.signals import LipSync

    def row(r: float, offset: int, found: float = 1.0) -> SimpleNamespace:
        sync = LipSync(correlation=r, offset=offset, peak_correlation=r)
        opening = np.array([0.02, 0.02, 0.3, 0.2, 0.25])
        return SimpleNamespace(
            case=SimpleNamespace(group="held-out voice", voice_key="espeak-ng:x"),
            score=SimpleNamespace(lip_sync_truth=sync, mouth_opening=opening, face_ratio=found),
        )

    pause = np.array([True, True, False, False, False])
    pauses = [(pause, ~pause, 0.05)] * 3
    # the second case's faces were too rarely found: its r is NaN, its offset meaningless
    groups = bench.group_scores(
        [row(0.7, 0), row(float("nan"), -3, found=0.1), row(0.8, 0)], pauses
    )
    group = groups["held-out voice"]
    assert group["cases"] == 3 and group["scored"] == 2
    assert group["lip_sync_truth"] == pytest.approx(0.75)
    assert group["offsets"] == [0]
    assert group["pause_ratio"] == pytest.approx(0.0)
    assert group["face_found"] == pytest.approx(0.7)  # (1 + 0.1 + 1) / 3, every case counts
