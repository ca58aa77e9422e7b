"""Tests of `tfvae.models.iwae.IWAE`: the k-sample bound and zoo checks."""

import numpy as np
import pytest
import tensorflow as tf

from tests.models import tiny
from tests.models import zoo_harness
from tfvae.config import ModelConfig
from tfvae.errors import ConfigError
from tfvae.models import registry

IMAGE_SHAPE = tiny.IMAGE_SHAPE
STEP = tiny.STEP


def _model(**overrides):
  return tiny.build("iwae", latent_dim=2, **overrides)


_images = tiny.binary_images


def test_rejects_flags_it_cannot_use():
  with pytest.raises(ConfigError, match="--mmd_weight=3"):
    registry.check_options(ModelConfig(model="iwae", mmd_weight=3.0))
  with pytest.raises(ConfigError, match="--free_bits"):
    registry.check_options(ModelConfig(model="iwae", free_bits=0.5))
  registry.check_options(ModelConfig(model="iwae", iw_samples=10))


@pytest.mark.parametrize("overrides", [dict(prior="mixture",
                                             prior_components=3),
                                        dict(posterior_flow="iaf")])
def test_other_priors_and_flows(overrides):
  model = _model(iw_samples=3, **overrides)
  terms = model.compute_loss(_images(4), tf.random.stateless_normal(
      [4, 3, 2], [7, 8]), STEP, tf.constant(1.0), training=False)
  for value in terms.values():
    assert np.all(np.isfinite(value.numpy()))


def test_noise_shape():
  assert _model(iw_samples=7).noise_shape() == (7, 2)


def test_k1_bound_is_the_single_sample_elbo_estimate():
  model = _model(iw_samples=1)
  images = _images(6)
  noise = tf.random.stateless_normal([6, 1, 2], [1, 2])
  terms = model.compute_loss(images, noise, STEP, tf.constant(1.0),
                             training=False)
  # The base VAE's importance weight with the same noise is the one-sample
  # ELBO estimate log p(x|z) + log p(z) - log q(z|x).
  want = model.log_weights(images, tf.transpose(noise, [1, 0, 2]))[0]
  np.testing.assert_allclose(-terms["loss"].numpy(), want.numpy(), rtol=1e-5)
  # With the analytic KL, elbo differs from it only by the KL's MC error.
  params = model.encode(images)
  z, log_q = model.latent_sample(params, noise[:, 0])
  mc_rate = log_q - model.prior().log_prob(z)
  np.testing.assert_allclose(
      terms["elbo"].numpy() + terms["rate"].numpy() - mc_rate.numpy(),
      want.numpy(), rtol=1e-5, atol=1e-5)


def test_bound_is_log_mean_exp_of_weights():
  model = _model(iw_samples=5)
  images = _images(4)
  noise = tf.random.stateless_normal([4, 5, 2], [3, 4])
  terms = model.compute_loss(images, noise, STEP, tf.constant(1.0),
                             training=False)
  log_w = model.importance_terms(images, tf.transpose(noise, [1, 0, 2]))[0]
  log_w = log_w.numpy().astype(np.float64)
  want = np.log(np.mean(np.exp(log_w - log_w.max(0)), axis=0)) + log_w.max(0)
  np.testing.assert_allclose(-terms["loss"].numpy(), want, rtol=1e-5)
  np.testing.assert_allclose(terms["iwae_bound"].numpy(), want, rtol=1e-5)
  # distortion is the first sample's.
  np.testing.assert_allclose(
      terms["elbo"].numpy(), -(terms["distortion"] + terms["rate"]).numpy(),
      rtol=1e-6)


def test_bound_above_elbo_on_average():
  model = _model(iw_samples=50)
  images = _images(8)
  bounds, elbos = [], []
  for seed in range(20):
    noise = tf.random.stateless_normal([8, 50, 2], [seed, 9])
    terms = model.compute_loss(images, noise, STEP, tf.constant(1.0),
                               training=False)
    bounds.append(terms["iwae_bound"].numpy())
    elbos.append(terms["elbo"].numpy())
  assert np.mean(bounds) > np.mean(elbos)
  assert np.all(np.mean(bounds, 0) > np.mean(elbos, 0) - 0.05)


def test_log_weights_take_callers_noise_layout():
  model = _model(iw_samples=3)
  images = _images(2)
  noise = tf.random.stateless_normal([4, 2, 3, 2], [5, 6])
  got = model.log_weights(images, noise)
  assert got.shape == (4, 2)
  np.testing.assert_allclose(
      got.numpy(), model.log_weights(images, noise[:, :, 0]).numpy())


# ---- Zoo checks --------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  return zoo_harness.train_variant(
      ModelConfig(model="iwae", hidden_dims=(64,), latent_dim=4,
                  iw_samples=5), tmp_path_factory.mktemp("iwae"))


def test_learns(run):
  zoo_harness.assert_learns(run)
  assert run.metrics["test_nll"] <= run.metrics["test_neg_elbo"] + 0.5


def test_exports_and_serves(run, tmp_path):
  served = zoo_harness.assert_serves(run, tmp_path)
  zoo_harness.assert_loads(run)
  assert served["log_likelihood"]["log_prob"].shape == (2,)
  zoo_harness.assert_tflite_runs(run)
