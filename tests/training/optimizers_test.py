"""The fused Adam takes the same steps as Keras's Adam."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae.training import optimizers


def _steps(optimizer, strategy=None, steps=5):
  """Runs `steps` Adam steps of a quadratic loss; returns the variables."""
  strategy = strategy or tf.distribute.get_strategy()
  rng = np.random.default_rng(0)
  with strategy.scope():
    variables = [tf.Variable(rng.standard_normal(shape).astype(np.float32))
                 for shape in ((7, 3), (3,))]
    optimizer.build(variables)
  targets = [tf.constant(rng.standard_normal(v.shape).astype(np.float32))
             for v in variables]

  @tf.function
  def step():
    def replica_step():
      with tf.GradientTape() as tape:
        loss = sum(tf.reduce_sum(tf.square(v * v - t))
                   for v, t in zip(variables, targets))
      grads = tape.gradient(loss, variables)
      optimizer.apply_gradients(zip(grads, variables))
    strategy.run(replica_step)

  for _ in range(steps):
    step()
  return [v.numpy() for v in variables], optimizer


@pytest.mark.parametrize("weight_decay", [None, 0.1])
def test_matches_keras_adam(weight_decay):
  expected, keras_adam = _steps(keras.optimizers.Adam(
      0.05, weight_decay=weight_decay))
  got, fused = _steps(optimizers.Adam(0.05, weight_decay=weight_decay))
  # The kernel rounds 1 - beta in float32, Keras in float64: steps agree to
  # float32 round-off, not bit for bit.
  for e, g in zip(expected, got):
    np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)
  # The moments the checkpoint holds agree too.
  for e, g in zip(keras_adam.variables, fused.variables):
    np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-4, atol=1e-5)
  assert int(fused.iterations.numpy()) == 5


def test_amsgrad_takes_keras_path():
  expected, _ = _steps(keras.optimizers.Adam(0.05, amsgrad=True))
  got, _ = _steps(optimizers.Adam(0.05, amsgrad=True))
  for e, g in zip(expected, got):
    np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7)
