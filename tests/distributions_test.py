"""Tests of `tfvae.distributions` against closed forms computed in numpy."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfvae import distributions

tfd = tfp.distributions


def _normal_log_density(x, loc, scale):
  return (-0.5 * ((x - loc) / scale)**2 - np.log(scale)
          - 0.5 * math.log(2 * math.pi))


def _kl_to_standard_normal(loc, scale):
  """[batch, d] -> [batch, d] KL(N(loc, scale^2) || N(0, 1))."""
  return 0.5 * (loc**2 + scale**2 - 1.0 - 2.0 * np.log(scale))


@pytest.fixture
def posterior_params():
  rng = np.random.default_rng(0)
  loc = rng.normal(size=(5, 3)).astype(np.float32)
  scale = rng.uniform(0.2, 2.0, size=(5, 3)).astype(np.float32)
  return loc, scale


def test_diagonal_normal_shapes(posterior_params):
  loc, scale = posterior_params
  q = distributions.diagonal_normal(loc, scale)
  assert q.batch_shape == [5]
  assert q.event_shape == [3]
  assert q.sample(seed=(1, 2)).shape == (5, 3)


def test_diagonal_normal_log_prob_sums_over_latent(posterior_params):
  loc, scale = posterior_params
  z = np.random.default_rng(1).normal(size=loc.shape).astype(np.float32)
  log_prob = distributions.diagonal_normal(loc, scale).log_prob(z).numpy()
  np.testing.assert_allclose(
      log_prob, _normal_log_density(z, loc, scale).sum(axis=-1), rtol=1e-5)


def test_standard_normal_shapes_and_values():
  p = distributions.standard_normal(4)
  assert p.batch_shape == []
  assert p.event_shape == [4]
  z = np.array([[0.0, 0.0, 0.0, 0.0], [1.0, -2.0, 0.5, 3.0]], np.float32)
  np.testing.assert_allclose(p.log_prob(z).numpy(),
                             _normal_log_density(z, 0.0, 1.0).sum(axis=-1),
                             rtol=1e-6)


def test_bernoulli_data_shapes_and_log_prob():
  rng = np.random.default_rng(2)
  logits = rng.normal(scale=3.0, size=(2, 4, 5, 3)).astype(np.float32)
  x = (rng.random((2, 4, 5, 3)) < 0.5).astype(np.float32)
  likelihood = distributions.bernoulli_image(tf.constant(logits))
  assert likelihood.batch_shape == [2]
  assert likelihood.event_shape == [4, 5, 3]
  p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
  expected = (x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=(1, 2, 3))
  np.testing.assert_allclose(likelihood.log_prob(x).numpy(), expected,
                             rtol=1e-5)


def test_bernoulli_image_log_prob_of_grey_values_is_cross_entropy():
  logits = np.array([[[[0.0], [2.0]], [[-1.0], [0.5]]]], np.float32)
  x = np.array([[[[0.3], [1.0]], [[0.0], [0.75]]]], np.float32)
  p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
  expected = (x * np.log(p) + (1 - x) * np.log(1 - p)).sum()
  value = distributions.bernoulli_image(tf.constant(logits)).log_prob(x)
  assert float(value[0]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("scale_shape", [(4, 4, 1), (3, 4, 4, 1)])
def test_gaussian_data_shapes_and_log_prob(scale_shape):
  rng = np.random.default_rng(3)
  loc = rng.random((3, 4, 4, 1)).astype(np.float32)
  scale = rng.uniform(0.05, 0.5, size=scale_shape).astype(np.float32)
  x = rng.random((3, 4, 4, 1)).astype(np.float32)
  likelihood = distributions.gaussian_image(tf.constant(loc),
                                            tf.constant(scale))
  assert likelihood.batch_shape == [3]
  assert likelihood.event_shape == [4, 4, 1]
  expected = _normal_log_density(
      x.astype(np.float64), loc, np.broadcast_to(scale, loc.shape)).sum(
          axis=(1, 2, 3))
  np.testing.assert_allclose(likelihood.log_prob(x).numpy(), expected,
                             rtol=1e-5)


def test_kl_or_monte_carlo_uses_closed_form(posterior_params):
  loc, scale = posterior_params
  q = distributions.diagonal_normal(loc, scale)
  p = distributions.standard_normal(3)
  # A z far from the posterior: the analytic path must ignore it.
  z = np.full(loc.shape, 50.0, np.float32)
  kl = distributions.kl_or_monte_carlo(q, p, z).numpy()
  assert kl.shape == (5,)
  np.testing.assert_allclose(
      kl, _kl_to_standard_normal(loc, scale).sum(axis=-1), rtol=1e-5)


def _student_t_log_density(x, df):
  return (math.lgamma((df + 1) / 2) - math.lgamma(df / 2)
          - 0.5 * math.log(df * math.pi)
          - (df + 1) / 2 * np.log1p(x**2 / df))


@pytest.mark.parametrize("prior_kind", ["mixture", "student_t"])
def test_kl_or_monte_carlo_falls_back_to_log_ratio(posterior_params,
                                                   prior_kind):
  loc, scale = posterior_params
  z = np.random.default_rng(4).normal(size=(5, 3))
  if prior_kind == "mixture":
    weights, centres = np.array([0.3, 0.7]), np.array([1.0, -1.0])
    prior = tfd.MixtureSameFamily(
        tfd.Categorical(probs=weights.astype(np.float32)),
        tfd.MultivariateNormalDiag(
            loc=(centres[:, None] * np.ones((2, 3))).astype(np.float32),
            scale_diag=tf.ones([2, 3])))
    component = np.stack([_normal_log_density(z, c, 1.0).sum(-1)
                          for c in centres])  # [2, batch]
    log_prior = np.logaddexp.reduce(np.log(weights)[:, None] + component, 0)
  else:
    prior = tfd.Independent(tfd.StudentT(3.0, tf.zeros(3), tf.ones(3)),
                            reinterpreted_batch_ndims=1)
    log_prior = _student_t_log_density(z, 3.0).sum(-1)
  q = distributions.diagonal_normal(loc, scale)
  with pytest.raises(NotImplementedError):
    tfd.kl_divergence(q, prior)
  kl = distributions.kl_or_monte_carlo(
      q, prior, tf.constant(z, tf.float32)).numpy()
  expected = _normal_log_density(z, loc, scale).sum(-1) - log_prior
  assert kl.shape == (5,)
  np.testing.assert_allclose(kl, expected, rtol=1e-4, atol=1e-4)


def test_kl_or_monte_carlo_fallback_is_unbiased():
  # KL(N(0.5, 0.8^2) || StudentT(df=1e6)) ~= the Normal closed form.
  loc = np.full((1, 2), 0.5, np.float32)
  scale = np.full((1, 2), 0.8, np.float32)
  q = distributions.diagonal_normal(loc, scale)
  prior = tfd.Independent(tfd.StudentT(1e6, tf.zeros(2), tf.ones(2)), 1)
  z = q.sample(20000, seed=(3, 4))  # [n, 1, 2]
  estimate = float(tf.reduce_mean(distributions.kl_or_monte_carlo(q, prior,
                                                                   z)))
  expected = _kl_to_standard_normal(loc, scale).sum()
  assert estimate == pytest.approx(expected, abs=0.03)


def test_kl_per_dimension_sums_to_total(posterior_params):
  loc, scale = posterior_params
  q = distributions.diagonal_normal(loc, scale)
  p = distributions.standard_normal(3)
  per_dim = distributions.kl_per_dimension(q, p).numpy()
  assert per_dim.shape == (5, 3)
  np.testing.assert_allclose(per_dim, _kl_to_standard_normal(loc, scale),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(per_dim.sum(axis=-1),
                             tfd.kl_divergence(q, p).numpy(), rtol=1e-5)


def test_kl_per_dimension_is_none_for_other_priors(posterior_params):
  loc, scale = posterior_params
  q = distributions.diagonal_normal(loc, scale)
  mixture = tfd.MixtureSameFamily(
      tfd.Categorical(probs=[0.5, 0.5]),
      tfd.MultivariateNormalDiag(loc=tf.zeros([2, 3])))
  student = tfd.Independent(tfd.StudentT(3.0, tf.zeros(3), tf.ones(3)), 1)
  assert distributions.kl_per_dimension(q, mixture) is None
  assert distributions.kl_per_dimension(q, student) is None
