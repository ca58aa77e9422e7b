"""Fully connected encoder and decoder (the classic 784-400-20 VAE shape)."""

import math

import keras
from keras import ops

from tfvae.networks import blocks

DEFAULT_HIDDEN_DIMS = (512, 256)
# Keeps posterior scales away from 0 so log q(z|x) stays finite.
MIN_SCALE = 1e-5


class MLPEncoder(keras.Model):
  """Flattened image -> hidden layers -> diagonal Normal parameters.

  Args:
    latent_dim: size of z.
    hidden_dims: hidden widths, input side first.
    activation: `relu` or `leaky_relu`.
    batch_norm: batch-normalize hidden layers.
    dropout: dropout rate after hidden layers.
  """

  def __init__(self, latent_dim, hidden_dims=DEFAULT_HIDDEN_DIMS,
               activation="relu", batch_norm=False, dropout=0.0, **kwargs):
    super().__init__(**kwargs)
    self.latent_dim = latent_dim
    self.flatten = keras.layers.Flatten()
    self.hidden = blocks.dense_stack(hidden_dims, activation, batch_norm,
                                     dropout, name="hidden")
    self.head = keras.layers.Dense(2 * latent_dim)

  def call(self, images, training=False):
    """Maps images to posterior parameters.

    Args:
      images: `[batch, H, W, C]` float32.
      training: batch norm / dropout mode.

    Returns:
      `(loc, scale)`, each `[batch, latent_dim]` float32 (whatever the
      layers' compute dtype); scale is positive.
    """
    h = self.hidden(self.flatten(images), training=training)
    loc, raw_scale = ops.split(ops.cast(self.head(h), "float32"), 2, axis=-1)
    return loc, ops.softplus(raw_scale) + MIN_SCALE


class MLPDecoder(keras.Model):
  """z -> hidden layers -> one unconstrained value per pixel.

  Args:
    data_shape: `(H, W, C)` of the images to produce.
    hidden_dims: hidden widths, listed input side first as for the encoder;
      the decoder applies them in reverse (e.g. 512,256 -> 256, 512).
    activation: `relu` or `leaky_relu`.
    batch_norm: batch-normalize hidden layers.
    dropout: dropout rate after hidden layers.
  """

  def __init__(self, data_shape, hidden_dims=DEFAULT_HIDDEN_DIMS,
               activation="relu", batch_norm=False, dropout=0.0, **kwargs):
    super().__init__(**kwargs)
    self.data_shape = tuple(data_shape)
    self.hidden = blocks.dense_stack(tuple(reversed(hidden_dims)), activation,
                                     batch_norm, dropout, name="hidden")
    self.head = keras.layers.Dense(math.prod(self.data_shape))
    self.reshape = keras.layers.Reshape(self.data_shape)

  def call(self, z, training=False):
    """Maps codes to per-pixel likelihood parameters.

    Args:
      z: `[batch, latent_dim]`.
      training: batch norm / dropout mode.

    Returns:
      `[batch, H, W, C]` float32 unconstrained outputs (logits or
      pre-sigmoid means).
    """
    h = self.hidden(z, training=training)
    return ops.cast(self.reshape(self.head(h)), "float32")
