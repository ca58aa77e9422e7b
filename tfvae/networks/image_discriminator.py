"""An image discriminator with a feature layer (`vae_gan`'s Dis).

`ImageDiscriminator` maps images to the logit that they are real data and
to the features of its last hidden layer, Dis_l(x) in Larsen et al. (2016),
whose squared distance between an image and its reconstruction is
`vae_gan`'s learned similarity metric.

- conv (`--encoder=conv`): stride-2 3x3 convolutions with leaky ReLU
  (slope 0.2, DCGAN's), halving the image per entry of the channel list;
  the features are the last block's map, flattened (`[batch, h * w * c]`);
  a dense layer gives the logit.
- MLP (otherwise): dense layers with leaky ReLU on the flattened image; the
  features are the last hidden layer.

There is no batch normalization: the features of an image then depend on
that image alone, not on the batch it is evaluated with. Layers compute in
the Keras policy's dtype; the logit and features are float32.

#### References
Larsen, Sønderby, Larochelle & Winther (2016). Autoencoding beyond pixels
using a learned similarity metric. ICML.
Radford, Metz & Chintala (2016). Unsupervised Representation Learning with
Deep Convolutional Generative Adversarial Networks. ICLR.
"""

import keras
from keras import ops

from tfvae.networks import conv
from tfvae.networks import mlp

# GAN practice (DCGAN): a leaky ReLU slope of 0.2 in the discriminator.
LEAKY_RELU_SLOPE = 0.2
# The MLP default mirrors the MLP encoder's widths.
DEFAULT_MLP_HIDDEN_DIMS = mlp.DEFAULT_HIDDEN_DIMS


class ImageDiscriminator(keras.Model):
  """Images `[batch, H, W, C]` -> (logits `[batch]`, features `[batch, F]`).

  Args:
    hidden_dims: conv channels per stride-2 block (`convolutional`) or MLP
      widths, input side first.
    convolutional: a conv stack (images only) instead of an MLP.
  """

  def __init__(self, hidden_dims, convolutional, **kwargs):
    super().__init__(**kwargs)
    self.hidden_dims = tuple(hidden_dims)
    self.convolutional = convolutional
    layers = []
    if not convolutional:
      layers.append(keras.layers.Flatten())
    for width in self.hidden_dims:
      layers.append(keras.layers.Conv2D(width, 3, strides=2, padding="same")
                    if convolutional else keras.layers.Dense(width))
      layers.append(keras.layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE))
    if convolutional:
      layers.append(keras.layers.Flatten())
    self.hidden = keras.Sequential(layers, name="hidden")
    self.head = keras.layers.Dense(1, name="logit")

  def call(self, images, training=False):
    """The logits and the feature layer.

    Args:
      images: `[batch, H, W, C]` float32 (or `[batch, D]` for the MLP).
      training: unused (no batch norm or dropout); Keras' convention.

    Returns:
      `(logits [batch], features [batch, F])`, float32 whatever the layers'
      compute dtype.
    """
    features = self.hidden(images, training=training)
    logits = self.head(features)
    return (ops.cast(logits, "float32")[:, 0],
            ops.cast(features, "float32"))


def default_hidden_dims(config, data_shape):
  """`config.discriminator_hidden_dims`, or the default for its network:
  `conv.default_channels(H)` for conv (e.g. (32, 64) for 28x28), else
  `DEFAULT_MLP_HIDDEN_DIMS`."""
  if config.discriminator_hidden_dims:
    return tuple(config.discriminator_hidden_dims)
  if config.encoder == "conv":
    return conv.default_channels(data_shape[0])
  return DEFAULT_MLP_HIDDEN_DIMS


def build_image_discriminator(config, data_shape, name="discriminator"):
  """The `ImageDiscriminator` for `config`: conv when `config.encoder` is
  `conv` (and the data are images), else an MLP.

  Args:
    config: a `ModelConfig` (`encoder`, `discriminator_hidden_dims`).
    data_shape: `(H, W, C)` of the images it reads, or `(D,)`.
    name: the network's name.
  """
  convolutional = config.encoder == "conv" and len(data_shape) == 3
  return ImageDiscriminator(default_hidden_dims(config, data_shape),
                            convolutional, name=name)
