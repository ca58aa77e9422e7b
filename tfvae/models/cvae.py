"""Conditional VAE: encoder and decoder both see the class label.

The model is p(x|z, y) p(z) with posterior q(z|x, y) (Sohn, Lee & Yan 2015;
the generative half of Kingma et al.'s 2014 M2 with the label observed), so
`sample(..., labels=y)` draws images of class y. `--conditioning` chooses how
the label `y` (int32 `[batch]`) enters the networks:

- `concat`: the one-hot label `[batch, K]` is appended to the encoder's input
  as K constant planes (`[batch, H, W, C + K]`, for MLP and conv encoders
  alike) and to z before the decoder (`[batch, latent_dim + K]`).
- `add`: a learned projection of the label is added to the pixels before the
  encoder (`Embedding(K, H * W * C)` reshaped to `[batch, H, W, C]`), and a
  learned embedding `Embedding(K, latent_dim)` is added to z before the
  decoder.

Only `encode` and `decode` change; the loss, importance weights, sampling and
export of `VAE` pass the labels through (`conditional = True` makes the
training loop feed them and every exported signature take an int32 `label`
`[N]`). The ops are TFLite built-ins (ONE_HOT, CONCATENATION, MUL, GATHER).

Labels are not validated in-graph. With `concat` a label outside
`[0, num_classes)` gives an all-zero one-hot, i.e. "no class"; with `add` it
is an out-of-range gather (an error on CPU and in TFLite, zeros on GPU).

#### References
Sohn, Lee & Yan (2015). Learning Structured Output Representation using Deep
Conditional Generative Models. NeurIPS.
Kingma, Rezende, Mohamed & Welling (2014). Semi-Supervised Learning with Deep
Generative Models. NeurIPS.
"""

import keras
import tensorflow as tf

from tfvae.errors import ConfigError
from tfvae.models import registry
from tfvae.models.vae import GAUSSIAN_LATENT_OPTIONS
from tfvae.models.vae import VAE

# Priors whose density is built from unlabelled encoder inputs.
_UNLABELLED_PRIORS = ("vamp",)
# `add`: the label embeddings added to z start orthogonal with this norm, so
# classes are told apart from z ~ N(0, I) (distance gain * sqrt(2)) from the
# start; with small embeddings the encoder puts the class in z instead and
# sampling ignores the label.
_LATENT_EMBEDDING_GAIN = 4.0


@registry.register("cvae")
class CVAE(VAE):
  """A VAE whose encoder and decoder are conditioned on the class label.

  Args:
    config: a `ModelConfig` (`conditioning` is `add` or `concat`).
    data_shape: `(H, W, C)` of the data.
    num_classes: number of labels K in the data; required.

  Raises:
    ConfigError: when `num_classes` is None (data without labels).
  """

  conditional = True
  accepts_vectors = False
  OPTIONS = GAUSSIAN_LATENT_OPTIONS | {"conditioning"}

  def __init__(self, config, data_shape, num_classes=None, **kwargs):
    if num_classes is None or num_classes < 1:
      raise ConfigError(
          f"--model={config.model} needs class labels, but the data has "
          "none (num_classes is None); use a labelled dataset or another "
          "--model.")
    self.conditioning = config.conditioning
    super().__init__(config, data_shape, num_classes=num_classes, **kwargs)
    height, width, channels = self.data_shape
    if self.conditioning == "add":
      self.image_embedding = keras.layers.Embedding(
          num_classes, height * width * channels, name="image_embedding")
      self.latent_embedding = keras.layers.Embedding(
          num_classes, self.latent_dim,
          embeddings_initializer=keras.initializers.Orthogonal(
              gain=_LATENT_EMBEDDING_GAIN),
          name="latent_embedding")

  def encoder_input_shape(self):
    """The image plus one one-hot plane per class with `concat`."""
    height, width, channels = self.data_shape
    if self.conditioning == "concat":
      return (height, width, channels + self.num_classes)
    return self.data_shape

  def decoder_input_dim(self):
    """z plus the one-hot label with `concat`."""
    if self.conditioning == "concat":
      return self.latent_dim + self.num_classes
    return self.latent_dim

  @classmethod
  def check_config(cls, config):
    """Rejects priors that run the encoder without labels (VampPrior)."""
    super().check_config(config)
    if config.prior in _UNLABELLED_PRIORS:
      raise ConfigError(
          f"--prior={config.prior} does not apply to "
          f"--model={config.model}: its pseudo-inputs have no class label "
          "for the conditional encoder. Use --prior=normal or --prior=mixture.")

  def _one_hot(self, labels, dtype):
    """`[batch, K]` one-hot of `[batch]` int32 labels; zeros if out of range."""
    return tf.one_hot(labels, self.num_classes, dtype=dtype)

  def encode(self, images, labels=None, training=False):
    """Posterior parameters of q(z|x, y).

    Args:
      images: `[batch, H, W, C]` float32 in [0, 1].
      labels: `[batch]` int32 class ids.
      training: batch norm / dropout mode.

    Returns:
      `{'loc', 'scale'}`, each `[batch, latent_dim]`.
    """
    if self.conditioning == "concat":
      one_hot = self._one_hot(labels, images.dtype)[:, None, None, :]
      # [batch, 1, 1, K] * [batch, H, W, 1] -> [batch, H, W, K] planes.
      planes = one_hot * tf.ones_like(images[..., :1])
      inputs = tf.concat([images, planes], axis=-1)
    else:
      shift = tf.reshape(self.image_embedding(labels),
                         [-1] + list(self.data_shape))
      inputs = images + tf.cast(shift, images.dtype)
    loc, scale = self.encoder(inputs, training=training)
    return {"loc": loc, "scale": scale}

  def decode(self, z, labels=None, training=False):
    """Likelihood parameters and pixel means of p(x|z, y).

    Args:
      z: `[batch, latent_dim]`.
      labels: `[batch]` int32 class ids.
      training: batch norm / dropout mode.

    Returns:
      Dict of `[batch, H, W, C]` tensors: the likelihood's parameters
      (`logits`, or `loc` and `scale`) and `mean`.
    """
    if self.conditioning == "concat":
      inputs = tf.concat([z, self._one_hot(labels, z.dtype)], axis=-1)
    else:
      inputs = z + tf.cast(self.latent_embedding(labels), z.dtype)
    params = self.likelihood(self.decoder(inputs, training=training))
    return dict(params, mean=self.likelihood.mean(params))

