"""Tests of `tfvae.training.precision`: policies, loss scaling, float32 copies.

Every registered variant is built under `mixed_bfloat16` and must keep its
loss terms float32 and finite, with float32 variables under bfloat16
compute. The float16 trainer's gradients and clip are compared with the
float32 trainer's on one batch.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO_ROOT
from tests.models import tiny
from tests.models import zoo_harness
from tfvae import models
from tfvae.config import ModelConfig
from tfvae.data import columns as columns_lib
from tfvae.errors import ConfigError
from tfvae.models import registry
from tfvae.training import precision

QUICKSTART = os.path.join(REPO_ROOT, "configs", "quickstart.flags")
BATCH = 3
NUM_CLASSES = 3
STEP = tf.constant(0, tf.int64)
# Variant options a tiny model of each registered variant needs.
_VARIANT_OPTIONS = {
    "vq_vae": dict(encoder="conv", decoder="conv", num_embeddings=4,
                   embedding_dim=2, code_prior_layers=2,
                   code_prior_channels=4),
}
# Gaussian-latent parts whose layers cast at their boundary, on `vae`.
_EXTRA_CASES = {
    "vae_mixture_prior": dict(model="vae", prior="mixture"),
    "vae_vamp_prior": dict(model="vae", prior="vamp"),
    "vae_iaf": dict(model="vae", posterior_flow="iaf"),
    "vae_conv_batch_norm": dict(model="vae", encoder="conv", decoder="conv",
                                batch_norm=True),
    "vae_gaussian": dict(model="vae", likelihood="gaussian",
                         learn_gaussian_scale=True),
    "cvae_add": dict(model="cvae", conditioning="add"),
}
_CASES = dict({name: dict(model=name, **_VARIANT_OPTIONS.get(name, {}))
               for name in registry.names()}, **_EXTRA_CASES)


@pytest.fixture(autouse=True)
def _float32_policy():
  """Every test starts with Keras' default float32 policy; restored after."""
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy("float32")
  yield
  keras.config.set_dtype_policy(previous)


# ---- Policies and optimizers -------------------------------------------------


@pytest.mark.parametrize("value,policy", [
    ("none", "float32"), ("mixed_float16", "mixed_float16"),
    ("mixed_bfloat16", "mixed_bfloat16")])
def test_policy_scope_sets_the_policy_and_restores_it(value, policy):
  with precision.policy_scope(value) as inside:
    assert inside.name == policy
    assert keras.config.dtype_policy().name == policy
  assert keras.config.dtype_policy().name == "float32"


def test_policy_scope_restores_a_non_default_policy_and_after_errors():
  keras.config.set_dtype_policy("mixed_float16")
  with precision.policy_scope("none"):
    assert keras.config.dtype_policy().name == "float32"
  assert keras.config.dtype_policy().name == "mixed_float16"
  with pytest.raises(RuntimeError):
    with precision.policy_scope("mixed_bfloat16"):
      raise RuntimeError("boom")
  assert keras.config.dtype_policy().name == "mixed_float16"


def test_unknown_value_is_a_config_error():
  with pytest.raises(ConfigError, match="mixed_precision='fp8'"):
    with precision.policy_scope("fp8"):
      pass
  assert keras.config.dtype_policy().name == "float32"


def test_layers_keep_the_policy_they_were_created_under():
  with precision.policy_scope("mixed_bfloat16"):
    inside = keras.layers.Dense(3)
  outside = keras.layers.Dense(3)
  # Built (variables created) after the scope closed: the policy stays.
  y = inside(tf.ones((2, 4)))
  assert inside.compute_dtype == "bfloat16" and y.dtype == tf.bfloat16
  assert inside.kernel.dtype == "float32"
  assert outside.compute_dtype == "float32"


def test_wrap_optimizer():
  adam = keras.optimizers.Adam(1e-3)
  assert precision.wrap_optimizer(adam, "none") is adam
  assert precision.wrap_optimizer(adam, "mixed_bfloat16") is adam
  wrapped = precision.wrap_optimizer(keras.optimizers.Adam(1e-3),
                                     "mixed_float16")
  assert isinstance(wrapped, keras.optimizers.LossScaleOptimizer)
  assert precision.is_loss_scaled(wrapped)
  assert not precision.is_loss_scaled(adam)
  assert float(precision.loss_scale(adam)) == 1.0


def _scaled_optimizer(variables):
  optimizer = precision.wrap_optimizer(keras.optimizers.Adam(1e-3),
                                       "mixed_float16")
  optimizer.build(variables)
  return optimizer


def _toy_gradients():
  variables = [keras.Variable(np.zeros((3, 2), np.float32)),
               keras.Variable(np.zeros((4,), np.float32))]
  rng = np.random.default_rng(0)
  grads = [tf.constant(rng.normal(size=(3, 2)), tf.float32),
           tf.constant(rng.normal(size=(4,)) * 3, tf.float32)]
  return variables, grads


@pytest.mark.parametrize("clip_norm", [0.5, 100.0])
def test_clip_unscales_clips_and_rescales(clip_norm):
  variables, grads = _toy_gradients()
  optimizer = _scaled_optimizer(variables)
  scale = float(precision.loss_scale(optimizer))
  assert scale == 2.0**15
  scaled = [g * scale for g in grads]
  clipped = precision.clip_by_global_norm(optimizer, scaled, clip_norm)
  want, norm = tf.clip_by_global_norm(grads, clip_norm)
  assert (float(norm) > clip_norm) == (clip_norm == 0.5)
  for got, expected in zip(clipped, want):
    # The scale is a power of two: unscaling and rescaling are exact.
    np.testing.assert_array_equal((got / scale).numpy(), expected.numpy())
  unscaled = precision.unscaled_gradients(optimizer, scaled)
  for got, expected in zip(unscaled, grads):
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


def test_clip_without_loss_scaling_is_tf_clip_by_global_norm():
  variables, grads = _toy_gradients()
  adam = keras.optimizers.Adam(1e-3)
  adam.build(variables)
  want, _ = tf.clip_by_global_norm(grads, 0.5)
  for got, expected in zip(precision.clip_by_global_norm(adam, grads, 0.5),
                           want):
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
  assert precision.unscaled_gradients(adam, grads) is grads


def test_clip_keeps_non_finite_steps_detectable():
  variables, grads = _toy_gradients()
  optimizer = _scaled_optimizer(variables)
  grads[0] = tf.tensor_scatter_nd_update(grads[0], [[0, 0]], [np.inf])
  clipped = precision.clip_by_global_norm(optimizer, grads + [None], 1.0)
  assert clipped[-1] is None
  assert not bool(optimizer.check_finite(clipped[:-1]))
  # The LossScaleOptimizer then skips the step and halves the scale.
  optimizer.apply_gradients(zip(clipped[:-1], variables))
  assert float(optimizer.dynamic_scale.numpy()) == 2.0**14
  assert all(not v.numpy().any() for v in variables)


# ---- Every variant under mixed_bfloat16 --------------------------------------


def _build(case, mixed_precision):
  overrides = dict(_CASES[case])
  model = overrides.pop("model")
  config = ModelConfig(**dict(dict(model=model, hidden_dims=(8,),
                                   latent_dim=2), **overrides))
  num_classes = NUM_CLASSES if models.get(model).conditional else None
  with precision.policy_scope(mixed_precision):
    built = models.build(config, tiny.IMAGE_SHAPE, num_classes)
    built.build_from_shape()
  return built


def _inputs(model):
  images = tiny.binary_images(BATCH)
  labels = (tf.range(BATCH, dtype=tf.int32) % NUM_CLASSES
            if model.conditional else None)
  noise = tf.random.stateless_normal((BATCH,) + tuple(model.noise_shape()),
                                     [0, 1])
  return images, labels, noise


def _networks(model):
  names = ("encoder", "decoder", "code_prior", "image_embedding",
           "latent_embedding")
  found = [getattr(model, name) for name in names if hasattr(model, name)]
  flow = getattr(model, "posterior_flow", None)
  if flow is not None:
    found += list(getattr(flow, "made_layers", []))
  return found


def test_every_registered_variant_is_covered():
  assert set(registry.names()) <= set(_CASES)
  assert len(registry.names()) >= 8


@pytest.mark.parametrize("case", sorted(_CASES))
def test_variant_under_bfloat16_keeps_loss_terms_float32(case):
  model = _build(case, "mixed_bfloat16")
  assert keras.config.dtype_policy().name == "float32"
  images, labels, noise = _inputs(model)
  terms = model.compute_loss(images, noise, STEP, tf.constant(1.0), labels,
                             training=True)
  assert "loss" in terms
  for name, value in terms.items():
    assert value.dtype == tf.float32, name
    assert value.shape == (BATCH,), name
    assert np.all(np.isfinite(value.numpy())), name
  # Distributions and the parts that hold them stay float32 ...
  assert model.compute_dtype == "float32"
  for part in ("likelihood", "latent_prior", "posterior_flow", "quantizer"):
    if hasattr(model, part):
      assert getattr(model, part).compute_dtype == "float32", part
  # ... the networks compute in bfloat16 on float32 variables ...
  dense = [layer for network in _networks(model)
           for layer in network._flatten_layers(include_self=True)  # pylint: disable=protected-access
           if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D))]
  assert dense, case
  for layer in dense:
    assert layer.compute_dtype == "bfloat16", layer.name
    assert layer.kernel.dtype == "float32", layer.name
  assert all(v.dtype == "float32" for v in model.weights)
  assert precision.is_mixed(model)
  # ... and return float32 at their boundary.
  assert model.reconstruct(images, labels).dtype == tf.float32
  sample_labels = labels[:2] if model.conditional else None
  assert model.sample(2, [1, 2], sample_labels).dtype == tf.float32
  if model.has_likelihood_bound:
    weights = model.log_weights(
        images, tf.stack([noise, noise]), labels)
    assert weights.dtype == tf.float32
    assert np.all(np.isfinite(weights.numpy()))


def test_tabular_vae_under_bfloat16():
  columns = (columns_lib.Column("height", "continuous", mean=1.0, std=2.0),
             columns_lib.Column("smoker", "binary"),
             columns_lib.Column("colour", "categorical", ("a", "b", "c")))
  config = ModelConfig(model="vae", likelihood="tabular", hidden_dims=(8,),
                       latent_dim=2)
  with precision.policy_scope("mixed_bfloat16"):
    model = models.build(config, (3,), columns=columns)
    model.build_from_shape()
  rows = tf.constant([[0.5, 1.0, 2.0], [3.0, 0.0, 0.0]], tf.float32)
  terms = model.compute_loss(rows, tf.zeros((2, 2)), STEP, tf.constant(1.0))
  assert all(v.dtype == tf.float32 for v in terms.values())
  assert np.all(np.isfinite(terms["loss"].numpy()))
  assert model.encoder.head.compute_dtype == "bfloat16"


@pytest.mark.parametrize("case", ["vae", "vq_vae", "vae_iaf", "cvae_add",
                                  "ae"])
def test_float32_model_copies_weights_and_is_float32(case):
  mixed = _build(case, "mixed_bfloat16")
  copy = precision.float32_model(mixed)
  assert copy is not mixed
  assert not precision.is_mixed(copy)
  for a, b in zip(mixed.weights, copy.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  images, labels, _ = _inputs(mixed)
  np.testing.assert_allclose(copy.reconstruct(images, labels).numpy(),
                             mixed.reconstruct(images, labels).numpy(),
                             atol=0.02)
  plain = _build(case, "none")
  assert precision.float32_model(plain) is plain


def test_float32_model_of_custom_bodies():
  shared = keras.Sequential([keras.layers.Dense(8, activation="relu")])
  with precision.policy_scope("mixed_bfloat16"):
    decoder_body = keras.Sequential([keras.layers.Dense(8,
                                                        activation="relu")])
    mixed = models.build(ModelConfig(latent_dim=2), tiny.IMAGE_SHAPE,
                         encoder_body=shared, decoder_body=decoder_body)
    mixed.build_from_shape()
  assert decoder_body.layers[0].compute_dtype == "bfloat16"
  copy = precision.float32_model(mixed)
  assert not precision.is_mixed(copy)
  for a, b in zip(mixed.weights, copy.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  images = tiny.binary_images(BATCH)
  np.testing.assert_allclose(copy.reconstruct(images).numpy(),
                             mixed.reconstruct(images).numpy(), atol=0.02)


# ---- The float16 trainer -----------------------------------------------------


def _trainer(root, mixed_precision, clip_norm):
  import tfvae  # pylint: disable=g-import-not-at-top
  from tfvae.training import experiment  # pylint: disable=g-import-not-at-top
  from tfvae.training.loop import Trainer  # pylint: disable=g-import-not-at-top
  images, labels = zoo_harness.make_shapes(64)
  config = tfvae.config_from_flagfile(
      QUICKSTART, train_steps=2, epochs=0, hidden_dims=(16,),
      latent_dim=2, batch_size=32, clip_norm=clip_norm, progress=False,
      images=False, mixed_precision=mixed_precision,
      model_dir=str(root / mixed_precision))
  keras.utils.set_random_seed(config.train.seed)
  data = experiment.load_data(config, tfvae.data.from_arrays(images, labels))
  return Trainer(config, data), images


def _global_norm(grads):
  return float(tf.linalg.global_norm(grads))


def test_float16_trainer_scales_the_loss_and_clips_like_float32(tmp_path):
  clip_norm = 0.5
  float32, images = _trainer(tmp_path, "none", clip_norm)
  float16, _ = _trainer(tmp_path, "mixed_float16", clip_norm)
  assert isinstance(float16.optimizer, keras.optimizers.LossScaleOptimizer)
  assert isinstance(float32.optimizer, keras.optimizers.Adam)
  assert float16.model.decoder.head.compute_dtype == "float16"
  assert all(v.dtype == "float32" for v in float16.model.weights)
  assert all(v.dtype in ("float32", "int64")
             for v in float16.optimizer.variables)
  for a, b in zip(float32.model.get_weights(), float16.model.get_weights()):
    np.testing.assert_array_equal(a, b)  # Same seed, same start.
  batch = tf.constant(images[:32] > 127, tf.float32)
  noise = tf.random.stateless_normal((32, 2), [1, 2])
  args = (batch, None, noise, STEP, tf.constant(1.0))
  grads32, metrics32 = float32._compute_gradients(*args)  # pylint: disable=protected-access
  scaled16, metrics16 = float16._compute_gradients(*args)  # pylint: disable=protected-access
  for metrics in (metrics32, metrics16):
    assert all(value.dtype == tf.float32 for value in metrics.values())
  # The metrics are of the loss itself, not the scaled loss.
  np.testing.assert_allclose(float(metrics16["loss"]),
                             float(metrics32["loss"]), rtol=1e-3)
  scale = float(precision.loss_scale(float16.optimizer))
  assert scale == 2.0**15
  norm32 = _global_norm(grads32)
  assert norm32 > 4 * clip_norm  # The clip is active.
  assert _global_norm(scaled16) == pytest.approx(scale * norm32, rel=1e-2)
  unscaled = precision.unscaled_gradients(float16.optimizer, scaled16)
  assert _global_norm([a - b for a, b in zip(unscaled, grads32)]) < (
      1e-2 * norm32)
  clipped16 = [g / scale for g in precision.clip_by_global_norm(
      float16.optimizer, scaled16, clip_norm)]
  clipped32 = precision.clip_by_global_norm(float32.optimizer, grads32,
                                            clip_norm)
  assert _global_norm(clipped16) == pytest.approx(clip_norm, rel=1e-5)
  assert _global_norm(clipped32) == pytest.approx(clip_norm, rel=1e-5)
  assert _global_norm([a - b for a, b in zip(clipped16, clipped32)]) < (
      1e-2 * clip_norm)


def test_replica_step_hands_scaled_clipped_gradients_to_the_optimizer(
    tmp_path, monkeypatch):
  clip_norm = 0.5
  handed = {}
  trainers = {}
  for mixed_precision in ("none", "mixed_float16"):
    trainer, images = _trainer(tmp_path, mixed_precision, clip_norm)
    apply_gradients = trainer.optimizer.apply_gradients

    def record(grads_and_vars, apply_gradients=apply_gradients,
               key=mixed_precision):
      grads_and_vars = list(grads_and_vars)
      handed[key] = [g for g, _ in grads_and_vars]
      return apply_gradients(grads_and_vars)

    monkeypatch.setattr(trainer.optimizer, "apply_gradients", record)
    batch = {"image": tf.constant(images[:32] > 127, tf.float32)}
    trainer.strategy.run(trainer._replica_step, args=(batch,))  # pylint: disable=protected-access
    trainers[mixed_precision] = trainer
  scale = 2.0**15
  # What the LossScaleOptimizer gets is scaled by S; it divides by S itself.
  assert _global_norm(handed["mixed_float16"]) == pytest.approx(
      scale * clip_norm, rel=1e-5)
  assert _global_norm(handed["none"]) == pytest.approx(clip_norm, rel=1e-5)
  difference = [a / scale - b for a, b in zip(handed["mixed_float16"],
                                              handed["none"])]
  assert _global_norm(difference) < 1e-2 * clip_norm
  float16 = trainers["mixed_float16"].optimizer
  assert int(float16.iterations.numpy()) == 1  # Applied, not skipped.
  assert float(float16.dynamic_scale.numpy()) == scale
