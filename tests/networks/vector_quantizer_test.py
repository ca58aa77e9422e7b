"""Tests of `tfvae.networks.vector_quantizer` against numpy formulas."""

import numpy as np
import pytest
import tensorflow as tf

from tfvae.networks.vector_quantizer import VectorQuantizer

K, D = 5, 3


def _quantizer(ema_decay=0.0, commitment_cost=0.25, seed=0):
  layer = VectorQuantizer(K, D, commitment_cost=commitment_cost,
                          ema_decay=ema_decay)
  codebook = np.random.default_rng(seed).normal(size=(K, D)).astype(
      np.float32)
  layer.codebook.assign(codebook)
  if ema_decay:
    layer.ema_sum.assign(codebook)
  return layer, codebook


def _inputs(seed=1, shape=(2, 3, 4)):
  return np.random.default_rng(seed).normal(size=shape + (D,)).astype(
      np.float32)


def _nearest(z, codebook):
  distances = ((z[..., None, :] - codebook)**2).sum(-1)
  return distances.argmin(-1)


def test_picks_nearest_codebook_vector():
  layer, codebook = _quantizer()
  z = _inputs()
  out = layer(z)
  want = _nearest(z, codebook)
  assert out["indices"].dtype == tf.int32
  assert out["indices"].shape == (2, 3, 4)
  np.testing.assert_array_equal(out["indices"], want)
  np.testing.assert_allclose(out["quantized"], codebook[want], atol=1e-6)
  np.testing.assert_array_equal(layer.nearest(z), want)
  np.testing.assert_allclose(layer.lookup(want), codebook[want])


def test_straight_through_gradient_is_identity():
  layer, _ = _quantizer()
  z = tf.constant(_inputs())
  weights = tf.constant(_inputs(seed=7))
  with tf.GradientTape() as tape:
    tape.watch(z)
    out = tf.reduce_sum(layer(z)["quantized"] * weights)
  np.testing.assert_allclose(tape.gradient(out, z), weights, atol=1e-6)


@pytest.mark.parametrize("beta", [0.25, 1.5])
def test_losses_match_numpy(beta):
  layer, codebook = _quantizer(commitment_cost=beta)
  z = _inputs()
  out = layer(z)
  squared = ((z - codebook[_nearest(z, codebook)])**2).sum(-1)
  np.testing.assert_allclose(out["commitment_loss"], beta * squared,
                             rtol=1e-5)
  np.testing.assert_allclose(out["codebook_loss"], squared, rtol=1e-5)


def test_loss_gradients_reach_the_right_variables():
  layer, codebook = _quantizer(commitment_cost=0.5)
  z = tf.constant(_inputs())
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(z)
    out = layer(z)
    commitment = tf.reduce_sum(out["commitment_loss"])
    codebook_loss = tf.reduce_sum(out["codebook_loss"])
  assert tape.gradient(commitment, layer.codebook) is None
  assert tape.gradient(codebook_loss, z) is None
  nearest = codebook[_nearest(z.numpy(), codebook)]
  np.testing.assert_allclose(tape.gradient(commitment, z),
                             2 * 0.5 * (z.numpy() - nearest), atol=1e-5)


def test_ema_moves_codes_towards_assigned_means():
  decay, eps = 0.9, 1e-5
  layer, codebook = _quantizer(ema_decay=decay)
  assert not layer.codebook.trainable
  assert layer.trainable_weights == []
  z = _inputs(shape=(64,))
  indices = _nearest(z, codebook)
  out = layer(z, training=True)
  np.testing.assert_array_equal(out["indices"], indices)
  np.testing.assert_allclose(out["codebook_loss"], 0.0)
  counts = np.bincount(indices, minlength=K).astype(np.float64)
  sums = np.zeros((K, D))
  np.add.at(sums, indices, z)
  size = decay * 1.0 + (1 - decay) * counts
  ema_sum = decay * codebook + (1 - decay) * sums
  smoothed = (size + eps) / (size.sum() + K * eps) * size.sum()
  want = ema_sum / smoothed[:, None]
  np.testing.assert_allclose(layer.ema_cluster_size, size, rtol=1e-5)
  np.testing.assert_allclose(layer.ema_sum, ema_sum, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(layer.codebook, want, rtol=1e-4, atol=1e-5)
  # Each used code moves towards the mean of the vectors assigned to it.
  for k in np.flatnonzero(counts):
    mean = z[indices == k].mean(0)
    assert (np.linalg.norm(want[k] - mean)
            < np.linalg.norm(codebook[k] - mean))


def test_ema_converges_to_cluster_means():
  layer, codebook = _quantizer(ema_decay=0.5)
  z = _inputs(shape=(200,))
  for _ in range(60):
    indices = layer(z, training=True)["indices"].numpy()
  for k in np.unique(indices):
    np.testing.assert_allclose(layer.codebook.numpy()[k],
                               z[indices == k].mean(0), atol=1e-3)
  del codebook


def test_no_ema_update_outside_training():
  layer, codebook = _quantizer(ema_decay=0.9)
  layer(_inputs(), training=False)
  np.testing.assert_allclose(layer.codebook, codebook)

