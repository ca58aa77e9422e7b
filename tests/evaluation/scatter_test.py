"""Tests of `tfvae.evaluation.scatter`: the 2-D projection of codes."""

import numpy as np

from tfvae.evaluation import scatter


def test_projection_is_the_first_two_principal_components():
  rng = np.random.default_rng(0)
  # Variance 9 along (1, 1, 0)/sqrt2, 1 along (0, 0, 1), ~0 elsewhere.
  t, u = rng.normal(0, 3, 500), rng.normal(0, 1, 500)
  t, u = t - t.mean(), u - u.mean()
  u -= (u @ t) / (t @ t) * t  # Uncorrelated in the sample, exactly.
  codes = np.stack([t, t, u], 1) / np.array([np.sqrt(2), np.sqrt(2), 1])
  points = scatter.project_2d(codes + 5.0)
  np.testing.assert_allclose(points.mean(axis=0), 0, atol=1e-9)
  np.testing.assert_allclose(np.abs(points[:, 0]), np.abs(t),
                             atol=1e-9)
  np.testing.assert_allclose(np.abs(points[:, 1]), np.abs(u),
                             atol=1e-9)


def test_one_dimensional_codes_get_a_zero_second_axis():
  points = scatter.project_2d(np.array([[1.0], [3.0]]))
  np.testing.assert_allclose(points, [[-1.0, 0.0], [1.0, 0.0]])


def test_picture_has_a_colour_per_class():
  rng = np.random.default_rng(1)
  labels = np.repeat(np.arange(3), 50)
  codes = rng.normal(size=(150, 4)) + labels[:, None] * 4.0
  picture = scatter.latent_scatter(codes, labels, ("a", "b", "c"))
  assert picture.dtype == np.uint8 and picture.shape[2] == 3
  colours = {tuple(c) for c in picture.reshape(-1, 3).tolist()}
  assert all(scatter.PALETTE[i] in colours for i in range(3))
  assert scatter.PALETTE[3] not in colours
