"""Builds the encoder and decoder a `ModelConfig` asks for."""

from tfvae.networks import conv
from tfvae.networks import mlp


def _settings(config, network, data_shape):
  """Resolves the per-network defaults of unset options.

  Returns:
    `(widths, activation, batch_norm)`.
  """
  if network == "conv":
    widths = config.hidden_dims or conv.default_channels(data_shape[0])
    activation = config.activation or "leaky_relu"
    batch_norm = True if config.batch_norm is None else config.batch_norm
  else:
    widths = config.hidden_dims or mlp.DEFAULT_HIDDEN_DIMS
    activation = config.activation or "relu"
    batch_norm = bool(config.batch_norm)
  return tuple(widths), activation, batch_norm


def build_encoder(config, data_shape, latent_dim=None):
  """The encoder for `config.encoder`.

  Args:
    config: a `ModelConfig`.
    data_shape: `(H, W, C)`.
    latent_dim: size of z; defaults to `config.latent_dim`.

  Returns:
    A Keras model mapping `[batch, H, W, C]` to `(loc, scale)`.
  """
  latent_dim = latent_dim or config.latent_dim
  widths, activation, batch_norm = _settings(config, config.encoder,
                                             data_shape)
  if config.encoder == "conv":
    return conv.ConvEncoder(latent_dim, widths, activation, batch_norm,
                            name="encoder")
  return mlp.MLPEncoder(latent_dim, widths, activation, batch_norm,
                        config.dropout, name="encoder")


def build_decoder(config, data_shape):
  """The decoder for `config.decoder`.

  Args:
    config: a `ModelConfig`.
    data_shape: `(H, W, C)`.

  Returns:
    A Keras model mapping `[batch, latent_dim]` to `[batch, H, W, C]`.
  """
  widths, activation, batch_norm = _settings(config, config.decoder,
                                             data_shape)
  if config.decoder == "conv":
    return conv.ConvDecoder(data_shape, widths, activation, batch_norm,
                            name="decoder")
  return mlp.MLPDecoder(data_shape, widths, activation, batch_norm,
                        config.dropout, name="decoder")
