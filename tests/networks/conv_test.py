"""Tests of `tfvae.networks.conv`: channel defaults and output shapes."""

import keras
import numpy as np
import pytest

from tfvae.networks import conv

SHAPES = [(28, 28, 1), (32, 32, 3), (64, 64, 3)]


@pytest.mark.parametrize("image_size, expected", [
    (28, (32, 64)), (32, (32, 64, 128)), (64, (32, 64, 128, 256)),
    (8, (32,)), (4, (32,))])
def test_default_channels(image_size, expected):
  assert conv.default_channels(image_size) == expected


def test_default_channels_capped():
  assert max(conv.default_channels(1024)) == 512


@pytest.mark.parametrize("image_shape", SHAPES)
def test_encoder_shapes_with_default_channels(image_shape):
  channels = conv.default_channels(image_shape[0])
  encoder = conv.ConvEncoder(6, channels)
  images = np.random.default_rng(0).random((2,) + image_shape).astype(
      np.float32)
  loc, scale = encoder(images)
  assert tuple(loc.shape) == (2, 6)
  assert tuple(scale.shape) == (2, 6)
  assert np.all(np.asarray(scale) > 0)
  convs = [layer for layer in encoder.blocks.layers
           if isinstance(layer, keras.layers.Conv2D)]
  assert [layer.filters for layer in convs] == list(channels)
  assert all(layer.strides == (2, 2) for layer in convs)


@pytest.mark.parametrize("image_shape", SHAPES)
def test_decoder_shapes_with_default_channels(image_shape):
  channels = conv.default_channels(image_shape[0])
  decoder = conv.ConvDecoder(image_shape, channels)
  z = np.random.default_rng(1).normal(size=(2, 6)).astype(np.float32)
  assert tuple(decoder(z).shape) == (2,) + image_shape
  transposed = [layer.filters for layer in decoder.blocks.layers
                if isinstance(layer, keras.layers.Conv2DTranspose)]
  assert transposed == list(reversed(channels))


@pytest.mark.parametrize("image_shape, channels", [
    ((28, 28, 1), (8, 8, 8)),   # 28 -> 14 -> 7 -> 4: grows to 32, crops.
    ((30, 30, 3), (8, 8)),      # 30 -> 15 -> 8: grows to 32, crops 1 / 1.
    ((12, 20, 1), (4, 4, 4))])  # Non-square.
def test_decoder_crops_sizes_that_do_not_halve(image_shape, channels):
  decoder = conv.ConvDecoder(image_shape, channels, batch_norm=False)
  z = np.zeros((3, 2), np.float32)
  assert tuple(decoder(z).shape) == (3,) + image_shape
  encoder = conv.ConvEncoder(2, channels, batch_norm=False)
  loc, _ = encoder(np.zeros((3,) + image_shape, np.float32))
  assert tuple(loc.shape) == (3, 2)
