"""Tests of `tfvae.priors`: mixture and VampPrior densities and sampling."""

import numpy as np
import pytest
import tensorflow as tf

from tfvae import priors
from tfvae.config import ModelConfig
from tfvae.errors import ConfigError
from tfvae.models import registry
import tfvae.models  # pylint: disable=unused-import  # Registers `vae`.

IMAGE_SHAPE = (4, 4, 1)
# The 0.999 quantile of the chi-square distribution with 3 degrees of freedom.
_CHI2_3_999 = 16.266


def _logsumexp(x, axis):
  top = np.max(x, axis=axis, keepdims=True)
  return np.squeeze(top, axis) + np.log(np.sum(np.exp(x - top), axis=axis))


def _normal_log_pdf(x, loc, scale):
  return (-0.5 * ((x - loc) / scale)**2 - np.log(scale)
          - 0.5 * np.log(2 * np.pi))


def _numpy_mixture_log_prob(z, logits, loc, scale):
  """`[n]` log sum_k pi_k N(z; loc_k, diag(scale_k^2))."""
  z, logits, loc, scale = (np.asarray(a, np.float64)
                           for a in (z, logits, loc, scale))
  log_pi = logits - _logsumexp(logits, axis=0)
  component = _normal_log_pdf(z[:, None, :], loc[None], scale[None]).sum(-1)
  return _logsumexp(log_pi[None] + component, axis=1)  # Over [n, K].


def _mixture_prior(seed=0):
  config = ModelConfig(latent_dim=3, prior="mixture", prior_components=4)
  prior = priors.build_prior(config, IMAGE_SHAPE)
  rng = np.random.default_rng(seed)
  prior.logits.assign(rng.normal(size=4).astype(np.float32))
  prior.raw_scale.assign(rng.normal(size=(4, 3)).astype(np.float32))
  return prior


def test_build_prior():
  assert isinstance(priors.build_prior(ModelConfig(prior="mixture"),
                                       IMAGE_SHAPE),
                    priors.MixtureOfGaussiansPrior)
  assert isinstance(priors.build_prior(ModelConfig(prior="vamp"),
                                       IMAGE_SHAPE), priors.VampPrior)
  with pytest.raises(ConfigError, match="vamp"):
    priors.build_prior(ModelConfig(prior="nope"), IMAGE_SHAPE)


def test_mixture_log_prob_matches_numpy():
  prior = _mixture_prior()
  logits, loc, scale = (t.numpy() for t in prior.mixture_parameters())
  z = np.random.default_rng(1).normal(size=(7, 3)).astype(np.float32)
  got = prior.distribution(None).log_prob(z).numpy()
  np.testing.assert_allclose(got, _numpy_mixture_log_prob(z, logits, loc,
                                                          scale),
                             rtol=1e-5, atol=1e-5)
  assert prior.uniform_noise_shape() == (1,)


def test_mixture_sample_frequencies_follow_weights():
  prior = _mixture_prior()
  logits, loc, scale = (t.numpy() for t in prior.mixture_parameters())
  n = 20000
  rng = np.random.default_rng(2)
  uniform = rng.uniform(1e-7, 1.0, size=(n, 1)).astype(np.float32)
  normal = np.zeros((n, 3), np.float32)
  z = prior.sample_from_noise(None, normal, uniform).numpy()
  # With zero noise each sample is its component's mean.
  component = np.argmin(((z[:, None, :] - loc[None])**2).sum(-1), axis=1)
  np.testing.assert_allclose(z, loc[component], atol=1e-6)
  counts = np.bincount(component, minlength=4)
  expected = n * np.exp(logits - _logsumexp(logits, axis=0))
  chi2 = ((counts - expected)**2 / expected).sum()
  assert chi2 < _CHI2_3_999, (counts, expected)
  # Noise is scaled by the chosen component's scale.
  ones = prior.sample_from_noise(None, np.ones((n, 3), np.float32),
                                 uniform).numpy()
  np.testing.assert_allclose(ones - z, scale[component], atol=1e-5)
  # Deterministic in the noise.
  np.testing.assert_array_equal(
      prior.sample_from_noise(None, normal, uniform).numpy(), z)


def test_categorical_from_uniform_edges():
  probs = tf.constant([0.25, 0.5, 0.25])
  uniform = tf.constant([[1e-7], [0.2499], [0.2501], [0.7499], [0.7501],
                         [1.0]])
  np.testing.assert_array_equal(
      priors.categorical_from_uniform(probs, uniform).numpy(),
      [0, 0, 1, 1, 2, 2])


def _vamp_model(prior_components=5):
  config = ModelConfig(model="vae", hidden_dims=(8,), latent_dim=3,
                       prior="vamp", prior_components=prior_components)
  model = registry.build(config, IMAGE_SHAPE)
  model.build_from_shape()
  return model


def test_vamp_log_prob_matches_encoded_pseudo_inputs():
  model = _vamp_model()
  pseudo = model.latent_prior.pseudo_inputs().numpy()
  assert pseudo.shape == (5,) + IMAGE_SHAPE
  assert pseudo.min() >= 0 and pseudo.max() <= 1
  params = model.encode(pseudo)
  loc, scale = params["loc"].numpy(), params["scale"].numpy()
  z = np.random.default_rng(3).normal(size=(6, 3)).astype(np.float32)
  got = model.prior().log_prob(z).numpy()
  want = _numpy_mixture_log_prob(z, np.zeros(5), loc, scale)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_vamp_gradients_reach_pseudo_inputs():
  model = _vamp_model()
  prior = model.latent_prior
  assert any(v is prior.raw_pseudo_inputs for v in model.trainable_variables)
  z = tf.random.stateless_normal([6, 3], seed=[0, 1])
  with tf.GradientTape() as tape:
    log_prob = tf.reduce_sum(model.prior().log_prob(z))
  gradient = tape.gradient(log_prob, prior.raw_pseudo_inputs)
  assert gradient is not None
  assert np.all(np.isfinite(gradient.numpy()))
  assert np.abs(gradient.numpy()).max() > 0


def test_vamp_sample_from_noise():
  model = _vamp_model(prior_components=4)
  loc, scale = (t.numpy() for t in model.latent_prior.components(model))
  n = 4000
  uniform = np.random.default_rng(4).uniform(
      1e-7, 1.0, size=(n, 1)).astype(np.float32)
  normal = np.full((n, 3), 0.5, np.float32)
  z = model.latent_prior.sample_from_noise(model, normal, uniform).numpy()
  component = np.minimum((uniform[:, 0] * 4).astype(int), 3)
  np.testing.assert_allclose(z, loc[component] + 0.5 * scale[component],
                             atol=1e-5)
  images = model.sample_from_noise(normal[:3], uniform[:3])
  assert tuple(images.shape) == (3,) + IMAGE_SHAPE


def test_vamp_compute_loss_is_finite():
  model = _vamp_model()
  images = np.random.default_rng(5).uniform(size=(2,) + IMAGE_SHAPE)
  terms = model.compute_loss(tf.constant(images, tf.float32),
                             tf.zeros([2, 3]), tf.constant(0, tf.int64),
                             tf.constant(1.0))
  for value in terms.values():
    assert np.all(np.isfinite(value.numpy()))


def test_vamp_rejects_conditional_models():
  if "cvae" not in registry.names():
    pytest.skip("no `cvae` variant registered yet")
  config = ModelConfig(model="cvae", hidden_dims=(8,), latent_dim=3,
                       prior="vamp", prior_components=2)
  with pytest.raises(ConfigError, match="vamp"):
    registry.build(config, IMAGE_SHAPE, num_classes=2)


def test_vamp_prior_itself_rejects_conditional_models():

  class _Conditional:
    conditional = True
    config = ModelConfig(model="cvae")

  prior = priors.build_prior(ModelConfig(prior="vamp", prior_components=2),
                             IMAGE_SHAPE)
  with pytest.raises(ConfigError, match="vamp"):
    prior.distribution(_Conditional())
