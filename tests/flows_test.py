"""Tests of `tfvae.flows`: the IAF's log-determinant and shapes."""

import numpy as np
import pytest
import tensorflow as tf

from tfvae import flows
from tfvae.config import ModelConfig
from tfvae.errors import ConfigError


def _random_iaf(latent_dim=3, flow_layers=3):
  config = ModelConfig(latent_dim=latent_dim, posterior_flow="iaf",
                       flow_layers=flow_layers, flow_hidden_dims=(8, 8))
  flow = flows.build_flow(config)
  rng = np.random.default_rng(0)
  for variable in flow.weights:
    variable.assign(0.5 * rng.normal(size=variable.shape).astype(np.float32))
  return flow


def test_build_flow():
  assert flows.build_flow(ModelConfig()).is_identity
  flow = flows.build_flow(ModelConfig(posterior_flow="iaf", flow_layers=3))
  assert isinstance(flow, flows.InverseAutoregressiveFlow)
  assert not flow.is_identity
  assert len(flow.made_layers) == 3
  # Orderings alternate between layers.
  np.testing.assert_array_equal(flow.made_layers[1].ordering,
                                flow.made_layers[0].ordering[::-1])
  with pytest.raises(ConfigError, match="iaf"):
    flows.build_flow(ModelConfig(posterior_flow="nope"))


def test_log_det_equals_jacobian_determinant():
  flow = _random_iaf()
  z0 = tf.constant(np.random.default_rng(1).normal(size=(5, 3)), tf.float32)
  with tf.GradientTape() as tape:
    tape.watch(z0)
    z, log_det = flow(z0)
  jacobian = tape.batch_jacobian(z, z0).numpy().astype(np.float64)
  _, want = np.linalg.slogdet(jacobian)
  np.testing.assert_allclose(log_det.numpy(), want, atol=1e-4)
  assert np.all(log_det.numpy() < 0)  # sigma < 1 everywhere.


def test_leading_dimensions():
  flow = _random_iaf()
  z0 = np.random.default_rng(2).normal(size=(4, 5, 3)).astype(np.float32)
  z, log_det = flow(z0)
  assert tuple(z.shape) == (4, 5, 3)
  assert tuple(log_det.shape) == (4, 5)
  flat_z, flat_log_det = flow(z0.reshape(20, 3))
  np.testing.assert_allclose(z.numpy().reshape(20, 3), flat_z.numpy(),
                             atol=1e-6)
  np.testing.assert_allclose(log_det.numpy().reshape(20),
                             flat_log_det.numpy(), atol=1e-6)


def test_traces_with_unknown_leading_dimensions():
  flow = _random_iaf()
  function = tf.function(flow, input_signature=[
      tf.TensorSpec([None, None, 3], tf.float32)])
  z, log_det = function(tf.zeros([2, 3, 3]))
  assert tuple(z.shape) == (2, 3, 3)
  assert tuple(log_det.shape) == (2, 3)


def test_starts_close_to_identity():
  flow = flows.build_flow(ModelConfig(latent_dim=4, posterior_flow="iaf"))
  z0 = np.random.default_rng(3).normal(size=(8, 4)).astype(np.float32)
  z, _ = flow(z0)
  assert np.max(np.abs(z.numpy() - z0)) < 0.5 * np.max(np.abs(z0))
