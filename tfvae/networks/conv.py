"""Convolutional encoder/decoder in the shape of PyTorch-VAE's VanillaVAE.

Stride-2 3x3 convolutions with batch norm and LeakyReLU halve the image per
block; the decoder mirrors them with stride-2 transposed convolutions, then a
3x3 convolution to the image's channels. Sizes that do not halve evenly
(28 -> 14 -> 7 -> 4) are handled by `same` padding and a centre crop.

Batch norm is `BatchNormalization`, Keras's layer with its training step on
TF's fused kernel: the same variables, names, checkpoints and inference
path, and ~20% more training images/s for the 64x64x3 VAE on a CPU
(`benchmarks/conv_roofline.py`).
"""

import math

import keras
from keras import ops
import tensorflow as tf

from tfvae.networks import blocks
from tfvae.networks.mlp import MIN_SCALE

# The smallest feature map the default channel list goes down to.
_MIN_FEATURE_SIZE = 4
_BASE_CHANNELS = 32
_MAX_CHANNELS = 512


def default_channels(image_size):
  """Channels per block for a square image: halve while the map stays >= 4.

  Args:
    image_size: image height (= width).

  Returns:
    e.g. (32, 64) for 28, (32, 64, 128) for 32, (32, 64, 128, 256) for 64.
  """
  channels = []
  size = image_size
  while size / 2 >= _MIN_FEATURE_SIZE or not channels:
    channels.append(min(_MAX_CHANNELS, _BASE_CHANNELS * 2**len(channels)))
    size = math.ceil(size / 2)
  return tuple(channels)


# Named like Keras's class on purpose: Keras names a layer after its class
# (`batch_normalization_3`), so variable paths stay those of
# `keras.layers.BatchNormalization`.
class BatchNormalization(keras.layers.BatchNormalization):
  """`keras.layers.BatchNormalization` whose training step is one fused op.

  Keras 3 normalizes with `tf.nn.moments` + `tf.nn.batch_normalization`,
  about 15 elementwise and reduction passes over the activations forward
  and backward; on 4-D channels-last inputs in training mode this layer
  calls `FusedBatchNormV3` (one op forward, one backward) instead: ~3x
  faster batch norm, which is ~25% of the conv VAE's step on a CPU. Same
  variables and names, the same moving-average updates (from the biased
  batch variance, as Keras), the same output up to float32 rounding;
  inference, masks, renorm and synchronized statistics are Keras's own code.
  """

  def call(self, inputs, training=None, mask=None):
    if not (training and self.trainable and mask is None and not self.renorm
            and not self.synchronized and self.center and self.scale
            and len(inputs.shape) == 4 and self.axis in (-1, 3)
            and keras.backend.backend() == "tensorflow"):
      return super().call(inputs, training=training, mask=mask)
    # Statistics in float32 under any policy, as Keras does.
    x = tf.cast(inputs, tf.float32)
    y, mean, unbiased_variance = tf.compat.v1.nn.fused_batch_norm(
        x, tf.cast(self.gamma, tf.float32), tf.cast(self.beta, tf.float32),
        epsilon=self.epsilon, is_training=True)
    # The kernel returns the Bessel-corrected variance; Keras's moving
    # average takes the biased one.
    count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float32)
    variance = unbiased_variance * ((count - 1.0) / tf.maximum(count, 1.0))
    self.moving_mean.assign(self.moving_mean * self.momentum
                            + mean * (1.0 - self.momentum))
    self.moving_variance.assign(self.moving_variance * self.momentum
                                + variance * (1.0 - self.momentum))
    return tf.cast(y, self.compute_dtype)


def conv_block(layer, batch_norm, activation):
  """`layer`, then [BatchNorm], then the activation, as a list of layers."""
  layers = [layer]
  if batch_norm:
    layers.append(BatchNormalization())
  layers.append(blocks.activation_layer(activation))
  return layers


def downsampling_stack(channels, activation, batch_norm, name="blocks"):
  """Stride-2 3x3 conv blocks, one per entry of `channels`, as a Sequential."""
  layers = []
  for width in channels:
    layers += conv_block(
        keras.layers.Conv2D(width, 3, strides=2, padding="same",
                            use_bias=not batch_norm),
        batch_norm, activation)
  return keras.Sequential(layers, name=name)


def upsampling_stack(channels, activation, batch_norm, first_layers=(),
                     name="blocks"):
  """`first_layers`, then stride-2 transposed conv blocks mirroring `channels`.

  Args:
    channels: the encoder's channel list; applied in reverse.
    activation: `relu` or `leaky_relu`.
    batch_norm: batch-normalize each block.
    first_layers: layers applied before the first transposed convolution.
    name: the Sequential's name.

  Returns:
    A `keras.Sequential` doubling height and width per entry of `channels`.
  """
  layers = list(first_layers)
  for width in reversed(channels):
    layers += conv_block(
        keras.layers.Conv2DTranspose(width, 3, strides=2, padding="same",
                                     use_bias=not batch_norm),
        batch_norm, activation)
  return keras.Sequential(layers, name=name)


def centre_crop(grown_height, grown_width, height, width):
  """A Cropping2D from `[grown_height, grown_width]` to `[height, width]`."""
  return keras.layers.Cropping2D((
      ((grown_height - height) // 2, (grown_height - height + 1) // 2),
      ((grown_width - width) // 2, (grown_width - width + 1) // 2)))


class ConvEncoder(keras.Model):
  """Image -> stride-2 conv blocks -> diagonal Normal parameters.

  Args:
    latent_dim: size of z.
    channels: output channels of each stride-2 block.
    activation: `relu` or `leaky_relu`.
    batch_norm: batch-normalize each block.
  """

  def __init__(self, latent_dim, channels, activation="leaky_relu",
               batch_norm=True, **kwargs):
    super().__init__(**kwargs)
    self.latent_dim = latent_dim
    self.blocks = downsampling_stack(channels, activation, batch_norm)
    self.flatten = keras.layers.Flatten()
    self.head = keras.layers.Dense(2 * latent_dim)

  def call(self, images, training=False):
    """Maps images to posterior parameters.

    Args:
      images: `[batch, H, W, C]` float32.
      training: batch norm mode.

    Returns:
      `(loc, scale)`, each `[batch, latent_dim]` float32 (whatever the
      layers' compute dtype); scale is positive.
    """
    h = self.blocks(images, training=training)
    loc, raw_scale = ops.split(ops.cast(self.head(self.flatten(h)), "float32"),
                               2, axis=-1)
    return loc, ops.softplus(raw_scale) + MIN_SCALE


class ConvDecoder(keras.Model):
  """z -> dense -> stride-2 transposed conv blocks -> per-pixel outputs.

  Args:
    image_shape: `(H, W, C)` of the images to produce.
    channels: the encoder's channel list (the decoder mirrors it).
    activation: `relu` or `leaky_relu`.
    batch_norm: batch-normalize each block.
  """

  def __init__(self, image_shape, channels, activation="leaky_relu",
               batch_norm=True, **kwargs):
    super().__init__(**kwargs)
    self.image_shape = tuple(image_shape)
    height, width, image_channels = self.image_shape
    self.start_height, self.start_width = height, width
    for _ in channels:
      self.start_height = math.ceil(self.start_height / 2)
      self.start_width = math.ceil(self.start_width / 2)
    self.project = keras.layers.Dense(
        self.start_height * self.start_width * channels[-1])
    self.reshape = keras.layers.Reshape(
        (self.start_height, self.start_width, channels[-1]))
    self.blocks = upsampling_stack(channels, activation, batch_norm)
    self.to_pixels = keras.layers.Conv2D(image_channels, 3, padding="same")
    self.crop = centre_crop(self.start_height * 2**len(channels),
                            self.start_width * 2**len(channels), height,
                            width)

  def call(self, z, training=False):
    """Maps codes to per-pixel likelihood parameters.

    Args:
      z: `[batch, latent_dim]`.
      training: batch norm mode.

    Returns:
      `[batch, H, W, C]` float32 unconstrained outputs (logits or
      pre-sigmoid means).
    """
    h = self.reshape(self.project(z))
    h = self.blocks(h, training=training)
    return ops.cast(self.crop(self.to_pixels(h)), "float32")
