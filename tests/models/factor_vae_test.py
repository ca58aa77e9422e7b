"""Tests of `tfvae.models.factor_vae`: permutation, TC term, discriminator.

Closed forms against numpy, the discriminator trained by its own optimizer
in the loop and resumed bit for bit, and one zoo-harness run (learns,
serves, TFLite, loads) whose export holds no discriminator.
"""

import collections
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.models import tiny
from tests.models import zoo_harness
from tfvae import config as config_lib
from tfvae import models
from tfvae import objectives
from tfvae.config import ModelConfig
from tfvae.data import image_splits
from tfvae.errors import ConfigError
from tfvae.models import factor_vae
from tfvae.models import registry
from tfvae.networks import blocks
from tfvae.training import experiment
from tfvae.training import precision
from tfvae.training.loop import Trainer

STEP = tiny.STEP
LATENT = 3


def _model(**overrides):
  return tiny.build("factor_vae", latent_dim=LATENT,
                    **dict(dict(discriminator_hidden_dims=(16,)), **overrides))


def _noise(batch, seed=(2, 3)):
  return tf.random.stateless_normal([batch, LATENT], seed)


def _numpy_discriminator(model, z):
  """The `CodeDiscriminator`'s logits in numpy (Dense, leaky ReLU, Dense)."""
  kernel, bias, head_kernel, head_bias = (
      v.numpy().astype(np.float64) for v in model.discriminator.variables)
  hidden = z @ kernel + bias
  hidden = np.where(hidden > 0, hidden, blocks.LEAKY_RELU_SLOPE * hidden)
  return (hidden @ head_kernel + head_bias)[:, 0]


def _softplus(x):
  return np.logaddexp(0.0, x)


# ---- Options -----------------------------------------------------------------


def test_rejects_other_priors_flows_and_flags():
  for config, flag in (
      (ModelConfig(model="factor_vae", prior="mixture"), "--prior=mixture"),
      (ModelConfig(model="factor_vae", posterior_flow="iaf"),
       "--posterior_flow=iaf"),
      (ModelConfig(model="factor_vae", beta=4.0), "--beta=4"),
      (ModelConfig(model="factor_vae", dip_lambda_od=2.0),
       "--dip_lambda_od=2")):
    with pytest.raises(ConfigError, match=flag):
      registry.check_options(config)
  registry.check_options(ModelConfig(
      model="factor_vae", tc_weight=35.0, discriminator_hidden_dims=(64, 64),
      discriminator_learning_rate=1e-3, free_bits=0.5))


def test_auxiliary_objective_is_the_papers_discriminator():
  model = _model(discriminator_learning_rate=3e-4)
  (objective,) = model.auxiliary_objectives()
  assert objective is model.auxiliary_objectives()[0]
  assert objective.name == "discriminator"
  assert objective.network is model.discriminator
  assert (objective.learning_rate, objective.beta_1,
          objective.beta_2) == (3e-4, 0.5, 0.9)
  assert objective.terms == ("loss", "accuracy", "tc")
  assert [tuple(v.shape) for v in model.discriminator.variables] == [
      (LATENT, 16), (16,), (16, 1), (1,)]


# ---- The permutation ---------------------------------------------------------


def test_permutation_keeps_every_marginal_and_breaks_the_joint():
  rng = np.random.default_rng(0)
  batch = 500
  shared = rng.normal(size=batch)
  # Perfectly dependent dimensions, distinct values within each column.
  z = np.stack([shared, 2.0 * shared + 1.0, shared**3, -shared], axis=1)
  seed = tf.constant([4, 5], tf.int64)
  permuted = factor_vae.permute_dims(tf.constant(z), seed).numpy()
  assert permuted.shape == z.shape
  orders = []
  for j in range(z.shape[1]):
    # Every dimension keeps its multiset of values ...
    np.testing.assert_array_equal(np.sort(permuted[:, j]), np.sort(z[:, j]))
    order = np.argsort(z[:, j])[np.searchsorted(np.sort(z[:, j]),
                                                permuted[:, j])]
    np.testing.assert_array_equal(z[order, j], permuted[:, j])
    orders.append(order)
  # ... in an order of its own, so rows are no longer the batch's rows
  # and the dependence is gone.
  for a in range(len(orders)):
    assert np.mean(orders[a] == np.arange(batch)) < 0.05
    for b in range(a):
      assert np.mean(orders[a] == orders[b]) < 0.05
  correlation = np.corrcoef(permuted[:, 0], permuted[:, 1])[0, 1]
  assert abs(correlation) < 0.15, correlation
  assert np.corrcoef(z[:, 0], z[:, 1])[0, 1] > 0.999
  # A pure function of the seed.
  np.testing.assert_array_equal(
      factor_vae.permute_dims(tf.constant(z), seed).numpy(), permuted)
  assert not np.array_equal(factor_vae.permute_dims(
      tf.constant(z), tf.constant([4, 6], tf.int64)).numpy(), permuted)


# ---- The loss ----------------------------------------------------------------


@pytest.mark.parametrize("tc_weight, kl_weight", [(10.0, 1.0), (35.0, 0.5)])
def test_loss_adds_gamma_times_the_discriminators_mean_logit(tc_weight,
                                                             kl_weight):
  model = _model(tc_weight=tc_weight)
  images, noise = tiny.binary_images(6), _noise(6)
  terms = model.compute_loss(images, noise, STEP, tf.constant(kl_weight),
                             training=False)
  z, _ = model.latent_sample(model.encode(images), noise)
  logits = _numpy_discriminator(model, z.numpy().astype(np.float64))
  # `tc` is D's logit log D / (1 - D) at each z; its mean estimates TC.
  np.testing.assert_allclose(terms["tc"].numpy(), logits, rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(
      terms["loss"].numpy(),
      (terms["distortion"] + kl_weight * terms["rate"]).numpy()
      + tc_weight * logits, rtol=1e-5, atol=1e-5)
  # The ELBO is the plain VAE's.
  np.testing.assert_allclose(
      terms["elbo"].numpy(), -(terms["distortion"] + terms["rate"]).numpy(),
      rtol=1e-6)
  for value in terms.values():
    assert value.shape == (6,) and value.dtype == tf.float32


def test_tc_gradient_reaches_the_encoder_not_the_discriminator_weights():
  model = _model(tc_weight=1.0)
  images, noise = tiny.binary_images(4), _noise(4)
  with tf.GradientTape() as tape:
    tc = tf.reduce_sum(model.compute_loss(images, noise, STEP,
                                          tf.constant(1.0))["tc"])
  encoder_grads = tape.gradient(tc, model.encoder.trainable_variables)
  assert any(float(tf.reduce_max(tf.abs(g))) > 0 for g in encoder_grads)
  # D is none of the model's Keras variables: the model's optimizer (and
  # the export, which saves those) never sees it.
  model_ids = {id(v) for v in model.trainable_variables}
  assert not model_ids & {id(v) for v in model.discriminator.variables}


def test_free_bits_apply_to_the_kl_term():
  model = _model(free_bits=0.5)
  images, noise = tiny.binary_images(5), _noise(5)
  terms = model.compute_loss(images, noise, STEP, tf.constant(1.0),
                             training=False)
  kl_per_dim = model.kl_per_dimension(images)
  want = (terms["distortion"] + objectives.free_bits_rate(kl_per_dim, 0.5)
          + 10.0 * terms["tc"])
  np.testing.assert_allclose(terms["loss"].numpy(), want.numpy(), rtol=1e-5)


def test_without_tc_weight_the_loss_is_the_vaes():
  keras.utils.set_random_seed(7)
  factor = _model(tc_weight=0.0)
  keras.utils.set_random_seed(7)
  plain = tiny.build("vae", latent_dim=LATENT)
  assert len(factor.variables) == len(plain.variables)
  for a, b in zip(factor.variables, plain.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  images, noise = tiny.binary_images(6), _noise(6)
  got = factor.compute_loss(images, noise, STEP, tf.constant(0.7))
  want = plain.compute_loss(images, noise, STEP, tf.constant(0.7))
  for name in ("loss", "distortion", "rate", "elbo"):
    np.testing.assert_array_equal(got[name].numpy(), want[name].numpy(),
                                  err_msg=name)
  k_noise = tf.random.stateless_normal([4, 6, LATENT], [5, 6])
  np.testing.assert_array_equal(factor.log_weights(images, k_noise).numpy(),
                                plain.log_weights(images, k_noise).numpy())


# ---- The discriminator's objective -------------------------------------------


def test_discriminator_bce_and_accuracy_match_numpy():
  model = _model()
  images, noise = tiny.binary_images(8), _noise(8)
  seed = tf.constant([11, 12], tf.int64)
  terms = model.discriminator_loss(images, None, noise, STEP, seed,
                                   training=False)
  # The codes of the step's noise, and their seeded permutation.
  z, _ = model.latent_sample(model.encode(images), noise)
  real = _numpy_discriminator(model, z.numpy().astype(np.float64))
  permuted = _numpy_discriminator(model, factor_vae.permute_dims(
      z, seed).numpy().astype(np.float64))
  p_real = 1.0 / (1.0 + np.exp(-real))
  p_permuted = 1.0 / (1.0 + np.exp(-permuted))
  bce = 0.5 * (-np.log(p_real) - np.log(1.0 - p_permuted))
  np.testing.assert_allclose(terms["loss"].numpy(), bce, rtol=1e-5)
  np.testing.assert_allclose(terms["loss"].numpy(),
                             0.5 * (_softplus(-real) + _softplus(permuted)),
                             rtol=1e-5)
  np.testing.assert_array_equal(
      terms["accuracy"].numpy(),
      0.5 * ((real > 0).astype(np.float32) + (permuted < 0)))
  np.testing.assert_allclose(terms["tc"].numpy(), real, rtol=1e-5, atol=1e-6)
  assert set(terms) == {"loss", "accuracy", "tc"}


def test_discriminator_loss_trains_only_the_discriminator():
  model = _model()
  images, noise = tiny.binary_images(8), _noise(8)
  with tf.GradientTape(persistent=True) as tape:
    loss = tf.reduce_sum(model.discriminator_loss(
        images, None, noise, STEP, tf.constant([1, 2], tf.int64))["loss"])
  assert all(g is not None for g in tape.gradient(
      loss, model.discriminator.trainable_variables))
  # z is gradient-stopped: nothing reaches the encoder.
  assert all(g is None for g in tape.gradient(
      loss, model.encoder.trainable_variables))


def test_mixed_precision_discriminator_returns_float32():
  with precision.policy_scope("mixed_bfloat16"):
    model = _model()
  assert model.discriminator.compute_dtype == "bfloat16"
  images, noise = tiny.binary_images(4), _noise(4)
  terms = model.compute_loss(images, noise, STEP, tf.constant(1.0))
  aux = model.discriminator_loss(images, None, noise, STEP,
                                 tf.constant([1, 2], tf.int64))
  for value in list(terms.values()) + list(aux.values()):
    assert value.dtype == tf.float32
    assert np.all(np.isfinite(value.numpy()))


# ---- In the training loop ----------------------------------------------------


@pytest.fixture(scope="module")
def data():
  images, labels = zoo_harness.make_shapes(200)
  # No validation split: the loop's tests need no evaluator.
  return experiment.load_data(
      config_lib.RunConfig(data=config_lib.DataConfig(
          validation_fraction=0.0)), image_splits.make_splits(
          images[:160], labels[:160], images[160:], labels[160:],
          source="shapes"))


def _run_config(tmp_path, name, train_steps, **model):
  return config_lib.RunConfig(
      model=config_lib.ModelConfig(**dict(dict(
          model="factor_vae", latent_dim=LATENT, hidden_dims=(16,),
          discriminator_hidden_dims=(16,), discriminator_learning_rate=1e-2),
                                          **model)),
      train=config_lib.TrainConfig(
          model_dir=str(tmp_path / name), epochs=0, train_steps=train_steps,
          batch_size=32, steps_per_loop=2, progress=False,
          learning_rate=1e-2)).validate()


def _trainer(config, data):
  keras.utils.set_random_seed(config.train.seed)
  trainer = Trainer(config, data)
  trainer.restore_or_initialize()
  return trainer


def _values(variables):
  return [v.numpy() for v in variables]


def test_discriminator_trains_by_its_own_optimizer(tmp_path, data):
  factor = _trainer(_run_config(tmp_path, "factor", 4, tc_weight=0.0), data)
  plain = _trainer(_run_config(tmp_path, "plain", 4, model="vae",
                               discriminator_hidden_dims=(),
                               discriminator_learning_rate=None), data)
  discriminator = factor.model.discriminator.trainable_variables
  assert discriminator and not {id(v) for v in discriminator} & {
      id(v) for v in factor.model_variables}
  assert factor.metrics_names[-3:] == (
      "discriminator_loss", "discriminator_accuracy", "discriminator_tc")
  before = _values(discriminator)
  factor.fit()
  plain.fit()
  optimizer = factor.auxiliary_optimizers["discriminator"]
  assert optimizer.iterations.numpy() == 4
  assert (float(optimizer.beta_1), float(optimizer.beta_2)) == (0.5, 0.9)
  for a, b in zip(before, _values(discriminator)):
    assert not np.allclose(a, b)
  # With gamma = 0 the model trained exactly as a plain vae: D's step
  # changed nothing of the model's.
  got, want = _values(factor.model_variables), _values(plain.model_variables)
  assert len(got) == len(want)
  for a, b in zip(got, want):
    np.testing.assert_array_equal(a, b)


def test_resume_is_exact_with_the_discriminator(tmp_path, data):
  straight = _trainer(_run_config(tmp_path, "straight", 4), data)
  straight.fit()
  _trainer(_run_config(tmp_path, "resumed", 2), data).fit()
  resumed = _trainer(_run_config(tmp_path, "resumed", 4), data)
  assert int(resumed.step.numpy()) == 2
  assert resumed.auxiliary_optimizers[
      "discriminator"].iterations.numpy() == 2
  resumed.fit()

  def state(trainer):
    return (_values(trainer.model.discriminator.variables)
            + _values(trainer.model_variables)
            + _values(trainer.optimizer.variables)
            + _values(trainer.auxiliary_optimizers["discriminator"]
                      .variables))

  got, want = state(resumed), state(straight)
  assert len(got) == len(want)
  for a, b in zip(got, want):
    np.testing.assert_array_equal(a, b)
  names = [name for name, _ in tf.train.list_variables(
      resumed.manager.latest_checkpoint)]
  assert any(n.startswith("discriminator_optimizer/") for n in names)
  # The model's own checkpoint dependencies lead to D (not only its
  # optimizer's): a model restored alone gets the trained D.
  fresh = models.build(resumed.config.model, data.data_shape)
  fresh.build_from_shape()
  tf.train.Checkpoint(model=fresh).restore(
      resumed.manager.latest_checkpoint).expect_partial()
  for a, b in zip(_values(fresh.discriminator.variables),
                  _values(straight.model.discriminator.variables)):
    np.testing.assert_array_equal(a, b)


# ---- Zoo checks --------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  return zoo_harness.train_variant(
      ModelConfig(model="factor_vae", tc_weight=10.0, hidden_dims=(16,),
                  latent_dim=4, discriminator_hidden_dims=(16,),
                  discriminator_learning_rate=1e-3),
      tmp_path_factory.mktemp("factor_vae"), train_steps=200)


def test_learns(run):
  zoo_harness.assert_learns(run)
  assert run.metrics["test_nll"] <= run.metrics["test_neg_elbo"] + 0.5


def test_exports_and_serves_without_the_discriminator(run, tmp_path):
  zoo_harness.assert_serves(run, tmp_path)
  zoo_harness.assert_loads(run)
  zoo_harness.assert_tflite_runs(run)
  # The SavedModel holds the model's variables and none of D's (each one
  # under every list the archive saves it in: `variables`, ...).
  saved = tf.train.load_checkpoint(os.path.join(
      run.export.version_dir, "variables", "variables"))
  saved_shapes = collections.Counter(
      tuple(shape) for name, shape in saved.get_variable_to_shape_map()
      .items() if name.endswith("VARIABLE_VALUE"))
  model_shapes = collections.Counter(tuple(v.shape)
                                     for v in run.model.variables)
  copies = sum(saved_shapes.values()) // sum(model_shapes.values())
  assert copies >= 1
  assert saved_shapes == collections.Counter(
      {shape: copies * count for shape, count in model_shapes.items()})
  assert (16, 1) in {tuple(v.shape) for v in run.model.discriminator.variables}
  assert (16, 1) not in saved_shapes
