"""Tests of `tfvae.likelihoods.TabularLikelihood` and of vector likelihoods.

Log-probabilities are compared with closed forms computed in numpy.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfvae import distributions
from tfvae import likelihoods
from tfvae.config import ModelConfig
from tfvae.data.columns import Column
from tfvae.errors import ConfigError

# Interleaved kinds, so that column order and parameter offsets matter.
COLUMNS = (
    Column("height", "continuous", mean=3.0, std=2.0),        # outputs 0
    Column("colour", "categorical", ("blue", "green", "red")),  # 1..3
    Column("smoker", "binary"),                               # 4
    Column("weight", "continuous", mean=-1.0, std=0.5),       # 5
    Column("size", "categorical", ("S", "L")),                # 6..7
    Column("member", "binary"),                               # 8
)
NUM_PARAMETERS = 9
BATCH = 5


def _softplus(x):
  return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


def _log_sigmoid(x):
  return -_softplus(-x)


def _log_softmax(x):
  x = x - x.max(axis=-1, keepdims=True)
  return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _normal_log_pdf(x, loc, scale):
  return (-0.5 * ((x - loc) / scale)**2 - np.log(scale)
          - 0.5 * math.log(2 * math.pi))


def _outputs(shape, seed=0):
  return np.random.default_rng(seed).normal(
      scale=1.5, size=shape + (NUM_PARAMETERS,)).astype(np.float32)


def _rows(shape, seed=1):
  """Valid raw rows `shape + [6]` for `COLUMNS`."""
  rng = np.random.default_rng(seed)
  x = np.zeros(shape + (6,), np.float32)
  x[..., 0] = rng.normal(3.0, 2.0, shape)
  x[..., 1] = rng.integers(0, 3, shape)
  x[..., 2] = rng.integers(0, 2, shape)
  x[..., 3] = rng.normal(-1.0, 0.5, shape)
  x[..., 4] = rng.integers(0, 2, shape)
  x[..., 5] = rng.integers(0, 2, shape)
  return x


def _head(raw_scale=(0.3, -1.2)):
  head = likelihoods.TabularLikelihood(COLUMNS)
  head.raw_scale.assign(np.asarray(raw_scale, np.float32))
  return head


def _expected_column_log_prob(outputs, x, raw_scale):
  """numpy `[..., 6]` log p of each column."""
  o = outputs.astype(np.float64)
  x = np.broadcast_to(x, o.shape[:-1] + (6,)).astype(np.float64)
  scale_unit = _softplus(np.asarray(raw_scale, np.float64)) + 1e-3
  result = np.zeros(x.shape)
  result[..., 0] = _normal_log_pdf(x[..., 0], 3.0 + 2.0 * o[..., 0],
                                   2.0 * scale_unit[0])
  result[..., 3] = _normal_log_pdf(x[..., 3], -1.0 + 0.5 * o[..., 5],
                                   0.5 * scale_unit[1])
  for column, logit in ((2, o[..., 4]), (5, o[..., 8])):
    result[..., column] = (x[..., column] * _log_sigmoid(logit)
                           + (1 - x[..., column]) * _log_sigmoid(-logit))
  for column, (start, end) in ((1, (1, 4)), (4, (6, 8))):
    log_p = _log_softmax(o[..., start:end])
    ids = x[..., column].astype(int)
    result[..., column] = np.take_along_axis(log_p, ids[..., None],
                                             axis=-1)[..., 0]
  return result


def test_shapes_and_layout():
  head = likelihoods.TabularLikelihood(COLUMNS)
  assert head.parameter_shape == (NUM_PARAMETERS,)
  assert head.feature_shape == (NUM_PARAMETERS,)
  assert head.data_shape == (6,)
  assert head.continuous == [0, 3]
  assert head.binary == [2, 5]
  assert head.categorical == [1, 4]
  assert head.offsets == [0, 1, 4, 5, 6, 8, 9]
  assert [v.shape for v in head.trainable_variables] == [(2,)]


def test_call_parameters():
  raw_scale = (0.3, -1.2)
  head = _head(raw_scale)
  outputs = _outputs((BATCH,))
  params = {k: v.numpy() for k, v in head(tf.constant(outputs)).items()}
  assert set(params) == {"loc", "scale", "logits", "logits_1", "probs_1",
                         "logits_4", "probs_4"}
  np.testing.assert_allclose(params["loc"][:, 0], 3.0 + 2.0 * outputs[:, 0],
                             rtol=1e-6)
  np.testing.assert_allclose(params["loc"][:, 1], -1.0 + 0.5 * outputs[:, 5],
                             rtol=1e-6)
  scale = np.array([2.0, 0.5]) * (_softplus(np.array(raw_scale)) + 1e-3)
  assert params["scale"].shape == (BATCH, 2)
  np.testing.assert_allclose(params["scale"], np.broadcast_to(scale,
                                                              (BATCH, 2)),
                             rtol=1e-6)
  np.testing.assert_array_equal(params["logits"], outputs[:, [4, 8]])
  np.testing.assert_array_equal(params["logits_1"], outputs[:, 1:4])
  np.testing.assert_array_equal(params["logits_4"], outputs[:, 6:8])
  np.testing.assert_allclose(params["probs_1"],
                             np.exp(_log_softmax(outputs[:, 1:4])), rtol=1e-5)
  np.testing.assert_allclose(params["probs_4"].sum(axis=-1), 1.0, rtol=1e-6)


def test_initial_scale_is_the_column_std():
  head = likelihoods.TabularLikelihood(COLUMNS)
  params = head(tf.zeros((2, NUM_PARAMETERS)))
  np.testing.assert_allclose(params["scale"].numpy(), [[2.0, 0.5]] * 2,
                             rtol=1e-5)
  # Zero outputs: the column means.
  np.testing.assert_allclose(params["loc"].numpy(), [[3.0, -1.0]] * 2)


def test_mean():
  head = _head()
  outputs = _outputs((BATCH,))
  mean = head.mean(head(tf.constant(outputs))).numpy()
  assert mean.shape == (BATCH, 6)
  np.testing.assert_allclose(mean[:, 0], 3.0 + 2.0 * outputs[:, 0],
                             rtol=1e-6)
  np.testing.assert_array_equal(mean[:, 1], np.argmax(outputs[:, 1:4], -1))
  np.testing.assert_allclose(mean[:, 2], 1 / (1 + np.exp(-outputs[:, 4])),
                             rtol=1e-6)
  np.testing.assert_allclose(mean[:, 3], -1.0 + 0.5 * outputs[:, 5],
                             rtol=1e-6)
  np.testing.assert_array_equal(mean[:, 4], np.argmax(outputs[:, 6:8], -1))
  np.testing.assert_allclose(mean[:, 5], 1 / (1 + np.exp(-outputs[:, 8])),
                             rtol=1e-6)


def test_features():
  head = likelihoods.TabularLikelihood(COLUMNS)
  x = np.array([[5.0, 2, 1, -1.5, 0, 0],
                [3.0, 0, 0, 0.0, 1, 1]], np.float32)
  features = head.features(tf.constant(x)).numpy()
  np.testing.assert_allclose(features, [
      [1.0, 0, 0, 1, 1, -1.0, 1, 0, 0],
      [0.0, 1, 0, 0, 0, 2.0, 0, 1, 1]], rtol=1e-6)


@pytest.mark.parametrize("outputs_shape,x_shape", [
    ((BATCH,), (BATCH,)),             # one decoder output per row
    ((4, BATCH), (BATCH,)),           # k samples, rows broadcast
    ((4, BATCH), (4, BATCH)),         # k samples of rows
])
def test_log_prob_closed_form(outputs_shape, x_shape):
  raw_scale = (0.3, -1.2)
  head = _head(raw_scale)
  outputs = _outputs(outputs_shape)
  x = _rows(x_shape)
  dist = head.distribution(head(tf.constant(outputs)))
  expected = _expected_column_log_prob(outputs, x, raw_scale)
  per_column = dist.column_log_prob(tf.constant(x)).numpy()
  assert per_column.shape == outputs_shape + (6,)
  np.testing.assert_allclose(per_column, expected, rtol=1e-4, atol=1e-5)
  log_prob = dist.log_prob(tf.constant(x)).numpy()
  assert log_prob.shape == outputs_shape
  np.testing.assert_allclose(log_prob, expected.sum(axis=-1), rtol=1e-4,
                             atol=1e-4)


def test_log_prob_is_a_density_of_raw_values():
  # A continuous column of std 100: the density shrinks by 1/100.
  wide = likelihoods.TabularLikelihood([Column("a", mean=0.0, std=100.0)])
  unit = likelihoods.TabularLikelihood([Column("a", mean=0.0, std=1.0)])
  outputs = tf.constant([[0.5]])
  got_wide = wide.distribution(wide(outputs)).log_prob(
      tf.constant([[70.0]])).numpy()
  got_unit = unit.distribution(unit(outputs)).log_prob(
      tf.constant([[0.7]])).numpy()
  np.testing.assert_allclose(got_wide, got_unit - math.log(100.0),
                             rtol=1e-5)
  np.testing.assert_allclose(
      got_unit, _normal_log_pdf(0.7, 0.5, 1.0), rtol=1e-5)


@pytest.mark.parametrize("kinds", [("continuous",), ("binary",),
                                   ("categorical",),
                                   ("categorical", "binary")])
def test_tables_with_some_kinds_only(kinds):
  columns = [Column(f"c{i}", k, ("a", "b", "c") if k == "categorical" else ())
             for i, k in enumerate(kinds)]
  head = likelihoods.TabularLikelihood(columns)
  outputs = np.random.default_rng(2).normal(
      size=(3,) + head.parameter_shape).astype(np.float32)
  params = head(tf.constant(outputs))
  assert ("loc" in params) == ("continuous" in kinds)
  assert ("logits" in params) == ("binary" in kinds)
  x = np.ones((3, len(kinds)), np.float32)
  log_prob = head.distribution(params).log_prob(tf.constant(x)).numpy()
  assert log_prob.shape == (3,)
  assert np.all(np.isfinite(log_prob)) and np.all(log_prob < 0)
  assert head.mean(params).shape == (3, len(kinds))


def test_column_log_prob_keeps_column_order():
  # Columns: 0 categorical, 1 binary, 2 continuous, 3 continuous.
  logits = np.array([[0.0, 1.0, -1.0]], np.float32)
  dist = distributions.TabularDistribution(
      4, continuous=([2, 3], tf.constant([[1.0, -2.0]]),
                     tf.constant([[0.5, 3.0]])),
      binary=([1], tf.constant([[0.7]])),
      categorical=[(0, tf.constant(logits))])
  x = np.array([[1.0, 0.0, 1.25, 1.0]], np.float32)
  got = dist.column_log_prob(tf.constant(x)).numpy()
  expected = [_log_softmax(logits.astype(np.float64))[0, 1],
              _log_sigmoid(-0.7),
              _normal_log_pdf(1.25, 1.0, 0.5),
              _normal_log_pdf(1.0, -2.0, 3.0)]
  np.testing.assert_allclose(got[0], expected, rtol=1e-5)


def test_gradients_reach_outputs_and_scale():
  head = _head()
  outputs = tf.Variable(_outputs((BATCH,)))
  x = tf.constant(_rows((BATCH,)))
  with tf.GradientTape() as tape:
    loss = -tf.reduce_sum(head.distribution(head(outputs)).log_prob(x))
  grad_outputs, grad_scale = tape.gradient(loss, [outputs,
                                                  head.raw_scale])
  assert np.all(np.isfinite(grad_outputs.numpy()))
  assert np.all(np.abs(grad_outputs.numpy()).sum(axis=0) > 0)
  assert np.all(np.abs(grad_scale.numpy()) > 0)


def test_build_likelihood_tabular():
  config = ModelConfig(likelihood="tabular")
  head = likelihoods.build_likelihood(config, (6,), COLUMNS)
  assert isinstance(head, likelihoods.TabularLikelihood)
  with pytest.raises(ConfigError, match="--likelihood=tabular"):
    likelihoods.build_likelihood(config, (6,))
  with pytest.raises(ConfigError, match=r"\[28, 28, 1\]"):
    likelihoods.build_likelihood(config, (28, 28, 1), COLUMNS)


# ---- Gaussian and Bernoulli heads on vectors --------------------------------


def test_gaussian_vectors_mean_is_raw_output():
  head = likelihoods.build_likelihood(
      ModelConfig(likelihood="gaussian", gaussian_scale=0.3), (4,))
  outputs = np.array([[-5.0, 0.2, 1.7, 30.0], [0.0, -0.1, 2.0, 0.5]],
                     np.float32)
  params = head(tf.constant(outputs))
  np.testing.assert_array_equal(params["loc"].numpy(), outputs)
  np.testing.assert_array_equal(head.mean(params).numpy(), outputs)
  dist = head.distribution(params)
  assert dist.event_shape == [4]
  assert dist.batch_shape == [2]
  x = np.array([[-4.0, 0.0, 2.0, 29.0], [1.0, 0.0, 2.0, 0.0]], np.float32)
  expected = _normal_log_pdf(x.astype(np.float64), outputs, 0.3).sum(-1)
  np.testing.assert_allclose(dist.log_prob(tf.constant(x)).numpy(),
                             expected, rtol=1e-5)


def test_gaussian_vectors_learned_scale():
  head = likelihoods.GaussianLikelihood((3,), 0.5, learn_scale=True)
  assert head.raw_scale.shape == (3,)
  params = head(tf.zeros((2, 3)))
  np.testing.assert_allclose(params["scale"].numpy(), 0.5, rtol=1e-5)


def test_bernoulli_vectors():
  head = likelihoods.BernoulliLikelihood((3,))
  logits = np.array([[0.5, -1.0, 2.0]], np.float32)
  dist = head.distribution(head(tf.constant(logits)))
  assert dist.event_shape == [3]
  x = np.array([[1.0, 0.0, 0.0]], np.float32)
  expected = (_log_sigmoid(0.5) + _log_sigmoid(1.0) + _log_sigmoid(-2.0))
  np.testing.assert_allclose(dist.log_prob(tf.constant(x)).numpy(),
                             [expected], rtol=1e-5)
  np.testing.assert_allclose(head.mean(head(tf.constant(logits))).numpy(),
                             1 / (1 + np.exp(-logits)), rtol=1e-6)
