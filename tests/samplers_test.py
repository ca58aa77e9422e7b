"""Tests of `tfvae.samplers`: EM against known mixtures and closed forms, the
TF draw against numpy, the flags, and `vae --sampler=gmm` end to end."""

import numpy as np
import pytest
import tensorflow as tf

from tests.models import tiny
from tests.models import zoo_harness
from tfvae import models
from tfvae import samplers
from tfvae.config import ModelConfig
from tfvae.errors import ConfigError
from tfvae.models import registry

_WEIGHTS = np.array([0.3, 0.7])
_MEANS = np.array([[-2.0, 0.0], [3.0, 1.0]])
_COVARIANCES = np.array([[[1.0, 0.5], [0.5, 1.0]],
                         [[0.5, -0.2], [-0.2, 0.3]]])


def _two_gaussians(num_codes=4000, seed=0):
  """`[num_codes, 2]` draws of the mixture `_WEIGHTS`, `_MEANS`, ..."""
  rng = np.random.default_rng(seed)
  component = rng.choice(2, size=num_codes, p=_WEIGHTS)
  trils = np.linalg.cholesky(_COVARIANCES)
  noise = rng.standard_normal((num_codes, 2))
  return _MEANS[component] + np.einsum("nij,nj->ni", trils[component], noise)


def _moments(fit):
  mean = fit.weights @ fit.means
  second = np.einsum("k,kij->ij", fit.weights, fit.covariances + np.einsum(
      "ki,kj->kij", fit.means, fit.means))
  return mean, second - np.outer(mean, mean)


# ---- EM ----------------------------------------------------------------------


def test_em_recovers_two_component_mixture():
  codes = _two_gaussians()
  fit = samplers.fit_gaussian_mixture(codes, 2, seed=0)
  assert fit.converged and 1 <= fit.iterations < samplers.MAX_ITERATIONS
  order = np.argsort(fit.means[:, 0])
  np.testing.assert_allclose(fit.weights[order], _WEIGHTS, atol=0.03)
  np.testing.assert_allclose(fit.means[order], _MEANS, atol=0.1)
  np.testing.assert_allclose(fit.covariances[order], _COVARIANCES, atol=0.1)
  assert np.all(np.diff(fit.log_likelihoods) >= -1e-10), fit.log_likelihoods
  # The factors are lower-triangular with a positive diagonal.
  assert np.allclose(fit.scale_trils, np.tril(fit.scale_trils))
  assert np.all(np.diagonal(fit.scale_trils, axis1=1, axis2=2) > 0)
  # Each M step keeps the codes' mean and (biased) covariance + jitter.
  mean, covariance = _moments(fit)
  np.testing.assert_allclose(mean, codes.mean(0), atol=1e-10)
  np.testing.assert_allclose(
      covariance, np.cov(codes, rowvar=False, ddof=0) + 1e-6 * np.eye(2),
      atol=1e-10)


def test_log_likelihood_never_decreases_and_iterations_are_capped():
  # More components than the data have: many slow iterations.
  codes = _two_gaussians(1000, seed=1)
  fit = samplers.fit_gaussian_mixture(codes, 6, seed=2, tolerance=0.0,
                                      max_iterations=150)
  assert len(fit.log_likelihoods) == fit.iterations + 1
  assert fit.iterations <= 150
  assert np.all(np.diff(fit.log_likelihoods) >= -1e-10)
  capped = samplers.fit_gaussian_mixture(codes, 6, seed=2, max_iterations=3)
  assert capped.iterations == 3 and not capped.converged
  np.testing.assert_array_equal(capped.log_likelihoods,
                                fit.log_likelihoods[:4])


def test_fit_is_deterministic_given_the_seed():
  codes = _two_gaussians(500, seed=3)
  first = samplers.fit_gaussian_mixture(codes, 3, seed=7)
  again = samplers.fit_gaussian_mixture(codes, 3, seed=7)
  for name in ("weights", "means", "scale_trils"):
    np.testing.assert_array_equal(getattr(first, name), getattr(again, name))


def test_one_component_is_mean_and_covariance():
  codes = np.random.default_rng(0).normal(size=(200, 3)) @ np.array(
      [[1.0, 0.5, 0.0], [0.0, 2.0, 0.3], [0.0, 0.0, 0.1]]) + [1.0, -2.0, 3.0]
  fit = samplers.fit_gaussian_mixture(codes, 1)
  assert fit.iterations == 0 and fit.num_codes == 200
  np.testing.assert_array_equal(fit.weights, [1.0])
  np.testing.assert_allclose(fit.means[0], codes.mean(0), rtol=1e-12)
  np.testing.assert_allclose(fit.covariances[0],
                             np.cov(codes, rowvar=False) + 1e-6 * np.eye(3),
                             rtol=1e-10)
  assert np.allclose(fit.scale_trils[0], np.tril(fit.scale_trils[0]))


def test_too_few_codes_name_the_flag():
  with pytest.raises(ConfigError, match="--sampler_components=5"):
    samplers.fit_gaussian_mixture(np.zeros((4, 2)), 5)
  with pytest.raises(ConfigError, match="--sampler_components=1"):
    samplers.fit_gaussian_mixture(np.zeros((1, 2)), 1)


def test_collect_codes_keeps_a_seeded_uniform_subset():
  codes = np.arange(2000, dtype=np.float64).reshape(1000, 2)
  batches = [codes[i:i + 64] for i in range(0, 1000, 64)]
  kept = samplers.collect_codes(batches, max_codes=300, seed=4)
  assert kept.shape == (300, 2)
  rows = kept[:, 0] / 2
  assert np.all(np.diff(rows) > 0)  # Distinct rows, in the input's order.
  np.testing.assert_array_equal(kept, codes[rows.astype(int)])
  assert 0.4 < np.mean(rows < 500) < 0.6
  np.testing.assert_array_equal(
      samplers.collect_codes(batches, max_codes=300, seed=4), kept)
  np.testing.assert_array_equal(
      samplers.collect_codes(batches, max_codes=5000, seed=4), codes)
  # A large array is fitted on such a subset.
  fit = samplers.fit_gaussian_mixture(codes, 1, max_codes=300, seed=4)
  assert fit.num_codes == 300
  np.testing.assert_allclose(fit.means[0], kept.mean(0))


# ---- The layer ---------------------------------------------------------------


def _assigned_sampler():
  sampler = samplers.GaussianMixtureSampler(3, 2, dtype="float32")
  trils = np.array([[[1.0, 0.0], [0.5, 0.2]], [[0.3, 0.0], [-0.1, 2.0]],
                    [[0.7, 0.0], [0.0, 0.7]]])
  sampler.assign_fit(samplers.GaussianMixtureFit(
      weights=np.array([0.2, 0.3, 0.5]),
      means=np.array([[-4.0, 0.0], [0.0, 4.0], [5.0, 5.0]]),
      scale_trils=trils, log_likelihoods=(0.0,), iterations=0,
      converged=True, num_codes=10))
  return sampler


def test_draw_is_inverse_cdf_component_then_mean_plus_tril_noise():
  sampler = _assigned_sampler()
  assert sampler.is_fitted() and sampler.noise_shapes() == ((2,), (1,))
  normal = np.random.default_rng(0).standard_normal((6, 2)).astype(np.float32)
  uniform = np.array([[0.05], [0.25], [0.49], [0.51], [0.95], [1 - 1e-7]],
                     np.float32)
  weights = np.exp(sampler.log_weights.numpy().astype(np.float64))
  cdf = np.cumsum(weights / weights.sum())
  component = np.minimum(np.sum(uniform > cdf, axis=1), 2)
  np.testing.assert_array_equal(component, [0, 1, 1, 2, 2, 2])
  means, trils = sampler.means.numpy(), sampler.scale_trils.numpy()
  want = means[component] + np.einsum("nij,nj->ni", trils[component], normal)
  eager = sampler.sample_from_noise(tf.constant(normal), tf.constant(uniform))
  traced = tf.function(sampler.sample_from_noise)(tf.constant(normal),
                                                  tf.constant(uniform))
  np.testing.assert_allclose(eager.numpy(), want, atol=1e-5)
  np.testing.assert_allclose(traced.numpy(), want, atol=1e-5)


def test_distribution_is_the_fitted_mixture():
  codes = _two_gaussians(300, seed=5)
  sampler = samplers.GaussianMixtureSampler(2, 2, dtype="float32")
  fit = sampler.fit(codes, seed=0)
  log_prob = sampler.distribution().log_prob(codes.astype(np.float32))
  np.testing.assert_allclose(np.mean(log_prob.numpy()),
                             fit.log_likelihoods[-1], atol=1e-4)


def test_unfitted_sampler_is_standard_normal_and_says_so(caplog):
  sampler = samplers.GaussianMixtureSampler(4, 3, dtype="float32")
  assert not sampler.is_fitted()
  normal = tf.random.stateless_normal([5, 3], [1, 2])
  uniform = tf.random.stateless_uniform([5, 1], [1, 3])
  with caplog.at_level("WARNING"):
    drawn = sampler.sample_from_noise(normal, uniform)
  np.testing.assert_allclose(drawn.numpy(), normal.numpy(), atol=1e-6)
  assert "not fitted" in caplog.text
  with pytest.raises(ValueError, match="does not match"):
    sampler.assign_fit(samplers.fit_gaussian_mixture(
        np.random.default_rng(0).normal(size=(50, 2)), 4))


# ---- Flags and models --------------------------------------------------------


def test_flags_are_checked_against_the_model():
  registry.check_options(ModelConfig(model="vae", sampler="gmm"))
  registry.check_options(ModelConfig(model="vae", sampler="gmm",
                                     sampler_components=3))
  registry.check_options(ModelConfig(model="vae", sampler="prior"))
  with pytest.raises(ConfigError,
                     match="--sampler_components=3 applies only to "
                     "--sampler=gmm"):
    registry.check_options(ModelConfig(model="vae", sampler_components=3))
  with pytest.raises(ConfigError, match="--sampler_components=3"):
    registry.check_options(ModelConfig(model="vae", sampler="prior",
                                       sampler_components=3))
  with pytest.raises(ConfigError, match="--sampler=gmm.*discrete code"):
    registry.check_options(ModelConfig(model="vq_vae", sampler="gmm",
                                       encoder="conv", decoder="conv"))
  for name in registry.names():
    if not registry.get(name).has_continuous_code:
      with pytest.raises(ConfigError, match="--sampler=gmm"):
        samplers.check_config(ModelConfig(model=name, sampler="gmm"),
                              registry.get(name))


def test_models_get_a_sampler_only_for_gmm():
  images = tiny.binary_images(40, seed=1)
  dataset = tf.data.Dataset.from_tensor_slices({"image": images}).batch(16)
  plain = tiny.build("vae", latent_dim=3)
  assert plain.code_sampler is None
  assert plain.after_training(dataset) is False
  normal = tf.random.stateless_normal([4, 3], [0, 1])
  uniform = tf.random.stateless_uniform([4, 1], [0, 2])
  np.testing.assert_allclose(plain.draw_code(normal, uniform).numpy(),
                             normal.numpy())
  model = tiny.build("vae", latent_dim=3, sampler="gmm", sampler_components=2)
  assert model.code_dim() == 3
  assert model.after_training(dataset, seed=1) is True
  codes = model.fitted_code(images).numpy()
  want = samplers.fit_gaussian_mixture(codes, 2, seed=1)
  np.testing.assert_allclose(model.code_sampler.means.numpy(), want.means,
                             atol=1e-5)
  np.testing.assert_allclose(model.draw_code(normal, uniform).numpy(),
                             model.code_sampler.sample_from_noise(
                                 normal, uniform).numpy())


def test_conditional_model_fits_codes_of_labelled_images():
  config = ModelConfig(model="cvae", hidden_dims=(8,), latent_dim=3,
                       sampler="gmm", sampler_components=2)
  model = models.build(config, tiny.IMAGE_SHAPE, num_classes=3)
  model.build_from_shape()
  images = tiny.binary_images(30, seed=2)
  labels = tf.range(30, dtype=tf.int32) % 3
  dataset = tf.data.Dataset.from_tensor_slices(
      {"image": images, "label": labels}).batch(8)
  assert model.after_training(dataset) is True
  want = samplers.fit_gaussian_mixture(
      model.fitted_code(images, labels).numpy(), 2, seed=0)
  np.testing.assert_allclose(model.code_sampler.means.numpy(), want.means,
                             atol=1e-5)
  drawn = model.sample(4, tf.constant([0, 1]), labels=tf.constant([0, 1, 2, 0]))
  assert drawn.shape == (4,) + tiny.IMAGE_SHAPE


def test_hierarchical_model_fits_its_top_layer():
  if "hvae" not in registry.names():
    pytest.skip("no `hvae` variant registered")
  model = tiny.build("hvae", latent_dim=3, latent_layers=2,
                     latent_dims=(2, 3), sampler="gmm", sampler_components=2)
  assert model.code_sampler.code_dim == 3
  images = tiny.binary_images(30, seed=3)
  dataset = tf.data.Dataset.from_tensor_slices({"image": images}).batch(8)
  assert model.after_training(dataset) is True
  assert model.sample(3, tf.constant([0, 1])).shape == (3,) + tiny.IMAGE_SHAPE


# ---- A trained vae --sampler=gmm ----------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  return zoo_harness.train_variant(
      ModelConfig(model="vae", hidden_dims=(64,), latent_dim=4,
                  sampler="gmm", sampler_components=3),
      tmp_path_factory.mktemp("vae_gmm"))


def test_trained_vae_exports_samples_from_fitted_mixture(run, tmp_path):
  zoo_harness.assert_learns(run)
  zoo_harness.assert_serves(run, tmp_path)
  zoo_harness.assert_loads(run)
  zoo_harness.assert_tflite_runs(run)
  codes = zoo_harness.assert_samples_from_fitted_mixture(run)
  # The decoded codes lie near the fitted components.
  sampler = run.model.code_sampler
  distance = np.linalg.norm(codes[:, None, :] - sampler.means.numpy()[None],
                            axis=-1).min(axis=1)
  spread = np.sqrt(np.trace(sampler.scale_trils.numpy() @ np.swapaxes(
      sampler.scale_trils.numpy(), 1, 2), axis1=1, axis2=2)).max()
  assert np.median(distance) < 2 * spread
