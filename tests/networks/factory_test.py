"""Tests of `tfvae.networks.factory`: defaults and honoured config options."""

import keras
import numpy as np
import pytest

from tfvae.config import ModelConfig
from tfvae.networks import conv
from tfvae.networks import factory
from tfvae.networks import mlp

IMAGE_SHAPE = (28, 28, 1)


def _types(layers, cls):
  return [layer for layer in layers if isinstance(layer, cls)]


def test_mlp_defaults_relu_no_batch_norm():
  config = ModelConfig(latent_dim=3)
  encoder = factory.build_encoder(config, IMAGE_SHAPE)
  decoder = factory.build_decoder(config, IMAGE_SHAPE)
  assert isinstance(encoder, mlp.MLPEncoder)
  assert isinstance(decoder, mlp.MLPDecoder)
  for network in (encoder, decoder):
    assert not _types(network.hidden.layers, keras.layers.BatchNormalization)
    assert not _types(network.hidden.layers, keras.layers.LeakyReLU)
    activations = _types(network.hidden.layers, keras.layers.Activation)
    assert len(activations) == len(mlp.DEFAULT_HIDDEN_DIMS)
    assert all(layer.activation is keras.activations.relu
               for layer in activations)
  widths = [layer.units for layer in _types(encoder.hidden.layers,
                                            keras.layers.Dense)]
  assert tuple(widths) == mlp.DEFAULT_HIDDEN_DIMS
  assert encoder.latent_dim == 3


def test_conv_defaults_leaky_relu_with_batch_norm():
  config = ModelConfig(encoder="conv", decoder="conv", latent_dim=3)
  encoder = factory.build_encoder(config, IMAGE_SHAPE)
  decoder = factory.build_decoder(config, IMAGE_SHAPE)
  assert isinstance(encoder, conv.ConvEncoder)
  assert isinstance(decoder, conv.ConvDecoder)
  blocks = len(conv.default_channels(28))
  for network in (encoder, decoder):
    assert len(_types(network.blocks.layers,
                      keras.layers.BatchNormalization)) == blocks
    assert len(_types(network.blocks.layers, keras.layers.LeakyReLU)) == blocks
    assert not _types(network.blocks.layers, keras.layers.Activation)
  assert [layer.filters for layer in _types(
      encoder.blocks.layers, keras.layers.Conv2D)] == list(conv.default_channels(28))


@pytest.mark.parametrize("network", ["mlp", "conv"])
def test_config_options_are_honoured(network):
  # Each option set to the opposite of the network's default.
  activation, batch_norm = (("leaky_relu", True) if network == "mlp"
                            else ("relu", False))
  config = ModelConfig(encoder=network, decoder=network, latent_dim=2,
                       hidden_dims=(8, 4, 6), activation=activation,
                       batch_norm=batch_norm)
  encoder = factory.build_encoder(config, IMAGE_SHAPE)
  decoder = factory.build_decoder(config, IMAGE_SHAPE)
  layers = encoder.hidden.layers if network == "mlp" else encoder.blocks.layers
  decoder_layers = decoder.hidden.layers if network == "mlp" else decoder.blocks.layers
  weighted = (keras.layers.Dense if network == "mlp"
              else keras.layers.Conv2D)
  sizes = [getattr(layer, "units", None) or layer.filters
           for layer in _types(layers, weighted)]
  assert sizes == [8, 4, 6]
  for stack in (layers, decoder_layers):
    leaky = _types(stack, keras.layers.LeakyReLU)
    plain = _types(stack, keras.layers.Activation)
    if activation == "leaky_relu":
      assert len(leaky) == 3 and not plain
    else:
      assert len(plain) == 3 and not leaky
      assert all(layer.activation is keras.activations.relu
                 for layer in plain)
    assert len(_types(stack, keras.layers.BatchNormalization)) == (
        3 if batch_norm else 0)
  loc, scale = encoder(np.zeros((2,) + IMAGE_SHAPE, np.float32))
  assert tuple(loc.shape) == tuple(scale.shape) == (2, 2)
  assert tuple(decoder(np.zeros((2, 2), np.float32)).shape) == (
      (2,) + IMAGE_SHAPE)


def test_mlp_dropout_is_honoured():
  config = ModelConfig(hidden_dims=(8, 4), dropout=0.25)
  encoder = factory.build_encoder(config, IMAGE_SHAPE)
  dropouts = _types(encoder.hidden.layers, keras.layers.Dropout)
  assert len(dropouts) == 2
  assert all(layer.rate == 0.25 for layer in dropouts)


def test_mixed_networks_and_latent_override():
  config = ModelConfig(encoder="conv", decoder="mlp", latent_dim=3,
                       hidden_dims=(4,))
  encoder = factory.build_encoder(config, IMAGE_SHAPE, latent_dim=7)
  decoder = factory.build_decoder(config, IMAGE_SHAPE)
  assert isinstance(encoder, conv.ConvEncoder)
  assert isinstance(decoder, mlp.MLPDecoder)
  loc, _ = encoder(np.zeros((1,) + IMAGE_SHAPE, np.float32))
  assert tuple(loc.shape) == (1, 7)
