"""Discriminators on latent codes (`factor_vae`'s and `aae`'s critics).

A discriminator returns one logit per example: the log-odds that its input
came from the "real" side (q(z) samples for `factor_vae`'s total-correlation
critic; p(z) samples for `aae`'s). Trained through
`tfvae.auxiliary.AuxiliaryObjective`.
"""

import keras
from keras import ops

from tfvae.networks import blocks

# Kim & Mnih (2018) use 6 x 1000; three layers train as well on tfvae's
# small codes and cost half as much.
DEFAULT_CODE_HIDDEN_DIMS = (1000, 1000, 1000)


class CodeDiscriminator(keras.Model):
  """An MLP from codes `[batch, code_dim]` to logits `[batch]`.

  Args:
    hidden_dims: hidden widths (leaky ReLU, `blocks.activation_layer`'s
      slope).
  """

  def __init__(self, hidden_dims=DEFAULT_CODE_HIDDEN_DIMS, **kwargs):
    super().__init__(**kwargs)
    self.hidden = blocks.dense_stack(hidden_dims, "leaky_relu", False, 0.0,
                                     name="hidden")
    self.head = keras.layers.Dense(1, name="logit")

  def call(self, codes, training=False):
    """The logits.

    Args:
      codes: `[batch, code_dim]` float32.
      training: unused (no batch norm or dropout); Keras' convention.

    Returns:
      `[batch]` float32 logits, whatever the layers' compute dtype.
    """
    return ops.cast(self.head(self.hidden(codes, training=training)),
                    "float32")[:, 0]


def build_code_discriminator(config, name="discriminator"):
  """The `CodeDiscriminator` of `config.discriminator_hidden_dims` (default
  `DEFAULT_CODE_HIDDEN_DIMS`)."""
  return CodeDiscriminator(
      tuple(config.discriminator_hidden_dims) or DEFAULT_CODE_HIDDEN_DIMS,
      name=name)
