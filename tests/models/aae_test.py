"""Tests of `tfvae.models.aae.AAE`: the adversarial loss and zoo checks."""


import numpy as np
import pytest
from scipy import stats
import tensorflow as tf

from tests.models import tiny
from tests.models import zoo_harness
from tfvae.config import ModelConfig
from tfvae.errors import ConfigError
from tfvae.models import registry
from tfvae.models.vae import VAE
from tfvae.training import precision

STEP = tiny.STEP
_images = tiny.binary_images


def _model(**overrides):
  return tiny.build("aae", latent_dim=3,
                    **dict(dict(discriminator_hidden_dims=(6,)), **overrides))


def _noise(batch, seed=(1, 2)):
  return tf.random.stateless_normal([batch, 2, 3], seed)


def _softplus(x):
  return np.logaddexp(0.0, x)


def test_flags_of_other_variants_are_one_line_errors():
  for config, flag in (
      (ModelConfig(model="aae", gan_weight=2.0), "--gan_weight=2.0"),
      (ModelConfig(model="aae", beta=4.0), "--beta=4.0"),
      (ModelConfig(model="aae", prior="mixture"), "--prior=mixture"),
      (ModelConfig(model="vae", adversarial_weight=3.0),
       "--adversarial_weight=3.0")):
    with pytest.raises(ConfigError, match=flag) as error:
      registry.check_options(config)
    assert "\n" not in str(error.value)
  with pytest.raises(ConfigError, match="used by: aae"):
    registry.check_options(ModelConfig(model="vae", adversarial_weight=3.0))
  registry.check_options(ModelConfig(
      model="aae", adversarial_weight=10.0, discriminator_hidden_dims=(64,),
      discriminator_learning_rate=1e-3))


def test_noise_shape():
  assert _model().noise_shape() == (2, 3)


@pytest.mark.parametrize("weight", [0.0, 1.0, 25.0])
def test_loss_is_distortion_plus_generator_loss_without_kl(weight):
  model = _model(adversarial_weight=weight)
  images, noise = _images(8), _noise(8)
  terms = model.compute_loss(images, noise, STEP, tf.constant(1.0),
                             training=False)
  z, _ = model.latent_sample(model.encode(images), noise[:, 0])
  logits = model.discriminator(z).numpy()
  # The encoder's non-saturating loss -log sigmoid(D(z)).
  np.testing.assert_allclose(terms["adversarial"].numpy(),
                             _softplus(-logits), rtol=1e-5)
  np.testing.assert_allclose(
      terms["loss"].numpy(),
      terms["distortion"].numpy() + weight * _softplus(-logits), rtol=1e-5)
  # No KL in the loss: the KL weight changes nothing.
  for kl_weight in (0.0, 7.0):
    again = model.compute_loss(images, noise, STEP, tf.constant(kl_weight),
                               training=False)
    np.testing.assert_array_equal(again["loss"].numpy(),
                                  terms["loss"].numpy())
  # The distortion, rate (analytic KL, logged) and ELBO are the vae's.
  want = VAE.compute_loss(model, images, noise[:, 0], STEP,
                          tf.constant(1.0), training=False)
  for name in ("distortion", "rate", "elbo"):
    np.testing.assert_allclose(terms[name].numpy(), want[name].numpy(),
                               rtol=1e-6)
  kl = model.kl_per_dimension(images).numpy().sum(-1)
  np.testing.assert_allclose(terms["rate"].numpy(), kl, rtol=1e-5)


def test_mixed_precision_terms_are_float32():
  with precision.policy_scope("mixed_bfloat16"):
    model = _model()
  assert model.discriminator.hidden.layers[0].compute_dtype == "bfloat16"
  images, noise = _images(4), _noise(4)
  terms = model.compute_loss(images, noise, STEP, tf.constant(1.0))
  critic = model.auxiliary_objectives()[0].loss_fn(
      images, None, noise, STEP, tf.zeros([2], tf.int64))
  for value in list(terms.values()) + list(critic.values()):
    assert value.dtype == tf.float32 and value.shape == (4,)
    assert np.all(np.isfinite(value.numpy()))


def test_discriminator_loss_labels_and_accuracy():
  model = _model()
  images, noise = _images(6), _noise(6)
  objective, = model.auxiliary_objectives()
  assert (objective.name, objective.terms) == ("discriminator",
                                               ("loss", "accuracy"))
  assert objective.network is model.discriminator
  assert objective.beta_1 == 0.5
  # Unset, the model's own default; a value given wins.
  assert model.config.discriminator_learning_rate is None
  assert objective.learning_rate == 1e-3
  given, = _model(discriminator_learning_rate=3e-4).auxiliary_objectives()
  assert given.learning_rate == 3e-4
  got = objective.loss_fn(images, None, noise, STEP, tf.zeros([2], tf.int64),
                          training=False)
  z, _ = model.latent_sample(model.encode(images), noise[:, 0])
  posterior = model.discriminator(z).numpy()
  prior = model.discriminator(noise[:, 1]).numpy()
  # BCE with z_p ~ p(z) -> 1 and z ~ q(z|x) -> 0.
  np.testing.assert_allclose(got["loss"].numpy(),
                             (_softplus(-prior) + _softplus(posterior)) / 2,
                             rtol=1e-5)
  np.testing.assert_allclose(
      got["accuracy"].numpy(),
      ((prior > 0).astype(float) + (posterior < 0)) / 2, rtol=1e-6)
  # A discriminator calling every code a prior sample is right on half.
  head = model.discriminator.head
  head.kernel.assign(tf.zeros_like(head.kernel))
  head.bias.assign([4.0])
  got = objective.loss_fn(images, None, noise, STEP, tf.zeros([2], tf.int64),
                          training=False)
  np.testing.assert_allclose(got["accuracy"].numpy(), 0.5)
  np.testing.assert_allclose(got["loss"].numpy(),
                             (_softplus(-4.0) + _softplus(4.0)) / 2,
                             rtol=1e-5)


def test_gradients_split_between_the_model_and_the_discriminator():
  model = _model()
  images, noise = _images(8), _noise(8)
  encoder = model.encoder.trainable_variables
  with tf.GradientTape(persistent=True) as tape:
    terms = model.compute_loss(images, noise, STEP, tf.constant(1.0))
    adversarial = tf.reduce_sum(terms["adversarial"])
    loss = tf.reduce_sum(terms["loss"])
    critic = tf.reduce_sum(model.auxiliary_objectives()[0].loss_fn(
        images, None, noise, STEP, tf.zeros([2], tf.int64))["loss"])
  # The generator loss trains the encoder (not the decoder) ...
  grads = tape.gradient(adversarial, encoder)
  assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)
  assert all(g is None for g in tape.gradient(
      adversarial, model.decoder.trainable_variables))
  # ... and the model's loss reaches D, which the loop leaves out.
  assert all(g is not None for g in tape.gradient(
      loss, model.discriminator.trainable_variables))
  # D's loss trains D alone.
  assert all(g is None for g in tape.gradient(
      critic, encoder + model.decoder.trainable_variables))
  assert all(g is not None for g in tape.gradient(
      critic, model.discriminator.trainable_variables))


def test_log_weights_are_the_normal_prior_importance_weights():
  model = _model()
  images = _images(2)
  noise = tf.random.stateless_normal([4, 2, 2, 3], [5, 6])
  got = model.log_weights(images, noise).numpy()
  assert got.shape == (4, 2)
  params = model.encode(images)
  loc, scale = params["loc"].numpy(), params["scale"].numpy()
  z = loc + scale * noise[:, :, 0].numpy()
  logits = model.decode(tf.constant(z.reshape(8, 3)))["logits"].numpy()
  x = np.tile(images.numpy(), [4, 1, 1, 1])
  log_px_z = -np.sum(_softplus(-logits) * x + _softplus(logits) * (1 - x),
                     axis=(1, 2, 3)).reshape(4, 2)
  log_pz = stats.norm.logpdf(z).sum(-1)
  log_q = stats.norm.logpdf(z, loc, scale).sum(-1)
  np.testing.assert_allclose(got, log_px_z + log_pz - log_q, rtol=1e-4)


# ---- Zoo checks --------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  return zoo_harness.train_variant(
      ModelConfig(model="aae", hidden_dims=(16,), latent_dim=4,
                  discriminator_hidden_dims=(16,)),
      tmp_path_factory.mktemp("aae"), train_steps=200, learning_rate=5e-3)


def test_learns(run):
  zoo_harness.assert_learns(run)
  assert run.metrics["test_nll"] <= run.metrics["test_neg_elbo"] + 0.5


def test_discriminator_is_trained_by_its_own_optimizer_only(run):
  zoo_harness.assert_discriminator_is_auxiliary(run, train_steps=200)


def test_exports_and_serves_without_the_discriminator(run, tmp_path):
  zoo_harness.assert_serves(run, tmp_path)
  zoo_harness.assert_loads(run)
  zoo_harness.assert_tflite_runs(run)
