"""Tests of `tfvae.objectives` against numpy closed forms."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfvae import objectives


def test_elbo_is_negative_sum():
  distortion = tf.constant([10.0, 3.5, 0.0])
  rate = tf.constant([2.0, 0.5, 1.25])
  np.testing.assert_allclose(objectives.elbo(distortion, rate).numpy(),
                             [-12.0, -4.0, -1.25])


@pytest.fixture
def kl_per_dim():
  # Batch means per dimension: 0.1, 0.55, 2.0, 0.5 (exactly at budget).
  return tf.constant([[0.0, 0.5, 1.0, 0.25],
                      [0.2, 0.6, 3.0, 0.75]])


def test_free_bits_rate_batch_mean(kl_per_dim):
  free_bits = 0.5
  rate = objectives.free_bits_rate(kl_per_dim, free_bits).numpy()
  assert rate.shape == (2,)
  expected = np.maximum(kl_per_dim.numpy().mean(axis=0), free_bits).sum()
  assert rate.mean() == pytest.approx(expected, rel=1e-6)


def test_free_bits_rate_zero_budget_is_plain_rate(kl_per_dim):
  rate = objectives.free_bits_rate(kl_per_dim, 0.0).numpy()
  np.testing.assert_allclose(rate, kl_per_dim.numpy().sum(axis=-1),
                             rtol=1e-6)


def test_free_bits_rate_gradient_only_above_budget(kl_per_dim):
  kl = tf.Variable(kl_per_dim)
  with tf.GradientTape() as tape:
    loss = tf.reduce_mean(objectives.free_bits_rate(kl, 0.5))
  grad = tape.gradient(loss, kl).numpy()
  # Dimensions 0 (mean 0.1) and 3 (mean 0.5, not above) are under the
  # budget: zero gradient. Dimensions 1 and 2: d mean / d KL_bd = 1 / batch.
  expected = np.array([[0.0, 0.5, 0.5, 0.0],
                       [0.0, 0.5, 0.5, 0.0]], np.float32)
  np.testing.assert_allclose(grad, expected)


def test_free_bits_rate_gradient_flows_to_parameters():
  loc = tf.Variable([[0.01, 2.0], [-0.01, 1.0]])
  with tf.GradientTape() as tape:
    kl = 0.5 * tf.square(loc)  # KL of N(loc, 1) || N(0, 1) per dimension.
    loss = tf.reduce_mean(objectives.free_bits_rate(kl, 0.25))
  grad = tape.gradient(loss, loc).numpy()
  np.testing.assert_allclose(grad[:, 0], [0.0, 0.0])
  np.testing.assert_allclose(grad[:, 1], loc.numpy()[:, 1] / 2, rtol=1e-6)


def _numpy_log_mean_exp(x, axis):
  x = np.asarray(x, np.float64)
  top = x.max(axis=axis, keepdims=True)
  return (np.log(np.mean(np.exp(x - top), axis=axis))
          + np.squeeze(top, axis=axis))


@pytest.mark.parametrize("axis", [0, 1])
def test_log_mean_exp_matches_numpy(axis):
  x = np.random.default_rng(0).normal(scale=5.0, size=(7, 3)).astype(
      np.float32)
  np.testing.assert_allclose(objectives.log_mean_exp(x, axis=axis).numpy(),
                             _numpy_log_mean_exp(x, axis), rtol=1e-5)


def test_log_mean_exp_is_stable_for_large_magnitudes():
  x = tf.constant([[-1000.0, 1000.0], [-1000.0, 1000.0 + math.log(3.0)]])
  value = objectives.log_mean_exp(x, axis=0).numpy()
  assert np.all(np.isfinite(value))
  np.testing.assert_allclose(value, [-1000.0, 1000.0 + math.log(2.0)],
                             rtol=1e-6)


def test_iwae_bound_k1_is_the_log_weight():
  log_weights = tf.constant([[-3.0, -120.5, 7.25]])
  np.testing.assert_allclose(objectives.iwae_bound(log_weights).numpy(),
                             [-3.0, -120.5, 7.25])


def test_iwae_bound_values():
  log_weights = np.log(np.array([[1.0, 4.0], [3.0, 4.0]]))
  np.testing.assert_allclose(
      objectives.iwae_bound(tf.constant(log_weights)).numpy(),
      np.log([2.0, 4.0]), rtol=1e-12)


def test_iwae_bound_at_least_mean_log_weight():
  # Jensen: log mean exp(w) >= mean w, equality only for equal weights.
  log_weights = np.random.default_rng(1).normal(
      scale=2.0, size=(50, 6)).astype(np.float32)
  bound = objectives.iwae_bound(log_weights).numpy()
  assert bound.shape == (6,)
  assert np.all(bound > log_weights.mean(axis=0))


@pytest.mark.parametrize("nats, dims, expected", [
    (math.log(2.0) * 784, 784, 1.0),
    (100.0, 784, 100.0 / (784 * math.log(2.0))),
    (0.0, 3072, 0.0)])
def test_bits_per_dim(nats, dims, expected):
  assert float(objectives.bits_per_dim(nats, dims)) == pytest.approx(expected)
