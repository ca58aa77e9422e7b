"""Tests of `tfvae.counter_random`: distribution, determinism, seeds.

The statistical checks use fixed seeds, so they are deterministic; their
bounds are several standard errors wide on 100,000 draws.
"""

import numpy as np
import pytest
import tensorflow as tf

from tfvae import counter_random

NUM_DRAWS = 100_000
SEED = 1234
# Chi-square with 19 degrees of freedom: P(X > 43.82) = 0.001.
CHI2_19_999 = 43.82


def _uniform(shape, seed):
  return counter_random.uniform(tf.constant(shape, tf.int32),
                                tf.constant(seed, tf.int32)).numpy()


def _normal(shape, seed):
  return counter_random.normal(tf.constant(shape, tf.int32),
                               tf.constant(seed, tf.int32)).numpy()


@pytest.fixture(scope="module")
def uniforms():
  return _uniform([NUM_DRAWS], SEED).astype(np.float64)


@pytest.fixture(scope="module")
def normals():
  return _normal([NUM_DRAWS], SEED).astype(np.float64)


def test_uniform_shape_and_dtype():
  draws = counter_random.uniform([3, 4, 5], tf.constant(0))
  assert draws.shape == (3, 4, 5)
  assert draws.dtype == tf.float32


def test_uniform_in_open_unit_interval(uniforms):
  assert uniforms.min() > 0
  assert uniforms.max() < 1
  # The whole interval is used (no large gap at either end).
  assert uniforms.min() < 1e-3
  assert uniforms.max() > 0.999


def test_uniform_mean_and_variance(uniforms):
  # Standard errors: 0.0009 (mean) and 0.0003 (variance).
  assert abs(uniforms.mean() - 0.5) < 0.005
  assert abs(uniforms.var() - 1 / 12) < 0.002


def test_uniform_no_lag_one_correlation(uniforms):
  r = np.corrcoef(uniforms[:-1], uniforms[1:])[0, 1]
  assert abs(r) < 0.01


def test_uniform_no_correlation_along_second_axis():
  draws = _uniform([NUM_DRAWS // 4, 4], SEED).astype(np.float64)
  for column in range(1, 4):
    r = np.corrcoef(draws[:, 0], draws[:, column])[0, 1]
    assert abs(r) < 0.02, column


def test_uniform_chi_square_20_bins(uniforms):
  counts, _ = np.histogram(uniforms, bins=20, range=(0.0, 1.0))
  expected = NUM_DRAWS / 20
  chi2 = float(np.sum((counts - expected)**2 / expected))
  assert chi2 < CHI2_19_999, (chi2, counts)


def test_uniform_few_repeated_values(uniforms):
  # ~30 random bits per draw: repeats among 1e5 draws should be rare.
  assert len(np.unique(uniforms)) > 0.99 * NUM_DRAWS


def test_normal_moments(normals):
  assert np.all(np.isfinite(normals))
  assert abs(normals.mean()) < 0.02
  assert abs(normals.std() - 1) < 0.02
  kurtosis = np.mean((normals - normals.mean())**4) / normals.var()**2
  assert abs(kurtosis - 3) < 0.1
  skewness = np.mean((normals - normals.mean())**3) / normals.std()**3
  assert abs(skewness) < 0.05


def test_normal_tails(normals):
  # P(|X| > 2) = 0.0455 and P(|X| > 3) = 0.0027 for a standard Normal.
  assert abs(np.mean(np.abs(normals) > 2) - 0.0455) < 0.004
  assert abs(np.mean(np.abs(normals) > 3) - 0.0027) < 0.001


def test_normal_no_lag_one_correlation(normals):
  assert abs(np.corrcoef(normals[:-1], normals[1:])[0, 1]) < 0.01


@pytest.mark.parametrize("function", [_uniform, _normal])
def test_deterministic_for_equal_seed_and_shape(function):
  np.testing.assert_array_equal(function([64, 5], 99), function([64, 5], 99))


@pytest.mark.parametrize("function", [_uniform, _normal])
def test_element_depends_only_on_index_and_seed(function):
  flat = function([60], 5)
  np.testing.assert_array_equal(function([12, 5], 5).reshape(-1), flat)
  np.testing.assert_array_equal(function([20], 5), flat[:20])


@pytest.mark.parametrize("offset", [1, counter_random.PRIME, -1,
                                    counter_random.PRIME + 1])
@pytest.mark.parametrize("function", [_uniform, _normal])
def test_different_for_other_seeds(function, offset):
  base = function([10_000], SEED)
  other = function([10_000], SEED + offset)
  assert np.mean(base == other) < 0.01
  assert abs(np.corrcoef(base, other)[0, 1]) < 0.05


@pytest.mark.parametrize("seed", [-1, -7, -counter_random.PRIME,
                                  -(2**31), 2**31 - 1])
def test_extreme_and_negative_seeds(seed):
  uniforms = _uniform([20_000], seed)
  assert uniforms.min() > 0 and uniforms.max() < 1
  assert abs(uniforms.mean() - 0.5) < 0.02
  normals = _normal([20_000], seed)
  assert np.all(np.isfinite(normals))
  assert abs(normals.std() - 1) < 0.05
  np.testing.assert_array_equal(_normal([20_000], seed), normals)


def test_negative_seed_differs_from_positive():
  assert np.mean(_normal([1000], -3) == _normal([1000], 3)) < 0.01


# The integer hash and the uniforms are exact everywhere; the Box-Muller
# transcendental functions (log, sqrt, cos) may round differently once graph
# optimizations rewrite them (the module docstring allows this): seen 4.8e-7.
@pytest.mark.parametrize("name, atol", [("uniform", 0.0), ("normal", 2e-6)])
def test_eager_equals_tf_function(name, atol):
  function = getattr(counter_random, name)
  traced = tf.function(function, input_signature=[
      tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32)])
  for shape, seed in (([7, 3], 0), ([1000], -42), ([2, 2, 2], 2**30)):
    eager = function(tf.constant(shape), tf.constant(seed)).numpy()
    graph = traced(tf.constant(shape), tf.constant(seed)).numpy()
    np.testing.assert_allclose(graph, eager, rtol=0, atol=atol)


def test_eager_equals_xla():
  traced = tf.function(counter_random.normal, jit_compile=True)
  eager = _normal([500], 17)
  np.testing.assert_allclose(
      traced(tf.constant([500]), tf.constant(17)).numpy(), eager, rtol=0,
      atol=1e-5)


def test_seed_may_be_python_int_or_int64():
  want = _normal([50], 12)
  np.testing.assert_array_equal(counter_random.normal([50], 12).numpy(), want)
  np.testing.assert_array_equal(
      counter_random.normal([50], tf.constant(12, tf.int64)).numpy(), want)


def test_empty_shape():
  assert counter_random.normal([0, 4], tf.constant(1)).shape == (0, 4)
