"""The five-point similarity fit, against independent computations.

The least-squares similarity (rotation, scale, translation) of 2-D points has a closed form
in complex numbers: with centred points ``x``, ``y`` as complex numbers, ``a = sum(conj(x) y)
/ sum(|x|^2)`` is ``s e^{i theta}``. scikit-image's ``SimilarityTransform`` (what insightface
calls) is the second reference.
"""

from __future__ import annotations

import numpy as np
import pytest

from emo.face.insightface.geometry import ARCFACE_TEMPLATE, arcface_template, similarity_transform


def closed_form(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    source, target = source.astype(np.float64), target.astype(np.float64)
    x = source[:, 0] + 1j * source[:, 1]
    y = target[:, 0] + 1j * target[:, 1]
    xc, yc = x - x.mean(), y - y.mean()
    a = (np.conj(xc) * yc).sum() / (np.abs(xc) ** 2).sum()
    t = y.mean() - a * x.mean()
    return np.array([[a.real, -a.imag, t.real], [a.imag, a.real, t.imag]])


def random_keypoints(rng: np.random.Generator) -> np.ndarray:
    """A face's five points: the template moved by a random similarity plus noise, or mirrored."""
    angle = rng.uniform(-np.pi, np.pi)
    scale = rng.uniform(0.3, 6.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = ARCFACE_TEMPLATE.astype(np.float64) @ (scale * rotation).T + rng.uniform(-500, 500, 2)
    if rng.random() < 0.3:
        points[:, 0] *= -1  # a mirrored face: the best *proper* similarity is still wanted
    return (points + rng.normal(0, 3, points.shape)).astype(np.float32)


def test_equals_the_complex_closed_form() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        keypoints = random_keypoints(rng)
        matrix = similarity_transform(keypoints, ARCFACE_TEMPLATE)
        np.testing.assert_allclose(
            matrix, closed_form(keypoints, ARCFACE_TEMPLATE), atol=1e-10, rtol=1e-9
        )
        # A similarity: [[a, -b], [b, a]].
        assert matrix[0, 0] == pytest.approx(matrix[1, 1]) and matrix[0, 1] == pytest.approx(
            -matrix[1, 0]
        )


def test_equals_scikit_image() -> None:
    transform = pytest.importorskip("skimage.transform")
    rng = np.random.default_rng(1)
    for _ in range(50):
        keypoints = random_keypoints(rng).astype(np.float64)
        template = ARCFACE_TEMPLATE.astype(np.float64)
        if hasattr(transform.SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
            reference = transform.SimilarityTransform.from_estimate(keypoints, template)
        else:
            reference = transform.SimilarityTransform()
            reference.estimate(keypoints, template)
        np.testing.assert_allclose(
            similarity_transform(keypoints, ARCFACE_TEMPLATE), reference.params[:2], atol=1e-9
        )


def test_recovers_an_exact_similarity() -> None:
    angle, scale, shift = 0.4, 0.37, np.array([-12.5, 30.25])
    forward = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = np.array(
        [[100.0, 200.0], [180.0, 190.0], [150.0, 260.0], [110.0, 300.0], [175.0, 305.0]]
    )
    matrix = similarity_transform(source, source @ forward.T + shift)
    np.testing.assert_allclose(matrix[:, :2], forward, atol=1e-12)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-10)


def test_templates_for_other_crop_sizes() -> None:
    np.testing.assert_array_equal(arcface_template(112), ARCFACE_TEMPLATE)
    np.testing.assert_allclose(arcface_template(224), ARCFACE_TEMPLATE * 2, rtol=1e-7)
    expected_128 = ARCFACE_TEMPLATE + np.array([8.0, 0.0], np.float32)
    np.testing.assert_allclose(arcface_template(128), expected_128, rtol=1e-7)
    with pytest.raises(ValueError, match="112"):
        arcface_template(100)
    with pytest.raises(ValueError):
        ARCFACE_TEMPLATE[0, 0] = 1.0  # read-only


def test_rejects_degenerate_points() -> None:
    with pytest.raises(ValueError, match="all equal"):
        similarity_transform(np.ones((5, 2)), ARCFACE_TEMPLATE)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        similarity_transform(np.ones((5, 3)), ARCFACE_TEMPLATE)
