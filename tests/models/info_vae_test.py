"""Tests of `tfvae.models.info_vae.InfoVAE`: the MMD loss and zoo checks."""

import numpy as np
import pytest
import tensorflow as tf

from tests.models import zoo_harness
from tfvae import mmd
from tests.models import tiny
from tfvae.config import ModelConfig
from tfvae.errors import ConfigError
from tfvae.models import registry

IMAGE_SHAPE = tiny.IMAGE_SHAPE
STEP = tiny.STEP


def _model(**overrides):
  return tiny.build("info_vae", latent_dim=3, **overrides)


_images = tiny.binary_images


def test_rejects_flags_it_cannot_use():
  for config, flag in ((ModelConfig(model="info_vae", beta=4.0), "--beta=4"),
                       (ModelConfig(model="info_vae", prior="vamp"),
                        "--prior=vamp"),
                       (ModelConfig(model="info_vae", free_bits=1.0),
                        "--free_bits=1")):
    with pytest.raises(ConfigError, match=flag):
      registry.check_options(config)
  registry.check_options(ModelConfig(model="info_vae", mmd_weight=10.0,
                                     mmd_kernel="rbf"))


def test_posterior_flow():
  model = _model(posterior_flow="iaf")
  terms = model.compute_loss(_images(4), tf.random.stateless_normal(
      [4, 2, 3], [7, 8]), STEP, tf.constant(1.0), training=False)
  for value in terms.values():
    assert np.all(np.isfinite(value.numpy()))


def test_noise_shape():
  assert _model().noise_shape() == (2, 3)


@pytest.mark.parametrize("kernel, weight, alpha", [
    ("imq", 100.0, 0.0), ("rbf", 7.0, 0.25), ("imq", 3.0, 1.0)])
def test_loss_is_distortion_plus_weighted_kl_and_mmd(kernel, weight, alpha):
  model = _model(mmd_kernel=kernel, mmd_weight=weight, info_alpha=alpha)
  images = _images(8)
  noise = tf.random.stateless_normal([8, 2, 3], [1, 2])
  kl_weight = 0.7
  terms = model.compute_loss(images, noise, STEP, tf.constant(kl_weight),
                             training=False)
  z, _ = model.latent_sample(model.encode(images), noise[:, 0])
  divergence = float(mmd.mmd(z, noise[:, 1], kernel))
  np.testing.assert_allclose(terms["mmd"].numpy(), divergence, rtol=1e-5)
  # loss = distortion + (1 - alpha) * kl_weight * KL + weight * MMD^2.
  np.testing.assert_allclose(
      terms["loss"].numpy(),
      terms["distortion"].numpy() + weight * divergence
      + (1 - alpha) * kl_weight * terms["rate"].numpy(), rtol=1e-5)
  # The reported ELBO uses the analytic KL, as for `vae`.
  kl = model.kl_per_dimension(images).numpy().sum(-1)
  np.testing.assert_allclose(terms["rate"].numpy(), kl, rtol=1e-5)
  np.testing.assert_allclose(terms["elbo"].numpy(),
                             -(terms["distortion"].numpy() + kl), rtol=1e-5)


def test_log_weights_use_first_noise_slice():
  model = _model()
  images = _images(2)
  noise = tf.random.stateless_normal([4, 2, 2, 3], [5, 6])
  got = model.log_weights(images, noise)
  assert got.shape == (4, 2)
  np.testing.assert_allclose(
      got.numpy(), model.log_weights(images, noise[:, :, 0]).numpy())


# ---- Zoo checks --------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  return zoo_harness.train_variant(
      ModelConfig(model="info_vae", hidden_dims=(64,), latent_dim=4),
      tmp_path_factory.mktemp("info_vae"))


def test_learns(run):
  zoo_harness.assert_learns(run)
  assert run.metrics["test_nll"] <= run.metrics["test_neg_elbo"] + 0.5


def test_exports_and_serves(run, tmp_path):
  zoo_harness.assert_serves(run, tmp_path)
  zoo_harness.assert_loads(run)
  zoo_harness.assert_tflite_runs(run)
