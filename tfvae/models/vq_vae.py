"""VQ-VAE: a discrete grid of codebook vectors and a PixelCNN prior over it.

The encoder (stride-2 conv blocks, then a 1x1 convolution) maps an image to
a grid z_e `[batch, h, w, D]` (28x28 -> 7x7, 16x16 -> 4x4); each vector is
replaced by its nearest codebook vector (`VectorQuantizer`) and the decoder
(transposed conv blocks mirroring the encoder) maps the quantized grid z_q
to the likelihood's parameters. The loss per example is

  -log p(x|z_q) + sum_positions (||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2)
  - log p_prior(k)

where k `[batch, h, w]` are the (non-differentiable) code indices and the
last term trains the PixelCNN prior jointly; it reaches only the prior's
weights. With `vq_ema_decay` > 0 the codebook follows moving averages
instead of the codebook loss.

There is no likelihood bound (the posterior is a point mass), so the
exported model has no `log_likelihood` signature. The exported `encode`
returns the code indices and `decode` takes them; `sample` draws indices
from the PixelCNN with one uniform per grid position and decodes them.

#### References
van den Oord, Vinyals & Kavukcuoglu (2017). Neural Discrete Representation
Learning. NeurIPS.
van den Oord et al. (2016). Conditional Image Generation with PixelCNN
Decoders. NeurIPS.
"""

import math

import keras
import tensorflow as tf

from tfvae import likelihoods
from tfvae.errors import ConfigError
from tfvae.models import registry
from tfvae.models.vae import VAE
from tfvae.networks import conv
from tfvae.networks import pixelcnn
from tfvae.networks import vector_quantizer


class GridEncoder(keras.Model):
  """Image -> stride-2 conv blocks -> 1x1 conv -> `[batch, h, w, D]` grid.

  Args:
    embedding_dim: D, channels of the output grid.
    channels: output channels of each stride-2 block.
    activation: `relu` or `leaky_relu`.
    batch_norm: batch-normalize each block.
  """

  def __init__(self, embedding_dim, channels, activation="leaky_relu",
               batch_norm=True, **kwargs):
    super().__init__(**kwargs)
    self.blocks = conv.downsampling_stack(channels, activation, batch_norm)
    self.to_code = keras.layers.Conv2D(embedding_dim, 1, name="to_code")

  def call(self, images, training=False):
    """Args: images: `[batch, H, W, C]`. Returns: `[batch, h, w, D]` float32
    z_e."""
    return tf.cast(self.to_code(self.blocks(images, training=training)),
                   tf.float32)


class GridDecoder(keras.Model):
  """`[batch, h, w, D]` grid -> transposed conv blocks -> `[batch, H, W, C]`.

  Args:
    data_shape: `(H, W, C)` of the images to produce.
    channels: the encoder's channel list (the decoder mirrors it).
    activation: `relu` or `leaky_relu`.
    batch_norm: batch-normalize each block.
  """

  def __init__(self, data_shape, channels, activation="leaky_relu",
               batch_norm=True, **kwargs):
    super().__init__(**kwargs)
    height, width, image_channels = tuple(data_shape)
    grid_height, grid_width = grid_size(data_shape, len(channels))
    first = conv.conv_block(
        keras.layers.Conv2D(channels[-1], 3, padding="same",
                            use_bias=not batch_norm),
        batch_norm, activation)
    self.blocks = conv.upsampling_stack(channels, activation, batch_norm,
                                        first_layers=first)
    self.to_pixels = keras.layers.Conv2D(image_channels, 3, padding="same")
    self.crop = conv.centre_crop(grid_height * 2**len(channels),
                                 grid_width * 2**len(channels), height, width)

  def call(self, grid, training=False):
    """Args: grid: `[batch, h, w, D]` z_q. Returns: `[batch, H, W, C]` float32
    outputs (logits or pre-sigmoid means)."""
    return tf.cast(
        self.crop(self.to_pixels(self.blocks(grid, training=training))),
        tf.float32)


def grid_size(data_shape, num_blocks):
  """`(h, w)` of the code grid after `num_blocks` stride-2 `same` convs."""
  height, width = data_shape[0], data_shape[1]
  for _ in range(num_blocks):
    height, width = math.ceil(height / 2), math.ceil(width / 2)
  return height, width


@registry.register("vq_vae")
class VQVAE(VAE):
  """Vector-quantized autoencoder with a jointly trained PixelCNN code prior.

  Args:
    config: a `ModelConfig` (`encoder` and `decoder` must be `conv`).
    data_shape: `(H, W, C)` of the data.
    num_classes: number of labels in the data (unused).
  """

  has_likelihood_bound = False
  # Its code is discrete (codebook indices): `--sampler=gmm` does not apply.
  has_continuous_code = False
  accepts_vectors = False
  accepts_custom_networks = False
  OPTIONS = frozenset({"num_embeddings", "embedding_dim", "commitment_cost",
                       "vq_ema_decay", "code_prior_layers",
                       "code_prior_channels"})

  def __init__(self, config, data_shape, num_classes=None, **kwargs):
    # The Gaussian-latent parts VAE.__init__ builds (posterior networks,
    # prior, flow) have no use here, so only keras.Model is initialized
    # (float32, as in VAE: only the networks follow a mixed policy).
    kwargs.setdefault("dtype", "float32")
    keras.Model.__init__(self, name=config.model, **kwargs)  # pylint: disable=non-parent-init-called
    self.config = config
    self.data_shape = tuple(data_shape)
    self.num_classes = num_classes
    channels = config.hidden_dims or conv.default_channels(data_shape[0])
    activation = config.activation or "leaky_relu"
    batch_norm = True if config.batch_norm is None else config.batch_norm
    self.grid_shape = grid_size(self.data_shape, len(channels))
    self.embedding_dim = config.embedding_dim
    self.num_embeddings = config.num_embeddings
    # The continuous code of `encode_code`: the flattened z_e grid.
    self.latent_dim = math.prod(self.grid_shape) * config.embedding_dim
    self.encoder = GridEncoder(config.embedding_dim, tuple(channels),
                               activation, batch_norm, name="encoder")
    self.decoder = GridDecoder(self.data_shape, tuple(channels), activation,
                               batch_norm, name="decoder")
    self.quantizer = vector_quantizer.VectorQuantizer(
        config.num_embeddings, config.embedding_dim, config.commitment_cost,
        config.vq_ema_decay, name="quantizer")
    self.code_prior = pixelcnn.PixelCNN(
        config.num_embeddings, config.code_prior_layers,
        config.code_prior_channels, name="code_prior")
    self.likelihood = likelihoods.build_likelihood(config, self.data_shape)

  @classmethod
  def check_config(cls, config):
    for name in ("encoder", "decoder"):
      if getattr(config, name) != "conv":
        raise ConfigError(
            f"--{name}={getattr(config, name)} does not apply to "
            "--model=vq_vae, whose code is a spatial grid; use "
            "--encoder=conv --decoder=conv.")

  # ---- Networks ------------------------------------------------------------

  def encode(self, images, labels=None, training=False):
    """The continuous encoder output.

    Args:
      images: `[batch, H, W, C]` float32 in [0, 1].
      labels: unused.
      training: batch norm mode.

    Returns:
      `{'z_e'}`: `[batch, h, w, embedding_dim]`.
    """
    del labels
    return {"z_e": self.encoder(images, training=training)}

  def _decode_grid(self, grid, training=False):
    params = self.likelihood(self.decoder(grid, training=training))
    return dict(params, mean=self.likelihood.mean(params))

  def decode(self, z, labels=None, training=False):
    """Likelihood parameters and pixel means of code indices.

    Args:
      z: `[batch, h, w]` int32 code indices in [0, num_embeddings).
      labels: unused.
      training: batch norm mode.

    Returns:
      Dict of `[batch, H, W, C]` tensors: the likelihood's parameters and
      `mean`.
    """
    del labels
    return self._decode_grid(self.quantizer.lookup(z), training)

  def _grid(self, code):
    return tf.reshape(code, [-1, *self.grid_shape, self.embedding_dim])

  # ---- Codes and generation ------------------------------------------------

  def encode_code(self, images, labels=None, training=False):
    """`[batch, h * w * embedding_dim]` the flattened continuous z_e."""
    z_e = self.encode(images, labels, training)["z_e"]
    return tf.reshape(z_e, [-1, self.latent_dim])

  def decode_code(self, code, labels=None, training=False):
    """Quantizes a flattened `[batch, h * w * D]` code and decodes it."""
    del labels
    indices = self.quantizer.nearest(self._grid(code))
    return self.decode(indices, training=training)

  def sample_noise_shapes(self):
    """`((1,), (h * w,))`: no Normal noise, one uniform per grid position."""
    return (1,), (math.prod(self.grid_shape),)

  def sample_from_noise(self, normal, uniform, labels=None):
    """Images decoded from code grids drawn from the PixelCNN prior.

    Args:
      normal: `[n, 1]` (unused).
      uniform: `[n, h * w]` uniform draws in (0, 1).
      labels: unused.

    Returns:
      `[n, H, W, C]` pixel means.
    """
    del normal
    indices = self.code_prior.sample_from_uniform(uniform, self.grid_shape)
    return self.decode(indices, labels)["mean"]

  def export_encode(self, images, labels=None):
    """The exported `encode`: `{'indices'}` int32 `[batch, h, w]`."""
    z_e = self.encode(images, labels)["z_e"]
    return {"indices": self.quantizer.nearest(z_e)}

  def decode_input_spec(self):
    """`z`: int32 code indices `[None, h, w]`."""
    return tf.TensorSpec([None, *self.grid_shape], tf.int32, "z")

  # ---- Objective -----------------------------------------------------------

  def noise_shape(self):
    """`(1,)`: the objective is deterministic; the noise is unused."""
    return (1,)

  def prior(self):
    raise NotImplementedError(
        "vq_vae has a discrete PixelCNN prior over code indices "
        "(`code_prior`), not a density over a continuous z.")

  def kl_per_dimension(self, images, labels=None):
    del images, labels
    return None

  def compute_loss(self, images, noise, step, kl_weight, labels=None,
                   training=True):
    """Per-example loss terms for one batch.

    Args:
      images: `[batch, H, W, C]` float32 in [0, 1].
      noise: unused (`[batch, 1]`).
      step: unused.
      kl_weight: unused (there is no KL term).
      labels: unused.
      training: batch norm mode; with EMA codebooks, also updates them.

    Returns:
      Dict of `[batch]` tensors: `loss` (what is minimized), `distortion`
      (-log p(x|z_q)), `commitment_loss`, `codebook_loss` (each summed over
      the grid) and `prior_nll` (-log p(k) of the code indices under the
      PixelCNN, in nats).
    """
    del noise, step, kl_weight
    z_e = self.encode(images, labels, training)["z_e"]
    quantized = self.quantizer(z_e, training=training)
    params = self._decode_grid(quantized["quantized"], training)
    distortion = -self.likelihood.log_prob(params, images)
    commitment = tf.reduce_sum(quantized["commitment_loss"], axis=[1, 2])
    codebook = tf.reduce_sum(quantized["codebook_loss"], axis=[1, 2])
    prior_nll = -self.code_prior.log_prob(
        tf.stop_gradient(quantized["indices"]))
    return {"loss": distortion + commitment + codebook + prior_nll,
            "distortion": distortion, "commitment_loss": commitment,
            "codebook_loss": codebook, "prior_nll": prior_nll}

  def log_weights(self, images, noise, labels=None):
    raise NotImplementedError(
        "vq_vae has no likelihood bound (has_likelihood_bound is False).")
