"""Tests of `tfvae.networks.made`: masks and the autoregressive property."""

import numpy as np
import pytest
import tensorflow as tf

from tfvae.networks import made


def _jacobians(network, x):
  """`[batch, d, d]` Jacobians of the shift and log-scale heads."""
  x = tf.constant(x)
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(x)
    shift, log_scale = network(x)
  return (tape.batch_jacobian(shift, x).numpy(),
          tape.batch_jacobian(log_scale, x).numpy())


@pytest.mark.parametrize("ordering", [None, "reversed", [3, 1, 4, 2, 5]])
@pytest.mark.parametrize("hidden_dims", [(16,), (8, 7)])
def test_autoregressive(ordering, hidden_dims):
  network = made.MADE(5, hidden_dims, ordering=ordering)
  # Random weights so that no allowed connection is zero by chance.
  rng = np.random.default_rng(0)
  for variable in network.weights:
    variable.assign(rng.normal(size=variable.shape).astype(np.float32))
  x = rng.normal(size=(64, 5)).astype(np.float32)
  degrees = network.ordering
  allowed = degrees[None, :] < degrees[:, None]  # [out i, in j]
  for jacobian in _jacobians(network, x):
    np.testing.assert_array_equal(jacobian[:, ~allowed], 0.0)
    # Every allowed dependence is realized for some example.
    assert np.all(np.abs(jacobian).max(axis=0)[allowed] > 0)


def test_output_shapes_and_initial_log_scale():
  network = made.MADE(3, (8,), log_scale_bias=2.0)
  shift, log_scale = network(np.zeros((6, 3), np.float32))
  assert tuple(shift.shape) == (6, 3)
  assert tuple(log_scale.shape) == (6, 3)
  np.testing.assert_allclose(log_scale.numpy(), 2.0)


def test_one_dimension_has_constant_outputs():
  network = made.MADE(1, (4,))
  _, log_scale_jacobian = _jacobians(
      network, np.ones((2, 1), np.float32))
  np.testing.assert_array_equal(log_scale_jacobian, 0.0)


def test_rejects_bad_ordering():
  with pytest.raises(ValueError, match="permutation"):
    made.MADE(3, (4,), ordering=[1, 1, 2])
