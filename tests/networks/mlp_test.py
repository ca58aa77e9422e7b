"""Tests of `tfvae.networks.mlp`: output shapes and positivity."""

import keras
import numpy as np
import pytest

from tfvae.networks import mlp

SHAPES = [(28, 28, 1), (32, 32, 3), (64, 64, 3)]


@pytest.mark.parametrize("data_shape", SHAPES)
def test_encoder_shapes(data_shape):
  encoder = mlp.MLPEncoder(5, hidden_dims=(16,))
  images = np.random.default_rng(0).random((3,) + data_shape).astype(
      np.float32)
  loc, scale = encoder(images)
  assert tuple(loc.shape) == (3, 5)
  assert tuple(scale.shape) == (3, 5)
  assert np.all(np.asarray(scale) > 0)
  # The first Dense sees the flattened image.
  assert tuple(encoder.hidden.layers[0].kernel.shape) == (int(np.prod(data_shape)),
                                                   16)


@pytest.mark.parametrize("data_shape", SHAPES)
def test_decoder_shapes(data_shape):
  decoder = mlp.MLPDecoder(data_shape, hidden_dims=(16,))
  z = np.random.default_rng(1).normal(size=(3, 5)).astype(np.float32)
  assert tuple(decoder(z).shape) == (3,) + data_shape


def test_encoder_scale_positive_for_extreme_inputs():
  encoder = mlp.MLPEncoder(4, hidden_dims=(8,))
  images = np.full((2, 4, 4, 1), 1e4, np.float32)
  images[1] = -1e4
  _, scale = encoder(images)
  assert np.all(np.asarray(scale) >= mlp.MIN_SCALE)


def test_decoder_reverses_hidden_dims():
  decoder = mlp.MLPDecoder((4, 4, 1), hidden_dims=(32, 8))
  decoder(np.zeros((1, 3), np.float32))
  widths = [layer.units for layer in decoder.hidden.layers
            if isinstance(layer, keras.layers.Dense)]
  assert widths == [8, 32]


def test_dropout_only_active_in_training():
  encoder = mlp.MLPEncoder(4, hidden_dims=(64,), dropout=0.5)
  images = np.random.default_rng(2).random((2, 4, 4, 1)).astype(np.float32)
  eval_a, _ = encoder(images, training=False)
  eval_b, _ = encoder(images, training=False)
  train_a, _ = encoder(images, training=True)
  np.testing.assert_array_equal(np.asarray(eval_a), np.asarray(eval_b))
  assert not np.allclose(np.asarray(eval_a), np.asarray(train_a))
