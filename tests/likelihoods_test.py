"""Tests of `tfvae.likelihoods`: the Bernoulli and Gaussian heads."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfvae import likelihoods
from tfvae.config import ModelConfig

IMAGE_SHAPE = (4, 3, 2)


@pytest.fixture
def outputs():
  return tf.constant(np.random.default_rng(0).normal(
      scale=2.0, size=(5,) + IMAGE_SHAPE).astype(np.float32))


def test_build_likelihood_picks_head():
  bernoulli = likelihoods.build_likelihood(ModelConfig(), IMAGE_SHAPE)
  gaussian = likelihoods.build_likelihood(
      ModelConfig(likelihood="gaussian"), IMAGE_SHAPE)
  assert isinstance(bernoulli, likelihoods.BernoulliLikelihood)
  assert isinstance(gaussian, likelihoods.GaussianLikelihood)


def test_bernoulli_head_params_and_mean(outputs):
  head = likelihoods.BernoulliLikelihood()
  params = head(outputs)
  assert set(params) == {"logits"}
  np.testing.assert_array_equal(params["logits"].numpy(), outputs.numpy())
  mean = head.mean(params).numpy()
  np.testing.assert_allclose(mean, 1.0 / (1.0 + np.exp(-outputs.numpy())),
                             rtol=1e-6)
  assert head.distribution(params).event_shape == list(IMAGE_SHAPE)


def test_gaussian_head_fixed_scale(outputs):
  head = likelihoods.build_likelihood(
      ModelConfig(likelihood="gaussian", gaussian_scale=0.3), IMAGE_SHAPE)
  params = head(outputs)
  assert set(params) == {"loc", "scale"}
  assert params["scale"].shape == outputs.shape
  np.testing.assert_allclose(params["scale"].numpy(), 0.3, rtol=1e-6)
  np.testing.assert_allclose(params["loc"].numpy(),
                             1.0 / (1.0 + np.exp(-outputs.numpy())),
                             rtol=1e-6)
  np.testing.assert_array_equal(head.mean(params).numpy(),
                                params["loc"].numpy())
  assert not head.trainable_variables


def test_gaussian_head_distribution_log_prob(outputs):
  head = likelihoods.GaussianLikelihood(IMAGE_SHAPE, 0.2)
  params = head(outputs)
  x = np.random.default_rng(1).random((5,) + IMAGE_SHAPE).astype(np.float32)
  loc = params["loc"].numpy().astype(np.float64)
  expected = (-0.5 * ((x - loc) / 0.2)**2 - math.log(0.2)
              - 0.5 * math.log(2 * math.pi)).sum(axis=(1, 2, 3))
  np.testing.assert_allclose(head.distribution(params).log_prob(x).numpy(),
                             expected, rtol=1e-5)


def test_gaussian_head_learned_scale_starts_at_config_and_trains(outputs):
  head = likelihoods.build_likelihood(
      ModelConfig(likelihood="gaussian", gaussian_scale=0.25,
                  learn_gaussian_scale=True), IMAGE_SHAPE)
  params = head(outputs)
  np.testing.assert_allclose(params["scale"].numpy(), 0.25, rtol=1e-5)
  assert len(head.trainable_variables) == 1
  variable = head.trainable_variables[0]
  assert tuple(variable.shape) == IMAGE_SHAPE
  x = np.random.default_rng(2).random((5,) + IMAGE_SHAPE).astype(np.float32)
  with tf.GradientTape() as tape:
    loss = -tf.reduce_mean(head.distribution(head(outputs)).log_prob(x))
  grad = tape.gradient(loss, variable)
  assert grad is not None
  grad = np.asarray(grad)
  assert grad.shape == IMAGE_SHAPE
  assert np.all(np.isfinite(grad)) and np.any(grad != 0)
  # One SGD step on the scale changes the pixel scale.
  variable.assign_sub(0.1 * grad)
  assert not np.allclose(head.pixel_scale().numpy(), 0.25)


@pytest.mark.parametrize("binary", [True, False])
def test_bernoulli_log_prob_is_tfp_and_closed_form(outputs, binary):
  head = likelihoods.BernoulliLikelihood(IMAGE_SHAPE)
  params = head(outputs * 10.0)  # Logits up to about +-60: saturated cases.
  rng = np.random.default_rng(3)
  x = rng.random((5,) + IMAGE_SHAPE).astype(np.float32)
  x = (x < 0.5).astype(np.float32) if binary else x
  logits = params["logits"].numpy().astype(np.float64)
  expected = (x * logits - np.logaddexp(0.0, logits)).sum(axis=(1, 2, 3))
  got = head.log_prob(params, x).numpy()
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(
      got, head.distribution(params).log_prob(x).numpy(), rtol=1e-5,
      atol=1e-4)
  # [k, batch] parameters against [batch] images broadcast as TFP's do.
  stacked = {"logits": tf.stack([params["logits"]] * 2)}
  np.testing.assert_allclose(head.log_prob(stacked, x).numpy(),
                             np.stack([expected] * 2), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("learn_scale", [False, True])
def test_gaussian_log_prob_is_tfp(outputs, learn_scale):
  head = likelihoods.GaussianLikelihood(IMAGE_SHAPE, 0.2,
                                        learn_scale=learn_scale)
  params = head(outputs)
  if learn_scale:  # A scale that differs from pixel to pixel.
    head.raw_scale.assign(np.random.default_rng(4).normal(
        size=IMAGE_SHAPE).astype(np.float32))
    params = head(outputs)
  x = np.random.default_rng(1).random((5,) + IMAGE_SHAPE).astype(np.float32)
  np.testing.assert_allclose(
      head.log_prob(params, x).numpy(),
      head.distribution(params).log_prob(x).numpy(), rtol=1e-5)
  stacked = {name: tf.stack([value] * 3) for name, value in params.items()}
  assert head.log_prob(stacked, x).shape == (3, 5)


def test_gaussian_log_prob_of_vectors_with_per_example_scale():
  from tfvae import distributions  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(5)
  loc, x = rng.normal(size=(2, 4, 6)).astype(np.float32)
  scale = rng.uniform(0.5, 2.0, (4, 6)).astype(np.float32)
  expected = (-0.5 * ((x - loc) / scale)**2 - np.log(scale)
              - 0.5 * math.log(2 * math.pi)).sum(-1)
  np.testing.assert_allclose(distributions.gaussian_log_prob(
      loc, scale, x, event_ndims=1).numpy(), expected, rtol=1e-5)
