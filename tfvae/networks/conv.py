"""Convolutional encoder/decoder in the shape of PyTorch-VAE's VanillaVAE.

Stride-2 3x3 convolutions with batch norm and LeakyReLU halve the image per
block; the decoder mirrors them with stride-2 transposed convolutions, then a
3x3 convolution to the image's channels. Sizes that do not halve evenly
(28 -> 14 -> 7 -> 4) are handled by `same` padding and a centre crop.
"""

import math

import keras
from keras import ops

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


def conv_block(layer, batch_norm, activation):
  """`layer`, then [BatchNorm], then the activation, as a list of layers."""
  layers = [layer]
  if batch_norm:
    layers.append(keras.layers.BatchNormalization())
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
