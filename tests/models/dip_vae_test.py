"""Tests of `tfvae.models.dip_vae`: the DIP penalty against numpy, zoo runs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.models import tiny
from tests.models import zoo_harness
from tfvae import objectives
from tfvae.config import ModelConfig
from tfvae.errors import ConfigError
from tfvae.models import dip_vae
from tfvae.models import registry

STEP = tiny.STEP
LATENT = 3


def _model(**overrides):
  return tiny.build("dip_vae", latent_dim=LATENT, **overrides)


def _noise(batch, seed=(2, 3)):
  return tf.random.stateless_normal([batch, LATENT], seed)


def _numpy_covariance(loc, scale, dip_type):
  """Cov_p(x)[mu] (1/M), plus E[diag sigma^2] for type ii, in numpy."""
  covariance = np.cov(loc, rowvar=False, bias=True)
  if dip_type == "ii":
    covariance = covariance + np.diag(np.mean(scale**2, axis=0))
  return covariance


def _numpy_penalty(loc, scale, dip_type, lambda_od, lambda_d):
  covariance = _numpy_covariance(loc, scale, dip_type)
  dim = covariance.shape[0]
  off = sum(covariance[i, j]**2 for i in range(dim) for j in range(dim)
            if i != j)
  diagonal = sum((covariance[i, i] - 1.0)**2 for i in range(dim))
  return lambda_od * off + lambda_d * diagonal


def test_rejects_other_priors_flows_and_flags():
  for config, flag in (
      (ModelConfig(model="dip_vae", prior="vamp"), "--prior=vamp"),
      (ModelConfig(model="dip_vae", posterior_flow="iaf"),
       "--posterior_flow=iaf"),
      (ModelConfig(model="dip_vae", tc_weight=3.0), "--tc_weight=3"),
      (ModelConfig(model="dip_vae", discriminator_hidden_dims=(8,)),
       "--discriminator_hidden_dims=8")):
    with pytest.raises(ConfigError, match=flag):
      registry.check_options(config)
  registry.check_options(ModelConfig(model="dip_vae", dip_type="ii",
                                     dip_lambda_od=5.0, dip_lambda_d=5.0,
                                     free_bits=0.5))
  assert _model().auxiliary_objectives() == ()


@pytest.mark.parametrize("dip_type", ["i", "ii"])
def test_covariance_matches_numpy(dip_type):
  rng = np.random.default_rng(0)
  loc = rng.normal(size=(32, 4)) @ rng.normal(size=(4, 4))
  scale = rng.uniform(0.1, 2.0, size=(32, 4))
  got = dip_vae.code_covariance(tf.constant(loc), tf.constant(scale),
                                dip_type).numpy()
  np.testing.assert_allclose(got, _numpy_covariance(loc, scale, dip_type),
                             rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dip_type", ["i", "ii"])
@pytest.mark.parametrize("lambda_od, lambda_d", [
    (10.0, 100.0), (1.0, 0.0), (0.0, 1.0), (2.5, 2.5)])
def test_penalty_matches_numpy(dip_type, lambda_od, lambda_d):
  rng = np.random.default_rng(1)
  loc = rng.normal(size=(16, 3)) * [0.5, 1.0, 2.0] + rng.normal(size=3)
  loc[:, 2] += 0.7 * loc[:, 0]
  scale = rng.uniform(0.2, 1.2, size=(16, 3))
  got = float(dip_vae.dip_penalty(tf.constant(loc), tf.constant(scale),
                                  dip_type, lambda_od, lambda_d))
  want = _numpy_penalty(loc, scale, dip_type, lambda_od, lambda_d)
  np.testing.assert_allclose(got, want, rtol=1e-10)
  assert want > 0 or lambda_od == lambda_d == 0


def test_identity_covariance_has_no_penalty():
  # Type ii: Cov[mu] = 0.64 I (a +-0.8 design) plus E[sigma^2] = 0.36.
  loc = 0.8 * np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], np.float64)
  scale = np.full_like(loc, 0.6)
  assert float(dip_vae.dip_penalty(loc, scale, "ii", 10.0, 100.0)) < 1e-12
  np.testing.assert_allclose(
      float(dip_vae.dip_penalty(loc, scale, "i", 10.0, 100.0)),
      100.0 * 2 * 0.36**2, rtol=1e-10)


def test_rejects_unknown_type():
  with pytest.raises(ValueError, match="dip_type"):
    dip_vae.code_covariance(tf.zeros([2, 2]), tf.ones([2, 2]), "iii")


@pytest.mark.parametrize("dip_type, lambda_od, lambda_d, kl_weight", [
    ("i", 10.0, 100.0, 1.0), ("ii", 3.0, 3.0, 0.25)])
def test_loss_adds_the_unweighted_penalty_once_per_batch(dip_type, lambda_od,
                                                         lambda_d, kl_weight):
  model = _model(dip_type=dip_type, dip_lambda_od=lambda_od,
                 dip_lambda_d=lambda_d)
  images, noise = tiny.binary_images(8), _noise(8)
  terms = model.compute_loss(images, noise, STEP, tf.constant(kl_weight),
                             training=False)
  params = model.encode(images)
  want = _numpy_penalty(params["loc"].numpy().astype(np.float64),
                        params["scale"].numpy().astype(np.float64),
                        dip_type, lambda_od, lambda_d)
  np.testing.assert_allclose(terms["dip"].numpy(), np.full(8, want),
                             rtol=1e-4)
  # Not weighted by the KL schedule.
  elbo_loss = (terms["distortion"] + kl_weight * terms["rate"]).numpy()
  np.testing.assert_allclose(terms["loss"].numpy(),
                             elbo_loss + terms["dip"].numpy(), rtol=1e-5)
  # Summed over the examples and divided by the batch (as the loop does),
  # the loss is the batch's negative weighted ELBO plus the penalty, once.
  np.testing.assert_allclose(np.sum(terms["loss"].numpy()) / 8,
                             np.mean(elbo_loss) + want, rtol=1e-5)
  np.testing.assert_allclose(
      terms["elbo"].numpy(), -(terms["distortion"] + terms["rate"]).numpy(),
      rtol=1e-6)
  for value in terms.values():
    assert value.shape == (8,) and value.dtype == tf.float32


def test_free_bits_apply_to_the_kl_term():
  model = _model(free_bits=0.5)
  images, noise = tiny.binary_images(5), _noise(5)
  terms = model.compute_loss(images, noise, STEP, tf.constant(1.0),
                             training=False)
  want = (terms["distortion"] + objectives.free_bits_rate(
      model.kl_per_dimension(images), 0.5) + terms["dip"])
  np.testing.assert_allclose(terms["loss"].numpy(), want.numpy(), rtol=1e-5)


def test_without_lambdas_the_loss_and_bound_are_the_vaes():
  keras.utils.set_random_seed(3)
  dip = _model(dip_lambda_od=0.0, dip_lambda_d=0.0)
  keras.utils.set_random_seed(3)
  plain = tiny.build("vae", latent_dim=LATENT)
  images, noise = tiny.binary_images(6), _noise(6)
  got = dip.compute_loss(images, noise, STEP, tf.constant(0.7))
  want = plain.compute_loss(images, noise, STEP, tf.constant(0.7))
  for name in ("loss", "distortion", "rate", "elbo"):
    np.testing.assert_array_equal(got[name].numpy(), want[name].numpy(),
                                  err_msg=name)
  k_noise = tf.random.stateless_normal([4, 6, LATENT], [5, 6])
  np.testing.assert_array_equal(dip.log_weights(images, k_noise).numpy(),
                                plain.log_weights(images, k_noise).numpy())


def test_penalty_gradient_reaches_the_encoder_only():
  model = _model(dip_type="ii")
  images, noise = tiny.binary_images(8), _noise(8)
  with tf.GradientTape() as tape:
    dip = model.compute_loss(images, noise, STEP, tf.constant(1.0))["dip"][0]
  grads = tape.gradient(dip, model.encoder.trainable_variables
                        + model.decoder.trainable_variables)
  encoder = grads[:len(model.encoder.trainable_variables)]
  decoder = grads[len(model.encoder.trainable_variables):]
  assert any(float(tf.reduce_max(tf.abs(g))) > 0 for g in encoder)
  assert all(g is None for g in decoder)


# ---- Zoo checks --------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  return zoo_harness.train_variant(
      ModelConfig(model="dip_vae", dip_type="ii", dip_lambda_od=10.0,
                  dip_lambda_d=10.0, hidden_dims=(16,), latent_dim=4),
      tmp_path_factory.mktemp("dip_vae"), train_steps=200)


def test_learns(run):
  zoo_harness.assert_learns(run)
  assert run.metrics["test_nll"] <= run.metrics["test_neg_elbo"] + 0.5


def test_exports_and_serves(run, tmp_path):
  zoo_harness.assert_serves(run, tmp_path)
  zoo_harness.assert_loads(run)
  zoo_harness.assert_tflite_runs(run)
