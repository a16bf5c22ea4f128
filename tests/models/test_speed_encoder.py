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


def _code(w: float, centers: tuple[float, ...], radii: tuple[float, ...]) -> list[float]:
    return [math.tanh(3 * (w - c) / r) for c, r in zip(centers, radii, strict=True)]


def test_window_codes_concatenate_frames_t_minus_m_to_t_plus_m() -> None:
    centers, radii = (0.0, 1.0), (0.5, 1.0)
    encoder = SpeedEncoder(4, context_frames=2, bucket_centers=centers, bucket_radii=radii)
    speeds = [0.1, 0.7, 1.3, 2.0]
    codes = encoder.window_codes(torch.tensor([speeds]))
    assert codes.shape == (1, 4, 5 * 2)
    for t in range(4):
        # Frames beyond the clip repeat the edge frame; frame t-m's codes come first.
        window = [speeds[min(max(j, 0), 3)] for j in range(t - 2, t + 3)]
        expected = [v for w in window for v in _code(w, centers, radii)]
        torch.testing.assert_close(codes[0, t], torch.tensor(expected), atol=1e-6, rtol=0)
    # With the real neighbours given (padded), the edge frames see them.
    track = [5.0, 4.0, *speeds, 3.0, 0.0]
    padded = encoder.window_codes(torch.tensor([track]), padded=True)
    assert padded.shape == (1, 4, 10)
    for t in range(4):
        expected = [v for w in track[t : t + 5] for v in _code(w, centers, radii)]
        torch.testing.assert_close(padded[0, t], torch.tensor(expected), atol=1e-6, rtol=0)
    assert encoder.linear_1.in_features == 10


def test_embedding_is_the_mlp_of_the_window_codes() -> None:
    torch.manual_seed(0)
    encoder = SpeedEncoder(6, context_frames=1)
    speed = torch.tensor([[0.2, 0.4, 0.9], [1.0, 0.0, 0.3]])
    codes = encoder.window_codes(speed)
    expected = encoder.linear_2(torch.nn.functional.silu(encoder.linear_1(codes)))
    torch.testing.assert_close(encoder(speed), expected)
    # Each frame's embedding depends on its window only: frame 2 is outside frame 0's window.
    changed = speed.clone()
    changed[:, 2] += 1.0
    diff = (encoder(changed) - encoder(speed)).abs().amax(dim=(0, 2))
    assert diff[0] == 0 and diff[1] > 0 and diff[2] > 0


def test_speeds_at_another_fps_are_rescaled_to_the_reference_fps() -> None:
    torch.manual_seed(0)
    encoder = SpeedEncoder(6, reference_fps=25.0)
    at_25 = torch.tensor([[0.3, 0.6, 1.2]])
    # 50 fps: half the degrees per frame is the same angular speed.
    torch.testing.assert_close(encoder(at_25 / 2, fps=50.0), encoder(at_25))
    torch.testing.assert_close(encoder.at_reference_fps(at_25, 30.0), at_25 * 1.2)
    assert encoder.at_reference_fps(at_25, None) is at_25
    with pytest.raises(InputError, match="fps"):
        encoder(at_25, fps=0.0)
    with pytest.raises(ConfigError, match="reference_fps"):
        SpeedEncoder(4, reference_fps=-1.0)
    with pytest.raises(ConfigError, match="context_frames"):
        SpeedEncoder(4, context_frames=-1)
    with pytest.raises(InputError, match="padded"):
        SpeedEncoder(4, context_frames=2).window_codes(torch.zeros(1, 4), padded=True)
