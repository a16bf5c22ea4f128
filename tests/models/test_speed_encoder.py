"""SpeedEncoder bucket code, MLP embedding and head-rotation speed from angles."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from emo.errors import ConfigError, InputError
from emo.models.speed import (
    DEFAULT_BUCKET_CENTERS,
    DEFAULT_BUCKET_RADII,
    SpeedEncoder,
    head_rotation_speed,
)


def test_defaults_have_nine_buckets() -> None:
    assert len(DEFAULT_BUCKET_CENTERS) == len(DEFAULT_BUCKET_RADII) == 9
    assert SpeedEncoder(8).num_buckets == 9


def test_bucket_code_values() -> None:
    encoder = SpeedEncoder(6, bucket_centers=(0.0, 1.0, 2.0), bucket_radii=(0.5, 1.0, 2.0))
    speed = torch.tensor([[0.0, 1.0, 3.0]])
    code = encoder.encode_buckets(speed)
    assert code.shape == (1, 3, 3)
    for f, w in enumerate([0.0, 1.0, 3.0]):
        for i, (c, r) in enumerate([(0.0, 0.5), (1.0, 1.0), (2.0, 2.0)]):
            assert code[0, f, i].item() == pytest.approx(math.tanh(3 * (w - c) / r), abs=1e-6)
    # At a bucket centre the code is 0, well above it is ~ +1 and below ~ -1.
    assert code[0, 1, 1].item() == 0.0
    assert code[0, 2, 0].item() > 0.999 and code[0, 0, 2].item() < -0.99


def test_embedding_shape_dtype_and_no_persistent_buckets() -> None:
    encoder = SpeedEncoder(16)
    out = encoder(torch.rand(2, 12) * 3)
    assert out.shape == (2, 12, 16) and out.dtype == torch.float32
    assert set(encoder.state_dict()) == {
        "linear_1.weight",
        "linear_1.bias",
        "linear_2.weight",
        "linear_2.bias",
    }
    half = SpeedEncoder(16).to(torch.float64)
    assert half(torch.zeros(1, 3)).dtype == torch.float64


def test_speed_encoder_errors() -> None:
    encoder = SpeedEncoder(4)
    with pytest.raises(InputError, match=r"\(b, f\)"):
        encoder(torch.zeros(3))
    with pytest.raises(InputError, match="NaN"):
        encoder(torch.tensor([[float("nan")]]))
    with pytest.raises(ConfigError):
        SpeedEncoder(4, bucket_centers=(0.0, 1.0), bucket_radii=(1.0,))
    with pytest.raises(ConfigError):
        SpeedEncoder(4, bucket_centers=(0.0,), bucket_radii=(0.0,))
    with pytest.raises(ConfigError):
        SpeedEncoder(0)


def test_head_rotation_speed_pure_axes() -> None:
    # A head turning 2 degrees per frame about any single axis has speed 2 (frame 0 copies frame 1).
    ramp = np.arange(6, dtype=np.float64) * 2.0
    for axis in range(3):
        angles = np.zeros((6, 3))
        angles[:, axis] = ramp
        for method in ("geodesic", "euler"):
            speed = head_rotation_speed(angles, method=method)  # type: ignore[arg-type]
            assert speed.shape == (6,) and speed.dtype == torch.float32
            torch.testing.assert_close(speed, torch.full((6,), 2.0), atol=1e-4, rtol=0)


def test_head_rotation_speed_geodesic_properties() -> None:
    # Still head -> 0; wrap-around at 180 is a small step; batches work; fps rescales.
    still = torch.full((1, 4, 3), 10.0)
    assert torch.all(head_rotation_speed(still) == 0)
    wrap = torch.tensor([[179.0, 0.0, 0.0], [-179.0, 0.0, 0.0]])
    assert head_rotation_speed(wrap)[1].item() == pytest.approx(2.0, abs=1e-4)
    assert head_rotation_speed(wrap, method="euler")[1].item() == pytest.approx(2.0, abs=1e-4)
    # Combined small rotations: geodesic ~ euler norm near a frontal pose.
    gen = torch.Generator().manual_seed(0)
    walk = torch.cumsum(torch.randn(2, 10, 3, generator=gen) * 0.3, dim=1)
    geodesic, euler = head_rotation_speed(walk), head_rotation_speed(walk, method="euler")
    assert geodesic.shape == (2, 10)
    torch.testing.assert_close(geodesic, euler, atol=0.02, rtol=0.02)
    # 50 fps footage at 1 degree/frame == 2 degrees/frame at the 25 fps reference.
    ramp = torch.stack([torch.arange(5.0), torch.zeros(5), torch.zeros(5)], dim=-1)
    torch.testing.assert_close(
        head_rotation_speed(ramp, fps=50.0), torch.full((5,), 2.0), atol=1e-4, rtol=0
    )
    assert head_rotation_speed([[1.0, 2.0, 3.0]]).tolist() == [0.0]
    assert torch.equal(SpeedEncoder.speed_from_angles(walk), geodesic)


@pytest.mark.parametrize(
    "angles", [np.zeros((4, 2)), np.zeros((0, 3)), np.zeros(3), [[0.0, float("inf"), 0.0]], "abc"]
)
def test_head_rotation_speed_bad_input(angles: object) -> None:
    with pytest.raises(InputError):
        head_rotation_speed(angles)
