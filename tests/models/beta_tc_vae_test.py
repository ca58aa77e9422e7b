"""Tests of `tfvae.models.beta_tc_vae`: the MWS decomposition, zoo checks."""

import numpy as np
import pytest
import tensorflow as tf

from tests.models import tiny
from tests.models import zoo_harness
from tfvae.config import ModelConfig
from tfvae.errors import ConfigError
from tfvae.models import beta_tc_vae
from tfvae.models import registry

IMAGE_SHAPE = tiny.IMAGE_SHAPE
STEP = tiny.STEP


def _model(**overrides):
  return tiny.build("beta_tc_vae", latent_dim=3, **overrides)


def _logpdf(x, loc=0.0, scale=1.0):
  return -0.5 * ((x - loc) / scale)**2 - np.log(scale) - 0.5 * np.log(2 * np.pi)


def _logsumexp(values):
  values = np.asarray(values)
  top = values.max()
  return top + np.log(np.exp(values - top).sum())


def _brute_force(z, loc, scale, dataset_size):
  """MWS estimates with explicit loops (Chen et al. 2018, eq. S6)."""
  batch, dim = z.shape
  log_nm = np.log(batch * dataset_size)
  mi, tc, dim_kl = [], [], []
  for i in range(batch):
    log_q_zx = _logpdf(z[i], loc[i], scale[i]).sum()
    joint = [_logpdf(z[i], loc[j], scale[j]).sum()
             for j in range(batch)]
    log_q_z = _logsumexp(joint) - log_nm
    log_prod = sum(
        _logsumexp([_logpdf(z[i, d], loc[j, d], scale[j, d])
                           for j in range(batch)]) - log_nm
        for d in range(dim))
    log_p = _logpdf(z[i]).sum()
    mi.append(log_q_zx - log_q_z)
    tc.append(log_q_z - log_prod)
    dim_kl.append(log_prod - log_p)
  return {"mi": mi, "tc": tc, "dim_kl": dim_kl}


def test_rejects_other_priors_flows_and_flags():
  for config, flag in ((ModelConfig(model="beta_tc_vae", prior="mixture"),
                        "--prior=mixture"),
                       (ModelConfig(model="beta_tc_vae", posterior_flow="iaf"),
                        "--posterior_flow=iaf"),
                       (ModelConfig(model="beta_tc_vae", iw_samples=7),
                        "--iw_samples=7")):
    with pytest.raises(ConfigError, match=flag):
      registry.check_options(config)
  registry.check_options(ModelConfig(model="beta_tc_vae", beta=6.0))


def test_decomposition_matches_brute_force():
  rng = np.random.default_rng(0)
  loc = rng.normal(size=(5, 3))
  scale = rng.uniform(0.3, 1.5, size=(5, 3))
  z = loc + scale * rng.normal(size=(5, 3))
  log_p = _logpdf(z).sum(1)
  got = beta_tc_vae.tc_decomposition(
      tf.constant(z), tf.constant(loc), tf.constant(scale), tf.constant(log_p),
      1000)
  want = _brute_force(z, loc, scale, 1000)
  for name in ("mi", "tc", "dim_kl"):
    np.testing.assert_allclose(got[name].numpy(), want[name], rtol=1e-9,
                               err_msg=name)


def test_dataset_size_only_moves_mi_and_tc():
  rng = np.random.default_rng(1)
  loc, z = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
  scale, log_p = np.ones((4, 2)), np.zeros(4)
  a = beta_tc_vae.tc_decomposition(z, loc, scale, log_p, 100)
  b = beta_tc_vae.tc_decomposition(z, loc, scale, log_p, 10000)
  np.testing.assert_allclose(b["mi"] - a["mi"], np.log(100.0), rtol=1e-9)
  np.testing.assert_allclose(b["tc"] - a["tc"], (2 - 1) * np.log(100.0),
                             rtol=1e-9)


@pytest.mark.parametrize("beta, kl_weight", [(1.0, 1.0), (6.0, 1.0),
                                             (6.0, 0.5)])
def test_loss_is_distortion_plus_weighted_decomposition(beta, kl_weight):
  model = _model(beta=beta)
  images = tf.cast(tf.random.stateless_uniform((6,) + IMAGE_SHAPE, [0, 1])
                   > 0.5, tf.float32)
  noise = tf.random.stateless_normal([6, 3], [2, 3])
  terms = model.compute_loss(images, noise, STEP, tf.constant(kl_weight),
                             training=False)
  penalty = terms["mi"] + beta * terms["tc"] + terms["dim_kl"]
  np.testing.assert_allclose(
      terms["loss"].numpy(),
      (terms["distortion"] + kl_weight * penalty).numpy(), rtol=1e-5)
  np.testing.assert_allclose(terms["elbo"].numpy(),
                             -(terms["distortion"] + terms["rate"]).numpy(),
                             rtol=1e-6)
  # MI + TC + dimKL is the one-sample KL log q(z|x) - log p(z).
  z, log_q = model.latent_sample(model.encode(images), noise)
  mc_kl = (log_q - model.prior().log_prob(z)).numpy()
  np.testing.assert_allclose(
      (terms["mi"] + terms["tc"] + terms["dim_kl"]).numpy(), mc_kl,
      rtol=1e-4, atol=1e-4)


# ---- Zoo checks --------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  return zoo_harness.train_variant(
      ModelConfig(model="beta_tc_vae", beta=4.0, hidden_dims=(64,),
                  latent_dim=4), tmp_path_factory.mktemp("beta_tc_vae"))


def test_learns(run):
  zoo_harness.assert_learns(run)
  assert run.metrics["test_nll"] <= run.metrics["test_neg_elbo"] + 0.5


def test_exports_and_serves(run, tmp_path):
  zoo_harness.assert_serves(run, tmp_path)
  zoo_harness.assert_loads(run)
  zoo_harness.assert_tflite_runs(run)
