"""Tests of `tfvae.models.vae.VAE`: config checks, loss terms, sampling."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae import models
from tfvae.config import ModelConfig
from tfvae.errors import ConfigError
from tfvae.models import registry
from tfvae.models.vae import VAE

IMAGE_SHAPE = (8, 8, 1)
STEP = tf.constant(0, tf.int64)


def _build(**overrides):
  keras.utils.set_random_seed(0)
  config = ModelConfig(**dict(dict(hidden_dims=(16,), latent_dim=4),
                              **overrides))
  model = models.build(config, IMAGE_SHAPE)
  model.build_from_shape()
  return model


@pytest.fixture(scope="module")
def model():
  return _build()


@pytest.fixture(scope="module")
def batch():
  rng = np.random.default_rng(0)
  images = (rng.random((6,) + IMAGE_SHAPE) < 0.4).astype(np.float32)
  noise = rng.normal(size=(6, 4)).astype(np.float32)
  return tf.constant(images), tf.constant(noise)


@pytest.mark.parametrize("overrides", [dict(beta=4.0), dict(beta=0.5),
                                       dict(capacity_max=25.0)])
def test_vae_rejects_beta_vae_options(overrides):
  name = next(iter(overrides))
  with pytest.raises(ConfigError,
                     match=f"--{name}=.* does not apply to --model=vae.*"
                           "beta_vae"):
    registry.check_options(ModelConfig(**overrides))


def test_vae_accepts_defaults_and_its_own_options():
  registry.check_options(ModelConfig())
  registry.check_options(ModelConfig(free_bits=0.5, prior_components=10))


def test_encode_decode_shapes(model, batch):
  images, _ = batch
  params = model.encode(images)
  assert tuple(params["loc"].shape) == (6, 4)
  assert np.all(params["scale"].numpy() > 0)
  decoded = model.decode(params["loc"])
  assert set(decoded) == {"logits", "mean"}
  assert tuple(decoded["mean"].shape) == (6,) + IMAGE_SHAPE
  np.testing.assert_allclose(
      decoded["mean"].numpy(), 1 / (1 + np.exp(-decoded["logits"].numpy())),
      rtol=1e-5)
  np.testing.assert_allclose(model.reconstruct(images).numpy(),
                             decoded["mean"].numpy(), rtol=1e-6)


def test_compute_loss_terms_match_closed_forms(model, batch):
  images, noise = batch
  terms = model.compute_loss(images, noise, STEP, tf.constant(1.0),
                             training=False)
  for name in ("loss", "distortion", "rate", "elbo"):
    assert tuple(terms[name].shape) == (6,)
  params = model.encode(images)
  loc, scale = params["loc"].numpy(), params["scale"].numpy()
  rate = 0.5 * np.sum(loc**2 + scale**2 - 1 - 2 * np.log(scale), axis=-1)
  np.testing.assert_allclose(terms["rate"].numpy(), rate, rtol=1e-4)
  z = loc + scale * noise.numpy()
  logits = model.decode(tf.constant(z))["logits"].numpy().astype(np.float64)
  x = images.numpy()
  log_px = np.sum(x * logits - np.logaddexp(0, logits), axis=(1, 2, 3))
  np.testing.assert_allclose(terms["distortion"].numpy(), -log_px,
                             rtol=1e-4)
  np.testing.assert_allclose(
      terms["elbo"].numpy(),
      -(terms["distortion"].numpy() + terms["rate"].numpy()), rtol=1e-6)
  np.testing.assert_allclose(terms["loss"].numpy(), -terms["elbo"].numpy(),
                             rtol=1e-6)


def test_compute_loss_applies_kl_weight(model, batch):
  images, noise = batch
  terms = model.compute_loss(images, noise, STEP, tf.constant(0.25),
                             training=False)
  np.testing.assert_allclose(
      terms["loss"].numpy(),
      terms["distortion"].numpy() + 0.25 * terms["rate"].numpy(), rtol=1e-5)
  # The ELBO reported is the true ELBO, whatever the KL weight.
  np.testing.assert_allclose(
      terms["elbo"].numpy(),
      -(terms["distortion"].numpy() + terms["rate"].numpy()), rtol=1e-6)


def test_compute_loss_with_free_bits():
  free_bits = 0.5
  model = _build(free_bits=free_bits)
  rng = np.random.default_rng(5)
  images = tf.constant((rng.random((6,) + IMAGE_SHAPE) < 0.4).astype(
      np.float32))
  noise = tf.constant(rng.normal(size=(6, 4)).astype(np.float32))
  terms = model.compute_loss(images, noise, STEP, tf.constant(1.0),
                             training=False)
  params = model.encode(images)
  loc, scale = params["loc"].numpy(), params["scale"].numpy()
  kl = 0.5 * (loc**2 + scale**2 - 1 - 2 * np.log(scale))
  penalty = np.maximum(kl.mean(axis=0), free_bits).sum()
  assert float(np.mean(terms["loss"] - terms["distortion"])) == (
      pytest.approx(penalty, rel=1e-4))
  np.testing.assert_allclose(terms["rate"].numpy(), kl.sum(-1), rtol=1e-4)


def test_sample_deterministic_for_equal_seeds(model):
  seed = tf.constant([3, 7], tf.int32)
  first = model.sample(5, seed=seed).numpy()
  second = model.sample(5, seed=tf.constant([3, 7], tf.int32)).numpy()
  other = model.sample(5, seed=tf.constant([4, 7], tf.int32)).numpy()
  assert first.shape == (5,) + IMAGE_SHAPE
  np.testing.assert_array_equal(first, second)
  assert not np.allclose(first, other)
  assert first.min() >= 0.0 and first.max() <= 1.0


def test_sample_gaussian_in_unit_interval():
  model = _build(likelihood="gaussian")
  images = model.sample(4, seed=tf.constant([1, 2], tf.int32)).numpy()
  assert images.shape == (4,) + IMAGE_SHAPE
  assert images.min() >= 0.0 and images.max() <= 1.0


def test_log_weights_shape_and_value(model, batch):
  images, _ = batch
  k = 3
  noise = np.random.default_rng(7).normal(size=(k, 6, 4)).astype(np.float32)
  log_w = model.log_weights(images, tf.constant(noise)).numpy()
  assert log_w.shape == (k, 6)
  params = model.encode(images)
  loc, scale = params["loc"].numpy(), params["scale"].numpy()
  x = images.numpy()
  for i in range(k):
    z = loc + scale * noise[i]
    logits = model.decode(tf.constant(z))["logits"].numpy().astype(
        np.float64)
    log_px = np.sum(x * logits - np.logaddexp(0, logits), axis=(1, 2, 3))
    log_pz = np.sum(-0.5 * z**2 - 0.5 * math.log(2 * math.pi), axis=-1)
    log_qz = np.sum(-0.5 * noise[i]**2 - np.log(scale)
                    - 0.5 * math.log(2 * math.pi), axis=-1)
    np.testing.assert_allclose(log_w[i], log_px + log_pz - log_qz,
                               rtol=1e-4, atol=1e-3)


def test_log_weights_gaussian_shape():
  model = _build(likelihood="gaussian")
  images = tf.constant(np.random.default_rng(8).random(
      (2,) + IMAGE_SHAPE).astype(np.float32))
  noise = tf.zeros((5, 2, 4))
  log_w = model.log_weights(images, noise).numpy()
  assert log_w.shape == (5, 2)
  # Equal noise: every sample gives the same weight.
  np.testing.assert_allclose(log_w, np.broadcast_to(log_w[0], (5, 2)),
                             rtol=1e-5)
