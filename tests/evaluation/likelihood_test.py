"""Tests of `tfvae.evaluation.likelihood`: IW estimates and active units."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae import models
from tfvae.config import ModelConfig
from tfvae.evaluation import likelihood
from tfvae.evaluation.likelihood import Evaluator

IMAGE_SHAPE = (8, 8, 1)
NUM_IMAGES = 128


@pytest.fixture(scope="module")
def model():
  keras.utils.set_random_seed(0)
  vae = models.build(ModelConfig(hidden_dims=(32,), latent_dim=4),
                     IMAGE_SHAPE)
  vae.build_from_shape()
  return vae


@pytest.fixture(scope="module")
def images():
  rng = np.random.default_rng(0)
  return tf.constant((rng.random((NUM_IMAGES,) + IMAGE_SHAPE) < 0.3).astype(
      np.float32))


@pytest.fixture(scope="module")
def evaluator(model):
  return Evaluator(model, seed=0)


@pytest.fixture(scope="module")
def mean_elbo(model, images):
  """The batch-average ELBO, averaged over 20 noise draws."""
  draws = []
  for i in range(20):
    noise = tf.random.stateless_normal([NUM_IMAGES, 4], seed=[99, i])
    terms = model.compute_loss(images, noise, tf.constant(0, tf.int64),
                               tf.constant(1.0), training=False)
    draws.append(terms["elbo"].numpy().mean())
  return float(np.mean(draws))


@pytest.fixture(scope="module")
def estimates(evaluator, images):
  return {k: evaluator.log_likelihood(images, k, (1, 0))
          for k in (1, 10, 100)}


def test_log_likelihood_shape_and_determinism(evaluator, images, estimates):
  assert estimates[10].shape == (NUM_IMAGES,)
  assert estimates[10].dtype == np.float64
  np.testing.assert_array_equal(
      evaluator.log_likelihood(images, 10, (1, 0)), estimates[10])
  assert not np.array_equal(evaluator.log_likelihood(images, 10, (2, 0)),
                            estimates[10])


def test_log_likelihood_at_least_elbo(estimates, mean_elbo):
  # k = 1 is an unbiased estimate of the ELBO; larger k bounds it above.
  assert estimates[1].mean() == pytest.approx(mean_elbo, abs=0.3)
  assert estimates[100].mean() > mean_elbo


def test_log_likelihood_increases_with_k(estimates):
  assert (estimates[1].mean() < estimates[10].mean()
          < estimates[100].mean())


def test_log_likelihood_matches_log_weights(evaluator, model, images,
                                           monkeypatch):
  # Chunks of 4 samples, seeded by their offset, combined by log-sum-exp.
  subset = images[:3]
  log_w = np.concatenate([
      model.log_weights(subset, tf.random.stateless_normal(
          [4, 3, 4], seed=tf.constant([5, 6 + start], tf.int64))).numpy()
      for start in (0, 4, 8)]).astype(np.float64)
  expected = np.logaddexp.reduce(log_w, axis=0) - math.log(12)
  monkeypatch.setattr(likelihood, "_PIXEL_BUDGET", 4 * 64 * 3)
  chunked = evaluator.log_likelihood(subset, 12, (5, 6))
  np.testing.assert_allclose(chunked, expected, rtol=1e-5)


def test_evaluate_averages_over_batches(model, images):
  evaluator = Evaluator(model, seed=3)
  subset = images[:12]
  dataset = tf.data.Dataset.from_tensor_slices({"image": subset}).batch(5)
  results = evaluator.evaluate(dataset, iw_samples=2)
  assert results["num_examples"] == 12
  assert len(results["kl_per_dim"]) == 4
  assert sum(results["kl_per_dim"]) == pytest.approx(results["rate"],
                                                     rel=1e-4)
  assert results["neg_elbo"] == pytest.approx(
      results["distortion"] + results["rate"], rel=1e-5)
  assert results["bits_per_dim"] == pytest.approx(
      results["nll"] / (64 * math.log(2)), rel=1e-6)
  assert 0 <= results["active_units"] <= 4
  no_iw = evaluator.evaluate(dataset, iw_samples=0)
  assert no_iw["nll"] == pytest.approx(no_iw["neg_elbo"])


def test_batches_above_the_memory_cap_are_split_with_the_same_terms(
    model, images):
  dataset = tf.data.Dataset.from_tensor_slices({"image": images[:40]}).batch(
      40)
  whole = Evaluator(model, seed=3)
  assert whole.max_rows() >= 40  # This tiny model fits the budget.
  split = Evaluator(model, seed=3)
  split._max_decoded = 2 * 7  # pylint: disable=protected-access; 7 rows.
  assert split.max_rows() == 7
  got = split.evaluate(dataset, iw_samples=50)
  want = whole.evaluate(dataset, iw_samples=50)
  # One noise draw per batch, sliced: the same single-sample terms.
  for name in ("neg_elbo", "distortion", "rate", "reconstruction_mse"):
    assert got[name] == pytest.approx(want[name], rel=1e-5), name
  np.testing.assert_allclose(got["codes"], want["codes"], rtol=1e-5,
                             atol=1e-6)
  # The parts draw their importance samples from their own seeds.
  assert got["nll"] != want["nll"]
  assert got["nll"] == pytest.approx(want["nll"], abs=0.5)


def test_active_units_counts_varying_dimensions():
  rng = np.random.default_rng(0)
  means = np.stack([
      rng.normal(scale=1.0, size=1000),     # Var 1: active.
      rng.normal(scale=0.2, size=1000),     # Var 0.04: active.
      rng.normal(scale=0.05, size=1000),    # Var 0.0025: inactive.
      np.full(1000, 3.0),                   # Constant: inactive.
  ], axis=1)
  assert likelihood.active_units(means) == 2
  assert likelihood.active_units(means, threshold=0.001) == 3
  assert likelihood.active_units(means, threshold=2.0) == 0


def test_active_units_near_threshold():
  # Population variances 0.0081 (inactive) and 0.0121 (active).
  means = np.array([[-0.09, -0.11], [0.09, 0.11]])
  assert likelihood.active_units(means) == 1


def test_active_units_needs_two_examples():
  assert likelihood.active_units(np.array([[5.0, -5.0]])) == 0
