"""The demo-model benchmark's own measures: the autoencoder ceiling and identity retrieval."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "demo_model.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_model_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
