"""Tests of `tfvae.networks.pixelcnn`: causal masks, likelihood, sampling."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae.networks import pixelcnn

K = 5


def test_masks():
  a = pixelcnn.causal_mask(3, "A")[..., 0, 0]
  b = pixelcnn.causal_mask(3, "B")[..., 0, 0]
  np.testing.assert_array_equal(a, [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
  np.testing.assert_array_equal(b, [[1, 1, 1], [1, 1, 0], [0, 0, 0]])
  with pytest.raises(ValueError):
    pixelcnn.causal_mask(3, "C")


@pytest.mark.parametrize("height,width,layers", [(4, 4, 1), (4, 5, 3),
                                                 (7, 7, 2)])
def test_output_depends_only_on_earlier_positions(height, width, layers):
  # Seeded: with some random weights a ReLU zeroes a neighbour's path, and
  # the "neighbour is seen" checks below would depend on test order.
  keras.utils.set_random_seed(0)
  net = pixelcnn.PixelCNN(K, layers, 8)
  inputs = tf.constant(np.random.default_rng(0).normal(
      size=(1, height, width, K)).astype(np.float32))
  net.logits_from_one_hot(inputs)
  for position in range(height * width):
    row, column = divmod(position, width)
    with tf.GradientTape() as tape:
      tape.watch(inputs)
      logits = net.logits_from_one_hot(inputs)
      out = tf.reduce_sum(logits[0, row, column] * tf.range(1.0, K + 1))
    grad = np.abs(tape.gradient(out, inputs).numpy()[0]).sum(-1).reshape(-1)
    assert np.all(grad[position:] == 0), (position, grad)
    # The neighbours to the left and above are seen.
    if column:
      assert grad[position - 1] > 0, position
    if row:
      assert grad[position - width] > 0, position


def test_log_prob_is_sum_of_conditionals():
  net = pixelcnn.PixelCNN(K, 2, 8)
  indices = tf.constant(np.random.default_rng(1).integers(
      0, K, size=(3, 4, 4)), tf.int32)
  logits = net(indices).numpy()
  log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  want = np.take_along_axis(log_softmax, indices.numpy()[..., None],
                            -1).sum(axis=(1, 2, 3))
  np.testing.assert_allclose(net.log_prob(indices), want, rtol=1e-5)


def test_sampling_inverts_the_cdf():
  net = pixelcnn.PixelCNN(K, 2, 8)
  uniform = tf.constant(np.random.default_rng(2).uniform(
      size=(6, 12)).astype(np.float32))
  grid = net.sample_from_uniform(uniform, (3, 4)).numpy()
  assert grid.shape == (6, 3, 4) and grid.dtype == np.int32
  assert np.all((grid >= 0) & (grid < K))
  # Each drawn index is the inverse CDF of its conditional at the final grid
  # (valid because position p only sees positions before it).
  probs = tf.nn.softmax(net(tf.constant(grid))).numpy().reshape(6, 12, K)
  cdf = np.cumsum(probs, -1)
  want = np.minimum((cdf < uniform.numpy()[..., None]).sum(-1), K - 1)
  np.testing.assert_array_equal(grid.reshape(6, 12), want)


def test_sampling_follows_the_model():
  """Frequencies of a 1x2 grid match the model's joint distribution."""
  net = pixelcnn.PixelCNN(3, 1, 4)
  net(tf.zeros([1, 1, 2], tf.int32))
  uniform = tf.constant(np.random.default_rng(3).uniform(
      size=(20000, 2)).astype(np.float32))
  grid = net.sample_from_uniform(uniform, (1, 2)).numpy().reshape(-1, 2)
  counts = np.zeros((3, 3))
  np.add.at(counts, (grid[:, 0], grid[:, 1]), 1)
  pairs = tf.constant([[[a, b]] for a in range(3) for b in range(3)],
                      tf.int32)
  joint = np.exp(net.log_prob(pairs).numpy()).reshape(3, 3)
  np.testing.assert_allclose(joint.sum(), 1.0, rtol=1e-5)
  np.testing.assert_allclose(counts / len(grid), joint, atol=0.02)
