"""Head speed: exact on known poses, and its accuracy on a photograph turned by known angles."""

from __future__ import annotations

import numpy as np
import pytest
from face_drawing import astronaut, turn

from emo.errors import EMOWarning, InputError
from emo.face import FaceAnalyzer, head_speed


def test_constant_rotation_gives_its_rate() -> None:
    yaw = np.arange(30) * 2.0  # 2 degrees per frame
    poses = np.stack([yaw, np.zeros(30), np.zeros(30)], axis=1)
    speed = head_speed(poses, fps=30)
    np.testing.assert_allclose(speed, 2.0, atol=0.05)
    # The same motion filmed at 60 fps is half as much per frame; at a 30 fps reference, 2 again.
    slow = head_speed(np.stack([np.arange(60) * 1.0, np.zeros(60), np.zeros(60)], axis=1), fps=60)
    np.testing.assert_allclose(slow, 2.0, atol=0.05)
    np.testing.assert_allclose(head_speed(poses, fps=30, reference_fps=15), 4.0, atol=0.1)


def test_still_head_jitter_and_gaps() -> None:
    rng = np.random.default_rng(0)
    still = rng.normal(0, 0.5, size=(60, 3))  # landmark jitter of a still head
    raw = head_speed(still, fps=30, smoothing=0, outlier_window=1)
    smoothed = head_speed(still, fps=30)
    assert smoothed.mean() < raw.mean() / 3
    # A fit that jumps away for one frame is removed by the running median.
    ramp = np.stack([np.arange(30) * 1.0, np.zeros(30), np.zeros(30)], axis=1)
    ramp[12] = [40.0, -30.0, 10.0]
    assert np.abs(head_speed(ramp, fps=30) - 1.0).max() < 0.3
    assert head_speed(ramp, fps=30, outlier_window=1).max() > 3
    gappy = np.stack([np.arange(10) * 1.0, np.zeros(10), np.zeros(10)], axis=1)
    gappy[3:6] = np.nan  # frames without a face: interpolated
    np.testing.assert_allclose(
        head_speed(gappy, fps=30, smoothing=0, outlier_window=1), 1.0, atol=1e-4
    )
    assert np.isnan(head_speed(np.full((4, 3), np.nan), fps=30)).all()
    assert head_speed(np.zeros((1, 3)), fps=30).tolist() == [0.0]


def test_roll_across_180_is_not_a_jump() -> None:
    roll = (170 + np.arange(20) * 1.0 + 180) % 360 - 180  # 170 ... 179, -180 ... -171
    poses = np.stack([np.zeros(20), np.zeros(20), roll], axis=1)
    np.testing.assert_allclose(head_speed(poses, fps=25, reference_fps=25), 1.0, atol=0.02)


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="frame rate"):
        head_speed(np.zeros((3, 3)))
    with pytest.raises(InputError, match=r"\(f, 3\)"):
        head_speed(np.zeros((3, 2)), fps=30)
    with pytest.raises(InputError, match="fps"):
        head_speed(np.zeros((3, 3)), fps=0)
    with pytest.raises(InputError, match="smoothing"):
        head_speed(np.zeros((3, 3)), fps=30, smoothing=-1)
    with pytest.raises(InputError, match="outlier_window"):
        head_speed(np.zeros((3, 3)), fps=30, outlier_window=4)


def test_known_rotation_accuracy_on_a_photograph(analyzer: FaceAnalyzer) -> None:
    """The documented accuracy: the astronaut turned by 1.5 degrees per frame, 24 frames.

    The true head speed is 1.5 degrees per frame (an in-plane rotation; at 30 fps). The
    estimate from the detected landmarks must be within 0.3 degrees per frame of it on
    average and within 0.9 on every frame (measured: see docs/guide/face.md).
    """
    clip = np.stack([turn(astronaut(), -18 + 1.5 * i) for i in range(24)])
    # In a few turned frames a badge on her suit also reads as a face: the track must stay
    # on her face (it follows the previous frame's face), which the speed checks below test.
    with pytest.warns(EMOWarning, match="2 faces"):
        track = analyzer.analyze(clip, fps=30.0)
    assert track.found.all()
    assert np.all(track.boxes[:, 3] < 260)  # her face, not the badge lower down
    speed = head_speed(track)
    error = np.abs(speed - 1.5)
    assert error.mean() < 0.3, speed
    assert error.max() < 0.9, speed
    # A still head reads as (nearly) still.
    still = analyzer.analyze(np.stack([astronaut()] * 6), fps=30.0)
    assert head_speed(still).max() < 0.05
