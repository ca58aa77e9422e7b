"""Builds the encoder and decoder a `ModelConfig` asks for."""

from tfvae.networks import conv
from tfvae.networks import custom
from tfvae.networks import mlp


def settings(config, network, data_shape):
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


def build_encoder(config, data_shape, latent_dim=None, body=None):
  """The encoder for `config.encoder`, or around a custom `body`.

  Args:
    config: a `ModelConfig`.
    data_shape: `(H, W, C)` or `(D,)`: what the encoder reads.
    latent_dim: size of z; defaults to `config.latent_dim`.
    body: a user's `keras.Model` (see `tfvae.networks.custom`), or None.

  Returns:
    A Keras model mapping `[batch] + data_shape` to `(loc, scale)`.
  """
  latent_dim = latent_dim or config.latent_dim
  if body is not None:
    return custom.CustomEncoder(body, data_shape, latent_dim, name="encoder")
  widths, activation, batch_norm = settings(config, config.encoder,
                                             data_shape)
  if config.encoder == "conv":
    return conv.ConvEncoder(latent_dim, widths, activation, batch_norm,
                            name="encoder")
  return mlp.MLPEncoder(latent_dim, widths, activation, batch_norm,
                        config.dropout, name="encoder")


def build_decoder(config, data_shape, body=None, latent_dim=None):
  """The decoder for `config.decoder`, or around a custom `body`.

  Args:
    config: a `ModelConfig`.
    data_shape: per-example shape of its output, `(H, W, C)` or `(P,)`.
    body: a user's `keras.Model` (see `tfvae.networks.custom`), or None.
    latent_dim: size of what it reads (for `body`); default
      `config.latent_dim`.

  Returns:
    A Keras model mapping `[batch, latent_dim]` to `[batch] + data_shape`.
  """
  if body is not None:
    return custom.CustomDecoder(body, latent_dim or config.latent_dim,
                                data_shape, name="decoder")
  widths, activation, batch_norm = settings(config, config.decoder,
                                             data_shape)
  if config.decoder == "conv":
    return conv.ConvDecoder(data_shape, widths, activation, batch_norm,
                            name="decoder")
  return mlp.MLPDecoder(data_shape, widths, activation, batch_norm,
                        config.dropout, name="decoder")
