"""Tests of `tfvae.mmd` against numpy computations."""

import numpy as np
import pytest
import tensorflow as tf

from tfvae import mmd


def _numpy_kernel(x, y, kernel):
  d = x.shape[1]
  sq = ((x[:, None, :] - y[None, :, :])**2).sum(-1)
  if kernel == "rbf":
    return np.exp(-sq / (2.0 * d))
  return 2.0 * d / (2.0 * d + sq)


def _numpy_mmd(x, y, kernel):
  """Unbiased MMD^2 with explicit loops over pairs i != j."""
  n, m = len(x), len(y)
  kxx = _numpy_kernel(x, x, kernel)
  kyy = _numpy_kernel(y, y, kernel)
  xx = sum(kxx[i, j] for i in range(n) for j in range(n) if i != j)
  yy = sum(kyy[i, j] for i in range(m) for j in range(m) if i != j)
  return (xx / (n * (n - 1)) + yy / (m * (m - 1))
          - 2.0 * _numpy_kernel(x, y, kernel).mean())


@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_kernel_matches_numpy(kernel):
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
  got = mmd.KERNELS[kernel](tf.constant(x), tf.constant(y)).numpy()
  np.testing.assert_allclose(got, _numpy_kernel(x, y, kernel), rtol=1e-10)


@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_mmd_matches_numpy(kernel):
  rng = np.random.default_rng(1)
  x, y = rng.normal(size=(7, 4)), rng.normal(1.0, 2.0, size=(6, 4))
  got = float(mmd.mmd(tf.constant(x), tf.constant(y), kernel))
  np.testing.assert_allclose(got, _numpy_mmd(x, y, kernel), rtol=1e-9)


@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_same_distribution_near_zero_shifted_positive(kernel):
  rng = np.random.default_rng(2)
  x, y = rng.normal(size=(400, 4)), rng.normal(size=(400, 4))
  same = float(mmd.mmd(tf.constant(x), tf.constant(y), kernel))
  shifted = float(mmd.mmd(tf.constant(x), tf.constant(y + 1.0), kernel))
  assert abs(same) < 5e-3, same
  assert shifted > 0.05, shifted
  assert shifted > 20 * abs(same)


def test_identical_samples():
  # Unbiased: with x = y the estimate is 2 (mean_offdiag k - 1) / n <= 0.
  x = tf.random.stateless_normal([50, 3], seed=[0, 1], dtype=tf.float64)
  got = float(mmd.mmd(x, x, "imq"))
  gram = _numpy_kernel(x.numpy(), x.numpy(), "imq")
  off = (gram.sum() - 50) / (50 * 49)
  np.testing.assert_allclose(got, 2 * (off - 1) / 50, rtol=1e-9)
  assert -0.05 < got <= 0


def test_single_example_is_finite():
  x = tf.ones([1, 2])
  assert np.isfinite(float(mmd.mmd(x, x + 1.0)))


def test_unknown_kernel():
  with pytest.raises(ValueError, match="imq"):
    mmd.mmd(tf.zeros([2, 2]), tf.zeros([2, 2]), "laplace")
