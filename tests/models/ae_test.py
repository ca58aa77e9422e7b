"""Tests of `tfvae.models.ae.AE`: loss, fitted code mixture, zoo checks."""

import numpy as np
import pytest
import tensorflow as tf

from tests.models import zoo_harness
from tfvae import models
from tests.models import tiny
from tfvae.config import ModelConfig
from tfvae import samplers
from tfvae.errors import ConfigError
from tfvae.models import registry

IMAGE_SHAPE = tiny.IMAGE_SHAPE


def _model(**overrides):
  return tiny.build("ae", latent_dim=3, **overrides)


_images = tiny.binary_images


def test_rejects_variant_flags():
  with pytest.raises(ConfigError, match="--iw_samples=7"):
    registry.check_options(ModelConfig(model="ae", iw_samples=7))
  with pytest.raises(ConfigError, match="--prior=mixture"):
    registry.check_options(ModelConfig(model="ae", prior="mixture"))


def test_samples_with_gmm_and_rejects_prior_sampler():
  with pytest.raises(ConfigError, match="--sampler=prior.*no prior.*gmm"):
    registry.check_options(ModelConfig(model="ae", sampler="prior"))
  registry.check_options(ModelConfig(model="ae", sampler="gmm"))
  registry.check_options(ModelConfig(model="ae", sampler_components=1))
  model = _model(sampler_components=2)
  assert isinstance(model.code_sampler, samplers.GaussianMixtureSampler)
  assert model.code_sampler.num_components == 2
  assert model.sample_noise_shapes() == ((3,), (1,))


def test_loss_is_bernoulli_distortion_of_the_code():
  model = _model()
  images = _images(5)
  terms = model.compute_loss(images, tf.zeros([5, 3]), tf.constant(0, tf.int64),
                             tf.constant(0.3), training=False)
  assert set(terms) == {"loss", "distortion"}
  logits = model.decode(model.encoder(images)[0])["logits"].numpy()
  x = images.numpy()
  want = -(x * -np.logaddexp(0, -logits)
           + (1 - x) * -np.logaddexp(0, logits)).reshape(5, -1).sum(1)
  np.testing.assert_allclose(terms["loss"].numpy(), want, rtol=1e-5)
  # Deterministic: the noise does not matter.
  noisy = model.compute_loss(images, tf.ones([5, 3]), tf.constant(0, tf.int64),
                             tf.constant(1.0), training=False)
  np.testing.assert_allclose(noisy["loss"].numpy(), want, rtol=1e-5)


def test_gaussian_loss_is_scaled_mse():
  model = _model(likelihood="gaussian", gaussian_scale=0.5)
  images = tf.random.stateless_uniform((3,) + IMAGE_SHAPE, [1, 2])
  loss = model.compute_loss(images, tf.zeros([3, 3]), tf.constant(0, tf.int64),
                            tf.constant(1.0), training=False)["loss"].numpy()
  mean = model.reconstruct(images).numpy()
  sq = ((images.numpy() - mean)**2).reshape(3, -1).sum(1)
  pixels = np.prod(IMAGE_SHAPE)
  want = sq / (2 * 0.25) + pixels * (np.log(0.5) + 0.5 * np.log(2 * np.pi))
  np.testing.assert_allclose(loss, want, rtol=1e-5)


def test_code_is_encoder_loc_and_export_stddev_zero():
  model = _model()
  images = _images(4)
  loc = model.encoder(images)[0].numpy()
  np.testing.assert_allclose(model.encode_code(images).numpy(), loc, atol=1e-6)
  exported = model.export_encode(images)
  np.testing.assert_allclose(exported["mean"].numpy(), loc, atol=1e-6)
  assert np.all(exported["stddev"].numpy() == 0)
  assert model.kl_per_dimension(images) is None


def test_one_component_is_the_single_fitted_gaussian():
  # --sampler_components=1: N(mean, covariance) of the codes, mu + L eps.
  model = _model(sampler_components=1)
  normal = tf.random.stateless_normal([6, 3], [3, 4])
  uniform = tf.random.stateless_uniform([6, 1], [3, 5])
  # Before fitting: N(0, I), i.e. z = noise.
  assert not model.code_sampler.is_fitted()
  np.testing.assert_allclose(model.sample_from_noise(normal, uniform).numpy(),
                             model.decode(normal)["mean"].numpy(), atol=1e-6)
  images = _images(60, seed=5)
  dataset = tf.data.Dataset.from_tensor_slices({"image": images}).batch(16)
  assert model.after_training(dataset) is True
  assert model.code_sampler.is_fitted()
  codes = model.encode_code(images).numpy().astype(np.float64)
  np.testing.assert_allclose(model.code_sampler.means.numpy()[0],
                             codes.mean(0), atol=1e-5)
  tril = model.code_sampler.scale_trils.numpy()[0].astype(np.float64)
  np.testing.assert_allclose(tril @ tril.T, np.cov(codes, rowvar=False),
                             atol=1e-5)
  z = codes.mean(0) + normal.numpy() @ tril.T
  np.testing.assert_allclose(model.sample_from_noise(normal, uniform).numpy(),
                             model.decode(tf.constant(z, tf.float32))[
                                 "mean"].numpy(), atol=1e-5)


# ---- Zoo checks --------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  return zoo_harness.train_variant(
      ModelConfig(model="ae", hidden_dims=(64,), latent_dim=4),
      tmp_path_factory.mktemp("ae"))


def test_learns(run):
  zoo_harness.assert_learns(run)
  assert run.metrics["has_likelihood_bound"] is False
  assert run.metrics["test_nll"] is None


def test_samples_vary_and_look_like_data(run):
  samples = run.model.sample(64, tf.constant([0, 1])).numpy()
  assert np.all(np.isfinite(samples))
  assert samples.std(axis=0).mean() > 0.05
  data_mean = (run.train_x.astype(np.float32) / 255.0).mean()
  assert abs(samples.mean() - data_mean) < 0.1, (samples.mean(), data_mean)


def test_checkpoint_carries_fitted_mixture(run):
  sampler = run.model.code_sampler
  assert sampler.num_components == 10  # The default --sampler_components.
  assert sampler.is_fitted()
  fresh = models.build(run.model.config, run.model.data_shape)
  fresh.build_from_shape()
  assert not fresh.code_sampler.is_fitted()
  latest = run.result.trainer.manager.latest_checkpoint
  tf.train.Checkpoint(model=fresh).restore(latest).expect_partial()
  for name in ("log_weights", "means", "scale_trils", "fitted_codes"):
    np.testing.assert_array_equal(getattr(fresh.code_sampler, name).numpy(),
                                  getattr(sampler, name).numpy())


def test_exports_and_serves(run, tmp_path):
  served = zoo_harness.assert_serves(run, tmp_path)
  zoo_harness.assert_loads(run)
  assert "log_likelihood" not in served
  loaded = tf.saved_model.load(run.export.version_dir)
  assert "log_likelihood" not in loaded.signatures
  assert "sample" in loaded.signatures
  zoo_harness.assert_tflite_runs(run)
  # SavedModel and TFLite `sample` agree and decode the fitted mixture.
  zoo_harness.assert_samples_from_fitted_mixture(run)
