"""The pose maths: angle conventions, the solvePnP fit on exact projections, relative angles."""

from __future__ import annotations

import numpy as np
import pytest

from emo.face.pose import (
    MODEL_INDICES,
    MODEL_POINTS,
    camera_matrix,
    euler_to_matrix,
    matrix_to_euler,
    relative_angle,
    solve_pose,
)

cv2 = pytest.importorskip("cv2")


@pytest.mark.parametrize("pose", [(0, 0, 0), (30, -10, 5), (-45, 20, -60), (10, 35, 170)])
def test_euler_round_trip(pose: tuple[float, float, float]) -> None:
    matrix = euler_to_matrix(*pose)
    np.testing.assert_allclose(matrix @ matrix.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(matrix_to_euler(matrix), pose, atol=1e-9)


def test_sign_conventions() -> None:
    nose = np.array([0.0, 0.0, -1.0])  # points at the camera
    assert (euler_to_matrix(30, 0, 0) @ nose)[0] > 0.4  # yaw > 0: nose towards the image's right
    assert (euler_to_matrix(0, 30, 0) @ nose)[1] < -0.4  # pitch > 0: nose up (y points down)
    right = euler_to_matrix(0, 0, 30) @ np.array([1.0, 0.0, 0.0])
    assert right[1] < -0.4  # roll > 0: counter-clockwise as seen (the x axis turns up)


def _project(pose: tuple[float, float, float], height: int = 512, width: int = 512) -> np.ndarray:
    rotation = euler_to_matrix(*pose)
    rvec, _ = cv2.Rodrigues(rotation)
    tvec = np.array([[10.0], [-5.0], [600.0]])
    points, _ = cv2.projectPoints(MODEL_POINTS, rvec, tvec, camera_matrix(height, width), None)
    landmarks = np.full((68, 2), 1e6)
    landmarks[MODEL_INDICES] = points.reshape(-1, 2)
    return landmarks


@pytest.mark.parametrize("pose", [(0, 0, 0), (25, 0, 0), (-20, 10, 0), (10, -15, 20), (0, 0, -40)])
def test_solve_pose_recovers_a_known_pose_from_exact_points(
    pose: tuple[float, float, float],
) -> None:
    estimate = solve_pose(cv2, _project(pose), 512, 512)
    np.testing.assert_allclose(estimate, pose, atol=0.5)


def test_relative_angle_is_the_geodesic_angle() -> None:
    assert relative_angle(np.array([0.0, 0, 0]), np.array([0.0, 0, 17])) == pytest.approx(17)
    assert relative_angle(np.array([10.0, 0, 0]), np.array([-5.0, 0, 0])) == pytest.approx(15)
    # Independent of the split into angles: 3-4-5 rotations about orthogonal axes combine.
    both = relative_angle(np.array([[0.0, 0, 0]]), np.array([[3.0, 4.0, 0.0]]))[0]
    assert both == pytest.approx(5.0, abs=0.01)
    assert np.isnan(relative_angle(np.array([np.nan, 0, 0]), np.zeros(3)))
