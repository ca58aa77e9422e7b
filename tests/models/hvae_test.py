"""Tests of `tfvae.models.hvae.HVAE`: closed forms, options, zoo checks."""

import numpy as np
import pytest
import tensorflow as tf

from tests.models import tiny
from tests.models import zoo_harness
from tfvae.config import ModelConfig
from tfvae.errors import ConfigError
from tfvae.models import hvae
from tfvae.models import registry

STEP = tiny.STEP
ONE = tf.constant(1.0)
_images = tiny.binary_images


def _model(latent_dims=(3, 2), **overrides):
  return tiny.build("hvae", latent_dim=2, latent_layers=len(latent_dims),
                    latent_dims=tuple(latent_dims), **overrides)


def _normal_kl(q_loc, q_scale, p_loc, p_scale):
  """KL(N(q) || N(p)) per dimension, numpy float64."""
  q_loc, q_scale, p_loc, p_scale = (np.asarray(a, np.float64) for a in (
      q_loc, q_scale, p_loc, p_scale))
  return (np.log(p_scale / q_scale)
          + (q_scale**2 + (q_loc - p_loc)**2) / (2 * p_scale**2) - 0.5)


def _normal_log_prob(z, loc, scale):
  z, loc, scale = (np.asarray(a, np.float64) for a in (z, loc, scale))
  return np.sum(-0.5 * ((z - loc) / scale)**2 - np.log(scale)
                - 0.5 * np.log(2 * np.pi), axis=-1)


def _bernoulli_log_prob(x, logits):
  x, logits = np.asarray(x, np.float64), np.asarray(logits, np.float64)
  per_pixel = x * logits - np.logaddexp(0.0, logits)
  return per_pixel.reshape(per_pixel.shape[:-3] + (-1,)).sum(-1)


def _numpy(pairs):
  return [(loc.numpy(), scale.numpy()) for loc, scale in pairs]


# ---- Options ---------------------------------------------------------------


def test_options_and_config_errors():
  registry.check_options(ModelConfig(model="hvae", latent_layers=3,
                                     latent_dims=(8, 4, 2), free_bits=0.1))
  with pytest.raises(ConfigError, match="--latent_dims=8,4.*--latent_layers"
                     "=3"):
    registry.check_options(ModelConfig(model="hvae", latent_layers=3,
                                       latent_dims=(8, 4)))
  for flag, overrides in (("--prior=mixture", dict(prior="mixture")),
                          ("--posterior_flow=iaf",
                           dict(posterior_flow="iaf"))):
    with pytest.raises(ConfigError, match=flag):
      registry.check_options(ModelConfig(model="hvae", **overrides))


def test_layer_sizes_and_noise_shapes():
  model = tiny.build("hvae", latent_dim=3, latent_layers=3)
  assert model.latent_dims == (3, 3, 3)
  assert model.noise_shape() == (9,)
  assert model.latent_groups() == (("z1", 3), ("z2", 3), ("z3", 3))
  model = _model((4, 3, 2))
  assert model.latent_dim == 9
  assert model.decode_input_spec().shape.as_list() == [None, 9]
  assert model.prior_code_noise_shapes() == ((2,), (1,))
  assert model.sample_noise_shapes() == ((2 + 4 + 3,), (1,))
  images = _images(5)
  assert model.fitted_code(images).shape == (5, 2)
  np.testing.assert_allclose(model.fitted_code(images).numpy(),
                             model.encode_code(images).numpy()[:, 7:],
                             atol=1e-6)
  outputs = model.export_encode(images)
  assert outputs["mean"].shape == outputs["stddev"].shape == (5, 9)
  for name, dim in model.latent_groups():
    assert outputs[f"mean_{name}"].shape == (5, dim)
  decoded = model.decode(outputs["mean"])["mean"].numpy()
  assert decoded.shape == (5,) + tiny.IMAGE_SHAPE
  # p(x | z_1): the upper layers' latents do not change the pixels.
  moved = tf.concat([outputs["mean"][:, :4], outputs["mean"][:, 4:] + 1.0],
                    -1)
  np.testing.assert_array_equal(model.decode(moved)["mean"].numpy(), decoded)


# ---- Closed forms ----------------------------------------------------------


def test_precision_weighted_matches_its_formula():
  rng = np.random.default_rng(0)
  loc_a, loc_b = rng.normal(size=(2, 4, 3))
  scale_a, scale_b = rng.uniform(0.1, 2.0, size=(2, 4, 3))
  loc, scale = hvae.precision_weighted(*(tf.constant(a, tf.float32) for a in (
      loc_a, scale_a, loc_b, scale_b)))
  precision = scale_a**-2 + scale_b**-2
  np.testing.assert_allclose(scale.numpy(), precision**-0.5, rtol=1e-5)
  np.testing.assert_allclose(
      loc.numpy(), (loc_a * scale_a**-2 + loc_b * scale_b**-2) / precision,
      rtol=1e-5, atol=1e-6)


def test_posterior_is_the_precision_weighted_estimate_and_prior():
  model = _model((3, 2, 2))
  images = _images(4)
  estimates = _numpy(model.bottom_up(images))
  path = model.infer(model.bottom_up(images),
                     tf.random.stateless_normal([4, 7], [1, 2]))
  posterior, prior = _numpy(path["posterior"]), _numpy(path["prior"])
  # The top layer: the bottom-up estimate itself, under N(0, I).
  np.testing.assert_allclose(posterior[-1][0], estimates[-1][0])
  np.testing.assert_allclose(prior[-1][1], 1.0)
  for (loc_a, scale_a), (loc_b, scale_b), (loc, scale) in zip(
      estimates[:-1], prior[:-1], posterior[:-1]):
    precision = scale_a**-2.0 + scale_b**-2.0
    np.testing.assert_allclose(scale, precision**-0.5, rtol=1e-5)
    np.testing.assert_allclose(
        loc, (loc_a * scale_a**-2 + loc_b * scale_b**-2) / precision,
        rtol=1e-4, atol=1e-5)
  # Each z_i is its posterior's reparameterized draw.
  noise = np.split(tf.random.stateless_normal([4, 7], [1, 2]).numpy(),
                   [3, 5], axis=-1)
  for z, (loc, scale), eps in zip(path["z"], posterior, noise):
    np.testing.assert_allclose(z.numpy(), loc + scale * eps, rtol=1e-5,
                               atol=1e-6)


def test_per_layer_kl_matches_numpy():
  model = _model((3, 2))
  images = _images(4)
  noise = tf.random.stateless_normal([4, 5], [3, 4])
  terms = model.compute_loss(images, noise, STEP, ONE, training=False)
  path = model.infer(model.bottom_up(images), noise)
  want = np.concatenate([
      _normal_kl(*q, *p) for q, p in zip(_numpy(path["posterior"]),
                                         _numpy(path["prior"]))], axis=-1)
  np.testing.assert_allclose(terms["rate"].numpy(), want.sum(-1), rtol=1e-5)
  np.testing.assert_allclose(
      terms["elbo"].numpy(), -(terms["distortion"] + terms["rate"]).numpy(),
      rtol=1e-6)
  # kl_per_dimension: the same closed form along the posterior-mean path.
  mean_path = model.infer(model.bottom_up(images), tf.zeros([4, 5]))
  want = np.concatenate([
      _normal_kl(*q, *p) for q, p in zip(_numpy(mean_path["posterior"]),
                                         _numpy(mean_path["prior"]))], -1)
  np.testing.assert_allclose(model.kl_per_dimension(images).numpy(), want,
                             rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(model.encode_code(images).numpy(),
                             np.concatenate([z.numpy() for z in
                                             mean_path["z"]], -1), atol=1e-6)


def test_one_layer_log_weights_are_the_plain_gaussian_formula():
  model = _model((2,))
  images = _images(3)
  noise = tf.random.stateless_normal([5, 3, 2], [5, 6])
  got = model.log_weights(images, noise).numpy()
  (loc, scale), = _numpy(model.bottom_up(images))
  z = loc + scale * noise.numpy()
  logits = model.decode(tf.reshape(z, [15, 2]))["logits"].numpy().reshape(
      (5, 3) + tiny.IMAGE_SHAPE)
  want = (_bernoulli_log_prob(images.numpy(), logits)
          + _normal_log_prob(z, 0.0, 1.0) - _normal_log_prob(z, loc, scale))
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_log_weights_use_the_whole_hierarchy():
  model = _model((3, 2))
  images = _images(3)
  noise = tf.random.stateless_normal([4, 3, 5], [7, 8])
  got = model.log_weights(images, noise).numpy()
  log_px = []
  for j in range(4):
    path = model.infer(model.bottom_up(images), noise[j])
    z = np.concatenate([v.numpy() for v in path["z"]], -1)
    logits = model.decode(tf.constant(z))["logits"].numpy()
    want = _bernoulli_log_prob(images.numpy(), logits)
    log_px.append(want.copy())
    for z_i, q, p in zip(path["z"], _numpy(path["posterior"]),
                         _numpy(path["prior"])):
      want += _normal_log_prob(z_i.numpy(), *p) - _normal_log_prob(
          z_i.numpy(), *q)
    np.testing.assert_allclose(got[j], want, rtol=1e-5, atol=1e-4)
  # compute_loss decodes the same z_1 from the same noise.
  terms = model.compute_loss(images, noise[0], STEP, ONE, training=False)
  np.testing.assert_allclose(-terms["distortion"].numpy(), log_px[0],
                             rtol=1e-5, atol=1e-4)


def test_free_bits_per_layer():
  # Layer 1 (2 dims) has batch-mean KL 0.3 < 2 x 0.5; layer 2 (1 dim) 2.0.
  kl = tf.constant([[0.1, 0.1, 1.0], [0.2, 0.2, 3.0]])
  with tf.GradientTape() as tape:
    tape.watch(kl)
    rate = hvae.free_bits_per_layer(kl, (2, 1), 0.5)
  np.testing.assert_allclose(rate.numpy(), [1.0 + 1.0, 1.0 + 3.0])
  np.testing.assert_allclose(tape.gradient(rate, kl).numpy(),
                             [[0, 0, 1], [0, 0, 1]])
  model = _model((3, 2), free_bits=0.5)
  images = _images(4)
  noise = tf.random.stateless_normal([4, 5], [1, 1])
  terms = model.compute_loss(images, noise, STEP, tf.constant(0.5),
                             training=False)
  per_dim = model._kl_per_dim(model.infer(model.bottom_up(images), noise))  # pylint: disable=protected-access
  want = 0.5 * hvae.free_bits_per_layer(per_dim, (3, 2), 0.5)
  np.testing.assert_allclose(
      (terms["loss"] - terms["distortion"]).numpy(), want.numpy(), rtol=1e-5)
  # Without free bits the penalty is kl_weight x rate.
  plain = _model((3, 2))
  terms = plain.compute_loss(images, noise, STEP, tf.constant(0.5),
                             training=False)
  np.testing.assert_allclose((terms["loss"] - terms["distortion"]).numpy(),
                             0.5 * terms["rate"].numpy(), rtol=1e-5)


def test_sampling_draws_the_top_code_then_the_conditional_priors(
    monkeypatch):
  model = _model((3, 2))
  normal = tf.random.stateless_normal([4, 5], [2, 3])
  uniform = tf.random.stateless_uniform([4, 1], [2, 4])
  seen = {}
  draw_code = model.draw_code

  def record(code_normal, code_uniform):
    seen["normal"] = code_normal
    return draw_code(code_normal, code_uniform)

  monkeypatch.setattr(model, "draw_code", record)
  images = model.sample_from_noise(normal, uniform).numpy()
  np.testing.assert_array_equal(seen["normal"].numpy(), normal.numpy()[:, :2])
  # The same images by hand: z_2 = noise, z_1 ~ p(z_1 | z_2).
  z_top = normal[:, :2]
  above = model.decoder.features(1, z_top)
  loc, scale = model.decoder.prior_params(0, above)
  z = tf.concat([loc + scale * normal[:, 2:], z_top], -1)
  np.testing.assert_allclose(images, model.decode(z)["mean"].numpy(),
                             atol=1e-6)
  assert model.sample(3, [1, 2]).shape == (3,) + tiny.IMAGE_SHAPE


# ---- The zoo checks --------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  return zoo_harness.train_variant(
      ModelConfig(model="hvae", hidden_dims=(64,), latent_layers=2,
                  latent_dims=(4, 2)),
      tmp_path_factory.mktemp("hvae"))


def test_learns_and_reports_layers(run):
  zoo_harness.assert_learns(run)
  metrics = run.metrics
  assert metrics["test_nll"] <= metrics["test_neg_elbo"] + 0.5
  assert len(metrics["kl_per_layer"]) == 2
  assert len(metrics["active_units_per_layer"]) == 2
  assert sum(metrics["active_units_per_layer"]) == metrics["active_units"]
  assert sum(metrics["kl_per_layer"]) == pytest.approx(
      sum(metrics["kl_per_dim"]), rel=1e-5)
  assert metrics["code_dim"] == 6


def test_exports_and_serves(run, tmp_path):
  zoo_harness.assert_serves(run, tmp_path)
  zoo_harness.assert_loads(run)
  interpreter = zoo_harness.assert_tflite_runs(run)
  outputs = interpreter.get_signature_runner("encode")(
      x=np.full((2,) + tuple(run.model.data_shape), 0.5, np.float32))
  assert set(outputs) == {"mean", "stddev", "mean_z1", "stddev_z1",
                          "mean_z2", "stddev_z2"}


def test_conv_variant_builds_and_exports(tmp_path):
  from tfvae import models  # pylint: disable=g-import-not-at-top
  from tfvae.export import exporter  # pylint: disable=g-import-not-at-top
  config = ModelConfig(model="hvae", encoder="conv", decoder="conv",
                       hidden_dims=(4, 8), latent_layers=2,
                       latent_dims=(3, 2))
  model = models.build(config, (8, 8, 1))
  model.build_from_shape()
  images = _images(3, seed=1)
  terms = model.compute_loss(
      tf.image.resize(images, (8, 8)), tf.zeros([3, 5]), STEP, ONE)
  assert np.all(np.isfinite(terms["loss"].numpy()))
  # The export checks TFLite's decode and sample against the model.
  result = exporter.export(model, str(tmp_path / "export"), "hvae_conv")
  assert result.tflite_path
