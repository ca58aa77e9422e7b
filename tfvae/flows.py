"""Posterior flows: z = f(z0) with z0 ~ q0(z|x), chosen with `--posterior_flow`.

A flow is a Keras layer whose `call(z0)` returns `(z, log_det)`:
`[..., latent_dim]` and `[...]` with log q(z|x) = log q0(z0|x) - log_det,
and an `is_identity` attribute (analytic KL is used only without a flow).
A flow is a float32 layer whatever the global Keras dtype policy
(`build_flow`): its MADE networks follow the policy and return float32, the
flow's arithmetic and log-determinant stay float32.

#### References
Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling (2016). Improved
Variational Inference with Inverse Autoregressive Flow. NeurIPS.
"""

import keras
import tensorflow as tf

from tfvae.errors import ConfigError
from tfvae.networks import made



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


@register_flow("iaf")
class InverseAutoregressiveFlow(keras.layers.Layer):
  """Inverse autoregressive flow (Kingma et al. 2016), without context.

  Each of `config.flow_layers` steps runs a MADE on z to get (m, s) with
  (m_i, s_i) depending on z_{<i} only, and updates

      sigma = sigmoid(s),   z <- sigma * z + (1 - sigma) * m,

  the numerically stable LSTM-like form of Section 4 of the paper; its
  Jacobian is triangular with diagonal sigma, so log|det| = sum log sigma.
  The ordering is reversed between consecutive steps. The forget-gate bias
  starts at `_GATE_BIAS` so that sigma ~ 0.88 and every step starts close to
  the identity. Only Reshape, MatMul, Mul, Add, Sigmoid and Softplus are
  used, so `encode_code`/`reconstruct` export to SavedModel and TFLite.

  Args:
    config: a `ModelConfig` (`latent_dim`, `flow_layers`, `flow_hidden_dims`).
  """

  is_identity = False
  _GATE_BIAS = 2.0

  def __init__(self, config, **kwargs):
    super().__init__(**kwargs)
    self.latent_dim = config.latent_dim
    self.made_layers = [
        made.MADE(config.latent_dim, config.flow_hidden_dims,
                  ordering="reversed" if i % 2 else None,
                  log_scale_bias=self._GATE_BIAS, name=f"made_{i}")
        for i in range(config.flow_layers)]
    self.built = True

  def call(self, z0):
    """Applies the flow.

    Args:
      z0: `[..., latent_dim]` samples of the base posterior q0(z|x).

    Returns:
      `(z, log_det)`: `[..., latent_dim]` and `[...]` log|det dz/dz0|.
    """
    leading = tf.shape(z0)[:-1]
    z = tf.reshape(z0, [-1, self.latent_dim])
    log_det = tf.zeros(tf.shape(z)[:1], z.dtype)
    for layer in self.made_layers:
      shift, gate_logit = layer(z)
      sigma = tf.sigmoid(gate_logit)
      z = sigma * z + (1.0 - sigma) * shift
      # log sigmoid(s) = -softplus(-s), stable for large |s|.
      log_det += tf.reduce_sum(-tf.nn.softplus(-gate_logit), axis=-1)
    z = tf.reshape(z, tf.concat([leading, [self.latent_dim]], 0))
    return z, tf.reshape(log_det, leading)

  def compute_output_shape(self, input_shape):
    return tuple(input_shape), tuple(input_shape[:-1])


def build_flow(config):
  """The flow layer for `config.posterior_flow`.

  Raises:
    ConfigError: for an unknown flow.
  """
  if config.posterior_flow not in _FLOW_CLASSES:
    raise ConfigError(f"--posterior_flow={config.posterior_flow!r} is not one "
                      f"of: {', '.join(sorted(_FLOW_CLASSES))}.")
  if config.posterior_flow == "none":
    return IdentityFlow(name="posterior_flow", dtype="float32")
  return _FLOW_CLASSES[config.posterior_flow](config, name="posterior_flow",
                                              dtype="float32")
