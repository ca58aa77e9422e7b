"""Tests of the discretized logistic mixture (`tfvae.discretized_logistic`),
its likelihood head, its data checks, its trivial baseline and a zoo run."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tests.models import zoo_harness
from tfvae import discretized_logistic as dl
from tfvae import likelihoods
from tfvae import models
from tfvae.config import ModelConfig
from tfvae.data import pipeline
from tfvae.data.image_splits import Splits
from tfvae.errors import ConfigError
from tfvae.errors import DataError
from tfvae.training import experiment

tfd = tfp.distributions

ALL_VALUES = np.arange(256, dtype=np.float64)


def _params(num_mixtures, channels, seed, scale=2.0, shape=(1, 1, 1),
            dtype=tf.float64):
  """`split_parameters` of random decoder outputs `[*shape, P]`."""
  outputs = np.random.default_rng(seed).normal(
      scale=scale, size=shape + (dl.num_parameters(num_mixtures, channels),))
  return dl.split_parameters(tf.constant(outputs, dtype), num_mixtures,
                             channels)


def _images(values, dtype=tf.float64):
  """8-bit values -> images v / 255 of `dtype`."""
  return tf.constant(np.asarray(values, np.float64) / 255.0, dtype)


def test_parameter_counts_follow_pixelcnn_pp():
  assert dl.num_parameters(1, 1) == 3
  assert dl.num_parameters(5, 1) == 15
  assert dl.num_parameters(1, 3) == 10
  assert dl.num_parameters(10, 3) == 100
  # Coefficients: green on red, blue on red, blue on green.
  assert [dl.coefficient_index(c, j) for c, j in ((1, 0), (2, 0), (2, 1))] == [
      0, 1, 2]


def test_split_parameters_shapes_and_constraints():
  outputs = tf.constant(np.random.default_rng(0).normal(
      scale=20.0, size=(2, 4, 3, 20)), tf.float32)
  params = dl.split_parameters(outputs, 2, 3)
  assert params["logits"].shape == (2, 4, 3, 2)
  assert params["loc"].shape == (2, 4, 3, 3, 2)
  assert params["log_scale"].shape == (2, 4, 3, 3, 2)
  assert params["coefficients"].shape == (2, 4, 3, 3, 2)
  assert params["log_scale"].numpy().min() >= dl.MIN_LOG_SCALE
  assert np.abs(params["coefficients"].numpy()).max() <= 1.0
  # Entry c * K + k of each block is channel c, component k.
  np.testing.assert_array_equal(params["loc"][..., 1, 0].numpy(),
                                outputs[..., 2 + 2].numpy())
  grey = dl.split_parameters(outputs[..., :6], 2, 1)
  assert "coefficients" not in grey
  assert grey["loc"].shape == (2, 4, 3, 1, 2)


@pytest.mark.parametrize("num_mixtures,seed,scale",
                         [(1, 0, 1.0), (3, 1, 2.0), (5, 2, 6.0)])
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_grey_values_sum_to_one(num_mixtures, seed, scale, dtype):
  params = _params(num_mixtures, 1, seed, scale, shape=(1, 3, 1),
                   dtype=dtype)
  x = _images(np.broadcast_to(ALL_VALUES[:, None, None, None],
                              (256, 3, 1, 1)), dtype)
  log_p = dl.DiscretizedLogisticMixture(params, 1).pixel_log_prob(x)
  assert log_p.shape == (256, 3, 1)
  total = np.exp(log_p.numpy().astype(np.float64)).sum(axis=0)
  np.testing.assert_allclose(total, 1.0, atol=1e-5)


def _rgb_joint_total(params, dtype):
  """Sum of p over all 256^3 values of one RGB pixel, by brute force."""
  distribution = dl.DiscretizedLogisticMixture(params, 3)
  green, blue = np.meshgrid(ALL_VALUES, ALL_VALUES, indexing="ij")
  total = 0.0
  for first in range(0, 256, 32):
    red = ALL_VALUES[first:first + 32]
    values = np.stack(np.broadcast_arrays(
        red[:, None, None], green[None], blue[None]), axis=-1)
    log_p = distribution.log_prob(_images(values.reshape(-1, 1, 1, 3),
                                          dtype))
    total += np.exp(log_p.numpy().astype(np.float64)).sum()
  return total


def test_rgb_joint_over_all_values_sums_to_one():
  # Strong channel dependence: coefficients near +-1. (One component keeps
  # the 16.7M evaluations quick; a mixture of normalized components is
  # normalized, and mixtures are checked against the chain formula below.)
  params = _params(1, 3, seed=3, scale=3.0, dtype=tf.float32)
  assert np.abs(params["coefficients"].numpy()).max() > 0.9
  np.testing.assert_allclose(_rgb_joint_total(params, tf.float32), 1.0,
                             atol=1e-5)


def _bin_probability(value, loc, scale):
  """P(v) of one discretized logistic on the [-1, 1] scale (numpy)."""
  x = 2.0 * value / 255.0 - 1.0
  upper = 1.0 if value == 255 else _logistic_cdf((x + 1 / 255 - loc) / scale)
  lower = 0.0 if value == 0 else _logistic_cdf((x - 1 / 255 - loc) / scale)
  return upper - lower


def test_rgb_log_prob_is_the_pixelcnn_pp_chain_of_conditionals():
  """p(r, g, b) = sum_k pi_k p_k(r) p_k(g | r) p_k(b | r, g), with green's
  location mu_g + a x_r and blue's mu_b + b x_r + c x_g (x on [-1, 1])."""
  params = _params(2, 3, seed=4, scale=1.5)
  numpy = {name: value.numpy()[0, 0, 0] for name, value in params.items()}
  weights = np.exp(numpy["logits"]) / np.exp(numpy["logits"]).sum()
  values = np.random.default_rng(4).integers(0, 256, (40, 3))
  values[:4] = [[0, 0, 0], [255, 255, 255], [0, 128, 255], [255, 3, 0]]
  got = np.exp(dl.DiscretizedLogisticMixture(params, 3).log_prob(
      _images(values[:, None, None, :])).numpy())
  for (red, green, blue), probability in zip(values, got):
    x_red, x_green = 2 * red / 255 - 1, 2 * green / 255 - 1
    total = 0.0
    for k in range(2):
      loc, scale = numpy["loc"][:, k], np.exp(numpy["log_scale"][:, k])
      a, b, c = numpy["coefficients"][:, k]
      total += weights[k] * (
          _bin_probability(red, loc[0], scale[0])
          * _bin_probability(green, loc[1] + a * x_red, scale[1])
          * _bin_probability(blue, loc[2] + b * x_red + c * x_green,
                             scale[2]))
    np.testing.assert_allclose(probability, total, rtol=1e-9)


def test_single_logistic_matches_tfp_quantized_logistic():
  """K = 1 grey: QuantizedDistribution(Logistic) on the [0, 255] scale."""
  rng = np.random.default_rng(5)
  loc = rng.uniform(-1.3, 1.3, size=8)
  log_scale = rng.uniform(-6.0, 1.0, size=8)
  outputs = np.stack([np.zeros(8), loc, log_scale], axis=-1)
  params = dl.split_parameters(tf.constant(outputs[:, None, None, :]), 1, 1)
  x = _images(np.broadcast_to(ALL_VALUES[:, None, None, None, None],
                              (256, 8, 1, 1, 1)))
  got = dl.DiscretizedLogisticMixture(params, 1).log_prob(x).numpy()
  # v = round(X') with X' ~ Logistic on the 8-bit scale; TFP's Y = ceil(X).
  reference = tfd.QuantizedDistribution(
      tfd.Logistic(loc=(loc + 1.0) * 127.5 - 0.5,
                   scale=np.exp(log_scale) * 127.5),
      low=0.0, high=255.0)
  want = reference.log_prob(ALL_VALUES[:, None]).numpy()
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def _logistic_cdf(t):
  return 1.0 / (1.0 + np.exp(-t))


def test_edge_bins_take_the_tails():
  loc, log_scale = 0.3, -2.0
  params = dl.split_parameters(
      tf.constant([[[[0.0, loc, log_scale]]]], tf.float64), 1, 1)
  distribution = dl.DiscretizedLogisticMixture(params, 1)
  scale = math.exp(log_scale)
  log_p = distribution.log_prob(_images(
      np.array([0.0, 1.0, 254.0, 255.0])[:, None, None, None])).numpy()
  half = 1.0 / 255.0

  def cdf(x):
    return _logistic_cdf((x - loc) / scale)

  want = [cdf(-1.0 + half),  # 0: from -inf.
          cdf(-1.0 + 3 * half) - cdf(-1.0 + half),
          cdf(1.0 - half) - cdf(1.0 - 3 * half),
          1.0 - cdf(1.0 - half)]  # 255: to +inf.
  np.testing.assert_allclose(np.exp(log_p), want, rtol=1e-9)


def test_far_tails_are_exact_where_sigmoids_underflow():
  """Bins whose sigmoid difference is 0 in float32 keep their log-prob."""
  loc, log_scale = 0.95, -5.0
  params32 = dl.split_parameters(
      tf.constant([[[[0.0, loc, log_scale]]]], tf.float32), 1, 1)
  values = np.array([0.0, 1.0, 40.0, 128.0, 200.0])[:, None, None, None]
  got = dl.DiscretizedLogisticMixture(params32, 1).log_prob(
      _images(values, tf.float32)).numpy()
  reference = tfd.QuantizedDistribution(
      tfd.Logistic(loc=(loc + 1.0) * 127.5 - 0.5,
                   scale=math.exp(log_scale) * 127.5), low=0.0, high=255.0)
  want = reference.log_prob(values[:, 0, 0, 0]).numpy()
  assert want.min() < -200  # Far below float32's sigmoid resolution.
  np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("log_scale", [-30.0, -7.0, 0.0, 30.0, 120.0])
@pytest.mark.parametrize("loc", [-40.0, -1.0, 0.0, 0.7, 40.0])
def test_extreme_parameters_give_finite_log_probs_and_gradients(log_scale,
                                                                loc):
  outputs = tf.Variable(np.tile(
      [[[[50.0, -50.0, loc, -loc, log_scale, log_scale]]]], (3, 1, 1, 1)),
                        dtype=tf.float32)
  x = _images(np.array([0.0, 77.0, 255.0])[:, None, None, None], tf.float32)
  with tf.GradientTape() as tape:
    log_p = dl.DiscretizedLogisticMixture(
        dl.split_parameters(outputs, 2, 1), 1).log_prob(x)
    total = tf.reduce_sum(log_p)
  gradient = tape.gradient(total, outputs).numpy()
  assert np.all(np.isfinite(log_p.numpy())), log_p.numpy()
  assert np.all(log_p.numpy() <= 0.0)
  assert np.all(np.isfinite(gradient)), gradient


def test_rgb_gradients_are_finite():
  outputs = tf.Variable(np.random.default_rng(6).normal(
      scale=10.0, size=(4, 2, 2, 20)), dtype=tf.float32)
  x = _images(np.random.default_rng(7).integers(0, 256, (4, 2, 2, 3)),
              tf.float32)
  with tf.GradientTape() as tape:
    total = tf.reduce_sum(dl.DiscretizedLogisticMixture(
        dl.split_parameters(outputs, 2, 3), 3).log_prob(x))
  gradient = tape.gradient(total, outputs).numpy()
  assert np.isfinite(total.numpy())
  assert np.all(np.isfinite(gradient)) and np.any(gradient != 0)


def test_log_prob_broadcasts_over_leading_sample_axes():
  """`log_weights` decodes `[k, batch, ...]` parameters for `[batch]` data."""
  params = _params(2, 3, seed=8, shape=(3, 5, 2, 2), dtype=tf.float32)
  x = _images(np.random.default_rng(9).integers(0, 256, (5, 2, 2, 3)),
              tf.float32)
  got = dl.DiscretizedLogisticMixture(params, 3).log_prob(x).numpy()
  assert got.shape == (3, 5)
  one = {name: value[1] for name, value in params.items()}
  np.testing.assert_allclose(
      got[1], dl.DiscretizedLogisticMixture(one, 3).log_prob(x).numpy(),
      rtol=1e-6)


def _on_grid(images):
  """Values v / 255 of 8-bit v, up to float rounding (graph optimizers may
  turn the division into a multiplication: one ulp)."""
  values = np.round(images * 255.0)
  np.testing.assert_allclose(images, values / 255.0, rtol=2e-7, atol=0)
  assert values.min() >= 0 and values.max() <= 255


@pytest.mark.parametrize("channels", [1, 3])
def test_mean_is_an_eight_bit_image(channels):
  params = _params(4, channels, seed=10, scale=3.0, shape=(6, 5, 4),
                   dtype=tf.float32)
  mean = dl.mean(params, channels).numpy()
  assert mean.shape == (6, 5, 4, channels) and mean.dtype == np.float32
  _on_grid(mean)


def test_grey_mean_is_the_rounded_discrete_mean():
  """Within one level of sum_v v P(v) (a continuous, clipped counterpart)."""
  params = _params(3, 1, seed=11, scale=1.5, shape=(1, 10, 4))
  x = _images(np.broadcast_to(ALL_VALUES[:, None, None, None, None],
                              (256, 1, 10, 4, 1)))
  log_p = dl.DiscretizedLogisticMixture(params, 1).pixel_log_prob(x).numpy()
  discrete = np.tensordot(ALL_VALUES, np.exp(log_p), axes=1)[0]
  got = dl.mean(params, 1).numpy()[0, ..., 0] * 255.0
  np.testing.assert_allclose(got, discrete, atol=1.0)


def test_sharp_mean_hits_the_location():
  # loc at value 100 on the [-1, 1] scale, a tiny scale: the mean is 100.
  params = dl.split_parameters(
      tf.constant([[[[0.0, 200.0 / 255.0 - 1.0, -7.0]]]]), 1, 1)
  assert round(float(dl.mean(params, 1).numpy()[0, 0, 0, 0]) * 255) == 100


def test_head_shapes_and_build_likelihood():
  config = ModelConfig(likelihood="discretized_logistic", logistic_mixtures=5)
  rgb = likelihoods.build_likelihood(config, (6, 4, 3))
  grey = likelihoods.build_likelihood(config, (6, 4, 1))
  assert isinstance(rgb, likelihoods.DiscretizedLogisticLikelihood)
  assert rgb.parameter_shape == (6, 4, 50)
  assert grey.parameter_shape == (6, 4, 15)
  assert rgb.feature_shape == (6, 4, 3)
  outputs = tf.random.stateless_normal((2, 6, 4, 50), [1, 2])
  params = rgb(outputs)
  assert set(params) == {"logits", "loc", "log_scale", "coefficients"}
  _on_grid(rgb.mean(params).numpy())
  images = _images(np.random.default_rng(12).integers(0, 256, (2, 6, 4, 3)),
                   tf.float32)
  assert rgb.distribution(params).log_prob(images).shape == (2,)
  with pytest.raises(ConfigError, match="--likelihood=discretized_logistic"):
    likelihoods.build_likelihood(config, (12,))


def test_head_is_float32_under_mixed_precision():
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy("mixed_float16")
  try:
    head = likelihoods.build_likelihood(
        ModelConfig(likelihood="discretized_logistic"), (2, 2, 3))
    params = head(tf.zeros((1, 2, 2, 10), tf.float16))
  finally:
    keras.config.set_dtype_policy(previous)
  assert head.compute_dtype == "float32"
  assert all(value.dtype == tf.float32 for value in params.values())


# Every Gaussian-latent variant decodes the head's parameters; small RGB.
_VARIANTS = ["vae", "beta_vae", "cvae", "iwae", "info_vae", "beta_tc_vae",
             "hvae"]


@pytest.mark.parametrize("name,network", [(name, "mlp") for name in _VARIANTS]
                         + [("vae", "conv")])
def test_variants_train_on_the_head(name, network):
  config = ModelConfig(model=name, likelihood="discretized_logistic",
                       logistic_mixtures=2, encoder=network, decoder=network,
                       hidden_dims=(8,) if network == "conv" else (16,),
                       latent_dim=3)
  model = models.build(config, (8, 8, 3), num_classes=2)
  model.build_from_shape()
  z = tf.zeros((2, model.decode_input_spec().shape[1]))
  labels = tf.constant([0, 1]) if model.conditional else None
  decoded = model.decode(z, labels)
  assert decoded["logits"].shape == (2, 8, 8, 2)
  assert decoded["loc"].shape == (2, 8, 8, 3, 2)
  _on_grid(decoded["mean"].numpy())
  images = _images(np.random.default_rng(13).integers(0, 256, (2, 8, 8, 3)),
                   tf.float32)
  noise = tf.random.stateless_normal((2,) + tuple(model.noise_shape()), [3, 4])
  with tf.GradientTape() as tape:
    terms = model.compute_loss(images, noise, tf.constant(0, tf.int64),
                               tf.constant(1.0), labels)
    loss = tf.reduce_mean(terms["loss"])
  gradients = tape.gradient(loss, model.trainable_variables)
  assert np.isfinite(loss.numpy())
  assert all(np.all(np.isfinite(g.numpy())) for g in gradients
             if g is not None)
  # A discrete likelihood: -log p(x|z) >= 0.
  assert np.all(terms["distortion"].numpy() >= 0)
  log_w = model.log_weights(
      images, tf.random.stateless_normal(
          (3, 2) + tuple(model.noise_shape()), [5, 6]), labels)
  assert log_w.shape == (3, 2) and np.all(np.isfinite(log_w.numpy()))


def _splits(train_x, test_x=None):
  return Splits(train_x=train_x, train_y=None,
                test_x=train_x[:2] if test_x is None else test_x, test_y=None,
                num_classes=None, source="test-data")


def test_prepare_accepts_uint8_and_eight_bit_floats():
  values = np.random.default_rng(14).integers(0, 256, (6, 3, 3, 3))
  for x in (values.astype(np.uint8), (values / 255.0).astype(np.float32)):
    data = pipeline.prepare(_splits(x), 0.0, "discretized_logistic")
    assert len(data.train_x) == 6


@pytest.mark.parametrize("where", ["train", "test"])
@pytest.mark.parametrize("problem,match", [("off_grid", "not 8-bit values"),
                                           ("range", "range over")])
def test_prepare_rejects_data_off_the_eight_bit_grid(where, problem, match):
  good = (np.random.default_rng(15).integers(0, 256, (6, 3, 3, 1))
          / 255.0).astype(np.float32)
  bad = good.copy()
  bad[1, 2, 0, 0] = 0.5 / 255.0 if problem == "off_grid" else 1.5
  train_x, test_x = (bad, good[:2]) if where == "train" else (good, bad[:3])
  with pytest.raises(DataError) as error:
    pipeline.prepare(_splits(train_x, test_x), 0.0, "discretized_logistic")
  message = str(error.value)
  assert match in message and "--likelihood=discretized_logistic" in message
  assert f"The {'training' if where == 'train' else 'test'} examples" in (
      message)
  assert "\n" not in message
  # Other likelihoods take these values.
  pipeline.prepare(_splits(train_x, test_x), 0.0, "gaussian")


def test_prepare_rejects_vectors():
  vectors = np.zeros((6, 4), np.float32)
  with pytest.raises(DataError, match="8-bit images"):
    pipeline.prepare(_splits(vectors), 0.0, "discretized_logistic")


def test_trivial_nll_is_a_smoothed_categorical_per_subpixel():
  rng = np.random.default_rng(16)
  train = rng.integers(0, 256, (30, 2, 2, 3)).astype(np.uint8)
  test = rng.integers(0, 256, (7, 2, 2, 3)).astype(np.uint8)
  counts = np.zeros((12, 256))
  for row in train.reshape(30, -1):
    counts[np.arange(12), row] += 1
  log_p = np.log((counts + 1) / (30 + 256))
  want = -np.mean([log_p[np.arange(12), row].sum()
                   for row in test.reshape(7, -1)])
  got = experiment.trivial_nll(train, test, False, "discretized_logistic")
  np.testing.assert_allclose(got, want, rtol=1e-12)
  # Float v / 255 data give the same baseline.
  floats = experiment.trivial_nll((train / 255.0).astype(np.float32),
                                  (test / 255.0).astype(np.float32), False,
                                  "discretized_logistic")
  np.testing.assert_allclose(floats, want, rtol=1e-12)
  # Each subpixel's categorical sums to 1 over the 256 values.
  np.testing.assert_allclose(np.exp(log_p).sum(axis=1), 1.0)


def _write_records(folder, train_x, test_x, encoding):
  """`train`/`test` TFRecord shards and their manifest under `folder`."""
  import json  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  from tfvae.data import tfrecord  # pylint: disable=g-import-not-at-top
  os.makedirs(folder)
  entries = {}
  for split, x in (("train", train_x), ("test", test_x)):
    name = tfrecord.shard_name(split, 0, 1)
    path = os.path.join(folder, name)
    with tf.io.TFRecordWriter(path) as writer:
      for image in x:
        writer.write(tfrecord.example_bytes(image, None, encoding))
    entries[split] = [{"file": name, "count": len(x),
                       "bytes": os.path.getsize(path)}]
  manifest = tfrecord.manifest_dict(
      source="test data", data_shape=train_x.shape[1:],
      dtype=str(train_x.dtype), encoding=encoding, num_classes=None,
      class_names=None, column_names=None, columns=None, splits=entries)
  with open(os.path.join(folder, tfrecord.MANIFEST_NAME), "w") as f:
    json.dump(manifest, f)
  from tfvae.config import DataConfig  # pylint: disable=g-import-not-at-top
  from tfvae.data import sources  # pylint: disable=g-import-not-at-top
  return sources.load_splits(DataConfig(dataset="tfrecord", data_dir=folder,
                                        download=False))


def test_streamed_records_checked_and_baseline_streamed(tmp_path):
  rng = np.random.default_rng(17)
  train = rng.integers(0, 256, (40, 4, 4, 3)).astype(np.uint8)
  test = rng.integers(0, 256, (9, 4, 4, 3)).astype(np.uint8)
  png = _write_records(str(tmp_path / "png"), train, test, "png")
  data = pipeline.prepare(png, 0.0, "discretized_logistic")
  assert type(data.train_x).__name__ == "RecordSplit"
  np.testing.assert_allclose(
      experiment.trivial_nll(data.train_x, data.test_x, False,
                             "discretized_logistic"),
      experiment.trivial_nll(train, test, False, "discretized_logistic"),
      rtol=1e-12)
  on_grid = _write_records(str(tmp_path / "raw"), train / np.float32(255),
                           test / np.float32(255), "raw")
  pipeline.prepare(on_grid, 0.0, "discretized_logistic")
  off_grid = _write_records(str(tmp_path / "off"),
                            (train / np.float32(256)), test / np.float32(255),
                            "raw")
  with pytest.raises(DataError, match="training examples .* not 8-bit"):
    pipeline.prepare(off_grid, 0.0, "discretized_logistic")


# ---- A zoo run on coloured shapes ----------------------------------------


def _coloured_shapes(make_shapes, num_examples, seed=0):
  """The harness's shapes, each in a random colour: `[N, 16, 16, 3]` uint8."""
  grey, labels = make_shapes(num_examples, seed)
  colours = np.random.default_rng(seed + 1).integers(
      64, 256, (num_examples, 1, 1, 3))
  return (grey // 255 * colours).astype(np.uint8), labels


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  config = ModelConfig(model="vae", hidden_dims=(64,), latent_dim=4,
                       likelihood="discretized_logistic", logistic_mixtures=2)
  make_shapes = zoo_harness.make_shapes
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(zoo_harness, "make_shapes",
                  lambda n, seed=0: _coloured_shapes(make_shapes, n, seed))
    result = zoo_harness.train_variant(config, tmp_path_factory.mktemp("dl"),
                                       train_steps=200)
  assert zoo_harness.make_shapes is make_shapes
  return result


def test_zoo_run_learns_on_rgb(run):
  assert run.train_x.shape[1:] == (16, 16, 3) and run.train_x.dtype == np.uint8
  zoo_harness.assert_learns(run)
  metrics = run.metrics
  assert not run.result.trainer.binarized  # --binarize is on by default.
  assert metrics["test_nll"] <= metrics["test_neg_elbo"] + 0.5
  # Discrete: bits/dim is nats / (H W C ln 2), with no density correction.
  np.testing.assert_allclose(metrics["test_bits_per_dim"],
                             metrics["test_nll"] / (16 * 16 * 3 * math.log(2)),
                             rtol=1e-9)
  assert 0 < metrics["test_bits_per_dim"] < 8
  assert metrics["test_nll"] < metrics["trivial_nll"]


def test_zoo_run_exports_and_serves(run, tmp_path):
  served = zoo_harness.assert_serves(run, tmp_path)
  _on_grid(served["sample"]["images"])
  _on_grid(served["decode"]["mean"])
  zoo_harness.assert_loads(run)
  interpreter = zoo_harness.assert_tflite_runs(run)
  from tfvae.export import signatures  # pylint: disable=g-import-not-at-top
  examples = signatures.example_inputs(run.model)
  for name, key in (("sample", "images"), ("decode", "mean")):
    outputs = interpreter.get_signature_runner(name)(
        **{k: v.numpy() for k, v in examples[name].items()})
    _on_grid(outputs[key])
  want = signatures.signature_functions(run.model)["sample"](
      **examples["sample"])["images"].numpy()
  got = interpreter.get_signature_runner("sample")(
      **{k: v.numpy() for k, v in examples["sample"].items()})["images"]
  # Equal but for a rare rounding tie flipped by float differences.
  assert np.mean(np.abs(got - want) > 1.5 / 255.0) == 0
  assert np.mean(got != want) < 0.01


def test_head_rejects_a_decoder_of_the_wrong_width():
  head = likelihoods.build_likelihood(
      ModelConfig(likelihood="discretized_logistic", logistic_mixtures=2),
      (4, 4, 3))
  with pytest.raises(ConfigError, match="reads 20 decoder outputs"):
    head(tf.zeros((1, 4, 4, 3)))
