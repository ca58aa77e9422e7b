"""Tests of `tfvae.models.vae_gan.VAEGAN` and its image discriminator."""


import numpy as np
import pytest
import tensorflow as tf

from tests.models import tiny
from tests.models import zoo_harness
from tfvae.config import ModelConfig
from tfvae.errors import ConfigError
from tfvae.models import registry
from tfvae.models.vae import VAE
from tfvae.networks import image_discriminator
from tfvae.training import precision

STEP = tiny.STEP
_images = tiny.binary_images


def _model(**overrides):
  return tiny.build("vae_gan", latent_dim=3,
                    **dict(dict(discriminator_hidden_dims=(6,)), **overrides))


def _noise(batch, seed=(1, 2)):
  return tf.random.stateless_normal([batch, 2, 3], seed)


def _softplus(x):
  return np.logaddexp(0.0, x)


def test_flags_of_other_variants_are_one_line_errors():
  for config, flag in (
      (ModelConfig(model="vae", gan_weight=2.0), "--gan_weight=2.0"),
      (ModelConfig(model="vae", pixel_weight=0.0), "--pixel_weight=0.0"),
      (ModelConfig(model="vae_gan", adversarial_weight=3.0),
       "--adversarial_weight=3.0"),
      (ModelConfig(model="vae_gan", prior="vamp"), "--prior=vamp"),
      (ModelConfig(model="vae_gan", tc_weight=2.0), "--tc_weight=2.0")):
    with pytest.raises(ConfigError, match=flag) as error:
      registry.check_options(config)
    assert "\n" not in str(error.value)
  with pytest.raises(ConfigError, match="used by: vae_gan"):
    registry.check_options(ModelConfig(model="vae", gan_weight=2.0))
  registry.check_options(ModelConfig(
      model="vae_gan", gan_weight=0.5, pixel_weight=0.0,
      discriminator_hidden_dims=(64, 32), discriminator_learning_rate=1e-3))


def test_rejects_rounded_means_and_vectors():
  with pytest.raises(ConfigError, match="discretized_logistic"):
    registry.check_options(ModelConfig(model="vae_gan",
                                       likelihood="discretized_logistic"))
  with pytest.raises(ConfigError, match="needs images"):
    registry.check_data(ModelConfig(model="vae_gan"), (12,))


def test_noise_shape():
  assert _model().noise_shape() == (2, 3)


@pytest.mark.parametrize("encoder, dims, features", [
    ("mlp", (), 256), ("mlp", (7, 5), 5), ("conv", (), 7 * 7 * 64),
    ("conv", (4, 6), 7 * 7 * 6)])
def test_discriminator_shapes_and_float32_boundary(encoder, dims, features):
  config = ModelConfig(encoder=encoder, discriminator_hidden_dims=dims)
  with precision.policy_scope("mixed_bfloat16"):
    network = image_discriminator.build_image_discriminator(config,
                                                            (28, 28, 1))
  logits, got = network(tf.random.uniform([3, 28, 28, 1]))
  assert logits.shape == (3,) and got.shape == (3, features)
  assert logits.dtype == tf.float32 and got.dtype == tf.float32
  assert network.hidden.layers[0].compute_dtype == "bfloat16"
  assert network.convolutional == (encoder == "conv")


@pytest.mark.parametrize("network", ["mlp", "conv"])
def test_mixed_precision_terms_are_float32(network):
  with precision.policy_scope("mixed_bfloat16"):
    model = tiny.build("vae_gan", latent_dim=3, encoder=network,
                       decoder=network, hidden_dims=(4,),
                       discriminator_hidden_dims=(4,))
  assert model.discriminator.hidden.layers[0].compute_dtype == "bfloat16"
  images, noise = _images(4), _noise(4)
  terms = model.compute_loss(images, noise, STEP, tf.constant(1.0))
  critic = model.auxiliary_objectives()[0].loss_fn(
      images, None, noise, STEP, tf.zeros([2], tf.int64))
  for value in list(terms.values()) + list(critic.values()):
    assert value.dtype == tf.float32 and value.shape == (4,)
    assert np.all(np.isfinite(value.numpy()))


def test_loss_terms_closed_forms():
  model = _model(gan_weight=0.3, pixel_weight=0.5)
  images, noise, kl_weight = _images(8), _noise(8), 0.7
  terms = model.compute_loss(images, noise, STEP, tf.constant(kl_weight),
                             training=False)
  params = model.encode(images)
  z, _ = model.latent_sample(params, noise[:, 0])
  recon = model.decode(z)["mean"]
  prior_samples = model.decode(noise[:, 1])["mean"]
  _, real_features = model.discriminator(images)
  _, recon_features = model.discriminator(recon)
  recon_logits, _ = model.discriminator(recon)
  prior_logits, _ = model.discriminator(prior_samples)
  feature = 0.5 * np.sum(
      (real_features.numpy() - recon_features.numpy())**2, axis=-1)
  np.testing.assert_allclose(terms["feature_distortion"].numpy(), feature,
                             rtol=1e-5, atol=1e-6)
  # The decoder's non-saturating loss, -log sigmoid(l), on both fakes.
  gan = _softplus(-recon_logits.numpy()) + _softplus(-prior_logits.numpy())
  np.testing.assert_allclose(terms["gan"].numpy(), gan, rtol=1e-5)
  # The pixel terms are the VAE's.
  want = VAE.compute_loss(model, images, noise[:, 0], STEP,
                          tf.constant(kl_weight), training=False)
  for name in ("distortion", "rate", "elbo"):
    np.testing.assert_allclose(terms[name].numpy(), want[name].numpy(),
                               rtol=1e-6)
  np.testing.assert_allclose(
      terms["loss"].numpy(),
      kl_weight * want["rate"].numpy() + feature
      + 0.5 * want["distortion"].numpy() + 0.3 * gan, rtol=1e-5)


def test_without_gan_term_the_loss_is_vaes_plus_the_feature_term():
  model = _model(gan_weight=0.0, pixel_weight=1.0)
  images, noise = _images(8), _noise(8)
  kl_weight = tf.constant(0.4)
  vae_loss = VAE.compute_loss(model, images, noise[:, 0], STEP, kl_weight,
                              training=False)["loss"].numpy()
  terms = model.compute_loss(images, noise, STEP, kl_weight, training=False)
  assert np.all(terms["feature_distortion"].numpy() > 0)
  np.testing.assert_allclose(
      terms["loss"].numpy(),
      vae_loss + terms["feature_distortion"].numpy(), rtol=1e-6)
  # Identical features (a discriminator that maps every image to 0): the
  # loss is the vae's.
  for variable in model.discriminator.variables:
    variable.assign(tf.zeros_like(variable))
  terms = model.compute_loss(images, noise, STEP, kl_weight, training=False)
  np.testing.assert_array_equal(terms["feature_distortion"].numpy(), 0.0)
  np.testing.assert_allclose(terms["loss"].numpy(), vae_loss, rtol=1e-6)


def test_discriminator_loss_labels_and_accuracy():
  model = _model()
  images, noise = _images(6), _noise(6)
  objective, = model.auxiliary_objectives()
  assert objective.name == "discriminator"
  assert objective.network is model.discriminator
  assert objective.terms == ("loss", "accuracy")
  assert objective.beta_1 == 0.5
  # Unset, the model's own default; a value given wins.
  assert model.config.discriminator_learning_rate is None
  assert objective.learning_rate == 1e-4
  given, = _model(discriminator_learning_rate=3e-4).auxiliary_objectives()
  assert given.learning_rate == 3e-4
  got = objective.loss_fn(images, None, noise, STEP, tf.zeros([2], tf.int64),
                          training=False)
  z, _ = model.latent_sample(model.encode(images), noise[:, 0])
  real = model.discriminator(images)[0].numpy()
  recon = model.discriminator(model.decode(z)["mean"])[0].numpy()
  prior = model.discriminator(model.decode(noise[:, 1])["mean"])[0].numpy()
  # BCE with real -> 1, reconstructions and prior samples -> 0.
  np.testing.assert_allclose(
      got["loss"].numpy(),
      (_softplus(-real) + _softplus(recon) + _softplus(prior)) / 3,
      rtol=1e-5)
  np.testing.assert_allclose(
      got["accuracy"].numpy(),
      ((real > 0).astype(float) + (recon < 0) + (prior < 0)) / 3, rtol=1e-6)
  # A discriminator calling everything real is right on a third.
  head = model.discriminator.head
  head.kernel.assign(tf.zeros_like(head.kernel))
  head.bias.assign([5.0])
  got = objective.loss_fn(images, None, noise, STEP, tf.zeros([2], tf.int64),
                          training=False)
  np.testing.assert_allclose(got["accuracy"].numpy(), 1 / 3)
  np.testing.assert_allclose(got["loss"].numpy(),
                             (_softplus(-5.0) + 2 * _softplus(5.0)) / 3,
                             rtol=1e-5)


def _gradients(model, term, variables, loss_fn=None):
  images, noise = _images(8), _noise(8)
  with tf.GradientTape() as tape:
    if loss_fn is None:
      terms = model.compute_loss(images, noise, STEP, tf.constant(1.0))
    else:
      terms = loss_fn(images, None, noise, STEP, tf.zeros([2], tf.int64))
    loss = tf.reduce_sum(terms[term])
  return [g for g in tape.gradient(loss, variables)]


def _nonzero(grads):
  return any(g is not None and float(tf.reduce_max(tf.abs(g))) > 0
             for g in grads)


def test_the_gan_term_does_not_reach_the_encoder():
  model = _model()
  encoder = model.encoder.trainable_variables
  # None or exactly 0 (the fakes share one discriminator call with images).
  assert not _nonzero(_gradients(model, "gan", encoder))
  assert _nonzero(_gradients(model, "gan",
                             model.decoder.trainable_variables))
  # The feature and pixel terms do train the encoder.
  assert _nonzero(_gradients(model, "feature_distortion", encoder))
  assert _nonzero(_gradients(model, "distortion", encoder))
  # The model's loss depends on Dis (so the loop must leave it out) ...
  assert _nonzero(_gradients(model, "loss",
                             model.discriminator.trainable_variables))
  # ... and Dis's loss trains Dis alone.
  loss_fn = model.auxiliary_objectives()[0].loss_fn
  assert not _nonzero(_gradients(
      model, "loss", model.encoder.trainable_variables
      + model.decoder.trainable_variables, loss_fn))


def test_log_weights_use_first_noise_slice():
  model = _model()
  images = _images(2)
  noise = tf.random.stateless_normal([4, 2, 2, 3], [5, 6])
  got = model.log_weights(images, noise)
  assert got.shape == (4, 2)
  np.testing.assert_allclose(
      got.numpy(), VAE.log_weights(model, images, noise[:, :, 0]).numpy())


# ---- Zoo checks --------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  return zoo_harness.train_variant(
      ModelConfig(model="vae_gan", hidden_dims=(16,), latent_dim=4,
                  discriminator_hidden_dims=(16,)),
      tmp_path_factory.mktemp("vae_gan"), train_steps=200,
      learning_rate=5e-3)


def test_learns(run):
  zoo_harness.assert_learns(run)
  assert run.metrics["test_nll"] <= run.metrics["test_neg_elbo"] + 0.5


def test_discriminator_is_trained_by_its_own_optimizer_only(run):
  zoo_harness.assert_discriminator_is_auxiliary(run, train_steps=200)


def test_exports_and_serves_without_the_discriminator(run, tmp_path):
  zoo_harness.assert_serves(run, tmp_path)
  zoo_harness.assert_loads(run)
  zoo_harness.assert_tflite_runs(run)
