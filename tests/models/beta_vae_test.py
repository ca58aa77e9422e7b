"""Tests of `tfvae.models.beta_vae.BetaVAE`: the penalty hook."""

import numpy as np
import pytest
import tensorflow as tf

from tfvae import models
from tfvae.config import ModelConfig
from tfvae.models.beta_vae import BetaVAE

IMAGE_SHAPE = (4, 4, 1)
RATE = tf.constant([0.5, 3.0, 12.0])


def _model(**overrides):
  config = ModelConfig(**dict(dict(model="beta_vae", hidden_dims=(4,),
                                   latent_dim=2), **overrides))
  return models.build(config, IMAGE_SHAPE)


def test_check_config_accepts_beta_and_capacity():
  BetaVAE.check_config(ModelConfig(model="beta_vae", beta=4.0,
                                   capacity_max=25.0))


@pytest.mark.parametrize("beta, kl_weight", [(4.0, 1.0), (4.0, 0.5),
                                             (0.25, 0.8), (1.0, 1.0)])
def test_penalty_is_beta_times_weighted_rate(beta, kl_weight):
  model = _model(beta=beta)
  penalty = model.penalty(RATE, None, tf.constant(10, tf.int64),
                          tf.constant(kl_weight))
  np.testing.assert_allclose(penalty.numpy(),
                             beta * kl_weight * RATE.numpy(), rtol=1e-6)


@pytest.mark.parametrize("step, capacity", [(0, 0.0), (50, 5.0),
                                            (100, 10.0), (500, 10.0)])
def test_capacity_penalty(step, capacity):
  model = _model(capacity_max=10.0, capacity_steps=100, gamma=3.0, beta=4.0)
  # The KL schedule does not apply: kl_weight 0 changes nothing.
  penalty = model.penalty(RATE, None, tf.constant(step, tf.int64),
                          tf.constant(0.0))
  np.testing.assert_allclose(penalty.numpy(),
                             3.0 * np.abs(RATE.numpy() - capacity),
                             rtol=1e-6)


def test_beta_applies_to_free_bits_rate():
  model = _model(beta=2.0, free_bits=1.0)
  kl_per_dim = tf.constant([[0.1, 2.0], [0.3, 4.0]])
  penalty = model.penalty(tf.reduce_sum(kl_per_dim, -1), kl_per_dim,
                          tf.constant(0, tf.int64), tf.constant(1.0))
  # Dimension 0 (mean 0.2) is held at 1 nat; dimension 1 is its own KL.
  np.testing.assert_allclose(penalty.numpy(), 2.0 * np.array([3.0, 5.0]),
                             rtol=1e-6)


def test_compute_loss_uses_penalty():
  model = _model(beta=3.0)
  model.build_from_shape()
  rng = np.random.default_rng(0)
  images = tf.constant((rng.random((4,) + IMAGE_SHAPE) < 0.5).astype(
      np.float32))
  noise = tf.constant(rng.normal(size=(4, 2)).astype(np.float32))
  terms = model.compute_loss(images, noise, tf.constant(0, tf.int64),
                             tf.constant(1.0), training=False)
  np.testing.assert_allclose(
      terms["loss"].numpy(),
      terms["distortion"].numpy() + 3.0 * terms["rate"].numpy(), rtol=1e-5)
  np.testing.assert_allclose(
      terms["elbo"].numpy(),
      -(terms["distortion"].numpy() + terms["rate"].numpy()), rtol=1e-6)
