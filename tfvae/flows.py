"""Posterior flows: z = f(z0) with z0 ~ q0(z|x), chosen with `--posterior_flow`.

A flow is a Keras layer whose `call(z0)` returns `(z, log_det)`:
`[..., latent_dim]` and `[...]` with log q(z|x) = log q0(z0|x) - log_det,
and an `is_identity` attribute (analytic KL is used only without a flow).
"""

import keras
import tensorflow as tf

from tfvae.errors import ConfigError



class IdentityFlow(keras.layers.Layer):
  """No flow: z = z0, log_det = 0."""

  is_identity = True

  def call(self, z0):
    return z0, tf.zeros(tf.shape(z0)[:-1], z0.dtype)


_FLOW_CLASSES = {"none": IdentityFlow}


def register_flow(name):
  """Class decorator adding a flow for `--posterior_flow=name`."""
  def decorator(cls):
    _FLOW_CLASSES[name] = cls
    return cls
  return decorator


def build_flow(config):
  """The flow layer for `config.posterior_flow`.

  Raises:
    ConfigError: for an unknown flow.
  """
  if config.posterior_flow not in _FLOW_CLASSES:
    raise ConfigError(f"--posterior_flow={config.posterior_flow!r} is not one "
                      f"of: {', '.join(sorted(_FLOW_CLASSES))}.")
  if config.posterior_flow == "none":
    return IdentityFlow(name="posterior_flow")
  return _FLOW_CLASSES[config.posterior_flow](config, name="posterior_flow")
