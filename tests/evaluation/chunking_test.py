"""Tests of `tfvae.evaluation.chunking` and the Evaluator's chunked sampler."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae import models
from tfvae.config import ModelConfig
from tfvae.evaluation import chunking
from tfvae.evaluation import likelihood
from tfvae.evaluation.likelihood import Evaluator

LATENT_DIM = 4


def _build(shape, **overrides):
  keras.utils.set_random_seed(0)
  model = models.build(ModelConfig(**dict(
      dict(latent_dim=LATENT_DIM, hidden_dims=(8, 16)), **overrides)), shape)
  model.build_from_shape()
  return model


def _images(count, shape, seed=0):
  rng = np.random.default_rng(seed)
  return tf.constant((rng.random((count,) + shape) < 0.3).astype(np.float32))


def test_graph_float_bytes_counts_float_outputs():
  # Exp and AddV2 each output 3 x 5 float32 (60 bytes); the int32 Cast is
  # not a float, Placeholder/Const/Reshape allocate nothing per example.
  function = tf.function(lambda x: (
      tf.reshape(tf.exp(x) + 1.0, [15]), tf.cast(x, tf.int32)))
  graph = function.get_concrete_function(tf.TensorSpec([3, 5])).graph
  assert chunking.graph_float_bytes(graph) == 2 * 60


def test_graph_float_bytes_counts_called_functions_and_loops():
  inner = tf.function(lambda x: tf.exp(x))  # 60 bytes.

  def outer(x):
    y = inner(x)  # The call's own output: 60 bytes.
    # The loop's outputs (60 bytes of floats) and its body's AddV2 (60).
    return tf.while_loop(lambda i, a: i < 3,
                         lambda i, a: (i + 1, a + 1.0), [0, y])[1]

  graph = tf.function(outer).get_concrete_function(
      tf.TensorSpec([3, 5])).graph
  assert chunking.graph_float_bytes(graph) == 4 * 60


@pytest.mark.parametrize("num_samples, batch, max_decoded, expected", [
    (1000, 500, 10**9, 1000),   # Everything fits: one chunk.
    (1000, 500, 26_000, 52),    # 52 x 500 <= 26,000.
    (1000, 500, 100, 1),        # Never fewer than one sample.
    (7, 0, 100, 7),
])
def test_samples_per_chunk(num_samples, batch, max_decoded, expected):
  assert chunking.samples_per_chunk(num_samples, batch,
                                    max_decoded) == expected


def test_max_decoded_examples_within_budget():
  model = _build((8, 8, 1), encoder="conv", decoder="conv")
  per_example = chunking.decoded_example_bytes(model)
  # At least the decoder's last feature map (8 x 8 x 8 float32) and the
  # decoded means.
  assert per_example >= 4 * 8 * 8 * 8 + 4 * 64
  assert chunking.max_decoded_examples(model, 10 * per_example) == 10
  assert chunking.max_decoded_examples(model, 1) == 1


def test_conv_chunks_bounded_by_activations_not_pixels():
  # The crash: 359 8x8 images at k=1000 got 730 samples per chunk (262,070
  # decoded images in one call) from the pixel budget alone.
  model = _build((8, 8, 1), encoder="conv", decoder="conv", hidden_dims=())
  evaluator = Evaluator(model)
  chunk = evaluator.samples_per_chunk(1000, 359, 64)
  assert chunk < likelihood._PIXEL_BUDGET // (64 * 359)  # pylint: disable=protected-access
  assert chunk * 359 * chunking.decoded_example_bytes(model) <= (
      chunking.ACTIVATION_BUDGET_BYTES)


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1)])
def test_conv_models_evaluate_with_default_k(shape):
  model = _build(shape, encoder="conv", decoder="conv")
  images = _images(3, shape)
  dataset = tf.data.Dataset.from_tensor_slices({"image": images}).batch(3)
  results = Evaluator(model, seed=0).evaluate(dataset, iw_samples=1000)
  assert results["num_examples"] == 3
  assert math.isfinite(results["nll"])
  assert results["nll"] <= results["neg_elbo"] + 1.0


def test_chunked_equals_one_call_over_the_same_noise(monkeypatch):
  # A budget of 6 decoded examples: chunks of 2 samples for 3 images.
  model = _build((8, 8, 1), hidden_dims=(16,))
  images = _images(3, (8, 8, 1), seed=1)
  per_example = chunking.decoded_example_bytes(model)
  monkeypatch.setattr(chunking, "ACTIVATION_BUDGET_BYTES", 6 * per_example)
  evaluator = Evaluator(model)
  assert evaluator.samples_per_chunk(7, 3, 64) == 2
  chunked = evaluator.log_likelihood(images, 7, (4, 9))
  # The chunks' noise (seeded by their first sample), decoded in one call.
  noise = tf.concat([
      tf.random.stateless_normal([min(2, 7 - start), 3, LATENT_DIM],
                                 seed=tf.constant([4, 9 + start], tf.int64))
      for start in range(0, 7, 2)], 0)
  log_w = model.log_weights(images, noise).numpy().astype(np.float64)
  expected = np.log(np.mean(np.exp(log_w - log_w.max(0)), axis=0)) + (
      log_w.max(0))
  np.testing.assert_allclose(chunked, expected, rtol=1e-6)
  # Unchanged by the budget when one chunk holds every sample.
  monkeypatch.setattr(chunking, "ACTIVATION_BUDGET_BYTES", 2**30)
  single = Evaluator(model).log_likelihood(images, 7, (4, 9))
  one_noise = tf.random.stateless_normal([7, 3, LATENT_DIM],
                                         seed=tf.constant([4, 9], tf.int64))
  log_w = model.log_weights(images, one_noise).numpy().astype(np.float64)
  np.testing.assert_allclose(
      single, np.logaddexp.reduce(log_w, axis=0) - math.log(7), rtol=1e-6)
