"""The networks of the Ladder VAE (`hvae`): a bottom-up and a top-down path.

`BottomUp` (the model's `encoder`) is the deterministic inference path: a
torso (the MLP hidden stack, or the stride-2 conv blocks, of `--encoder`)
gives d_1 from x, then one MLP layer per higher layer gives
d_i = act(W_i d_{i-1}); a Dense head on each d_i gives the bottom-up
estimate (loc, softplus scale) of that layer's latent.

`TopDown` (the model's `decoder`) is the generative path, which inference
shares: MLP cells fold the latents in from the top,
t_L = act(W_L z_L) and, residually, t_i = t_{i+1} + act(W_i [z_i, t_{i+1}])
for 2 <= i < L; a Dense head on t_{i+1} gives the conditional prior
p(z_i | z_{>i}) (loc, softplus scale), and the image network of
`--decoder` (the MLP or conv decoder of `tfvae.networks`) maps z_1 to the
likelihood's parameters, as in the Ladder VAE. (Feeding t_2 to the image
network beside z_1 was tried: on Fashion-MNIST the model then kept z_1 at
its prior, KL ~0, and put everything in the top layer.)

Of the stability habits of NVAE and VDVAE, scales that are a softplus plus
a floor and the residual top-down merge are kept; residual two-layer blocks
in both paths were tried at this scale (2 layers, Fashion-MNIST, 5 epochs)
and gave the same likelihood (within 0.1 nat) at about 20% more time per
step, so each path adds one Dense layer per latent layer, as in the Ladder
VAE. Every method computes in the layers' dtype policy and returns float32.

#### References
Sønderby et al. (2016). Ladder Variational Autoencoders. NeurIPS.
Vahdat & Kautz (2020). NVAE: A Deep Hierarchical Variational Autoencoder.
NeurIPS.
Child (2021). Very Deep VAEs Generalize Autoregressive Models and Can
Outperform Them on Images. ICLR.
"""

import keras
from keras import ops

from tfvae.networks import blocks
from tfvae.networks import conv
from tfvae.networks import factory
from tfvae.networks import mlp

# Floor of every softplus scale (bottom-up estimates and priors).
MIN_SCALE = mlp.MIN_SCALE
# Width of the upper layers' MLP cells for a conv torso, per channel of its
# last block (e.g. 64 channels -> 256 units).
CONV_WIDTH_PER_CHANNEL = 4


def ladder_width(config, data_shape):
  """Units of the upper bottom-up cells and of the top-down features.

  The last MLP width of `--encoder=mlp`, or `CONV_WIDTH_PER_CHANNEL` times
  the last channel count of `--encoder=conv`.
  """
  widths, _, _ = factory.settings(config, config.encoder, data_shape)
  if config.encoder == "conv":
    return CONV_WIDTH_PER_CHANNEL * widths[-1]
  return widths[-1]


class Cell(keras.layers.Layer):
  """y = [skip +] act(Dense(x)): one MLP layer of either path.

  Args:
    width: units of the layer and of its output.
    activation: `relu` or `leaky_relu`.
  """

  def __init__(self, width, activation, **kwargs):
    super().__init__(**kwargs)
    self.dense = keras.layers.Dense(width, name="dense")
    self.act = blocks.activation_layer(activation)

  def call(self, x, skip=None):
    """Args: x: `[batch, F]`; skip: `[batch, width]` or None. Returns:
    `[batch, width]` in the compute dtype."""
    y = self.act(self.dense(x))
    return y if skip is None else ops.cast(skip, self.compute_dtype) + y


def _scale(raw):
  """Softplus with the `MIN_SCALE` floor, float32."""
  return ops.softplus(ops.cast(raw, "float32")) + MIN_SCALE


class BottomUp(keras.Model):
  """x -> d_1 ... d_L -> each layer's bottom-up (loc, scale).

  Args:
    latent_dims: latent size of each layer, bottom first.
    network: `mlp` or `conv` (`--encoder`).
    widths: MLP widths or conv channels of the torso, input side first.
    width: units of the upper layers' cells.
    activation: `relu` or `leaky_relu`.
    batch_norm: batch-normalize the torso's layers.
    dropout: dropout rate after the MLP torso's layers.
  """

  def __init__(self, latent_dims, network, widths, width, activation="relu",
               batch_norm=False, dropout=0.0, **kwargs):
    super().__init__(**kwargs)
    self.latent_dims = tuple(latent_dims)
    if network == "conv":
      self.torso = keras.Sequential(
          [conv.downsampling_stack(widths, activation, batch_norm),
           keras.layers.Flatten()], name="torso")
    else:
      self.torso = keras.Sequential(
          [keras.layers.Flatten(),
           blocks.dense_stack(widths, activation, batch_norm, dropout)],
          name="torso")
    self.upper = [Cell(width, activation, name=f"cell_{i + 1}")
                  for i in range(1, len(self.latent_dims))]
    self.heads = [keras.layers.Dense(2 * dim, name=f"head_{i + 1}")
                  for i, dim in enumerate(self.latent_dims)]

  def call(self, features, training=False):
    """Maps data to each layer's bottom-up estimate.

    Args:
      features: `[batch] + feature_shape` what the encoder reads.
      training: batch norm / dropout mode.

    Returns:
      List, bottom layer first, of `(loc, scale)`, each `[batch, d_i]`
      float32; scales are positive.
    """
    h = self.torso(features, training=training)
    estimates = []
    for i, head in enumerate(self.heads):
      if i:
        h = self.upper[i - 1](h)
      loc, raw = ops.split(ops.cast(head(h), "float32"), 2, axis=-1)
      estimates.append((loc, _scale(raw)))
    return estimates


class TopDown(keras.Model):
  """The generative path: z_L ... z_1 -> features, priors, and the image.

  Args:
    latent_dims: latent size of each layer, bottom first.
    width: units of the top-down features t_i.
    activation: `relu` or `leaky_relu`.
    image_network: a Keras network mapping `[batch, d_1]` to the
      likelihood's `parameter_shape`
      (`tfvae.networks.factory.build_decoder`).
  """

  def __init__(self, latent_dims, width, activation, image_network,
               **kwargs):
    super().__init__(**kwargs)
    self.latent_dims = tuple(latent_dims)
    self.width = width
    # cells[i - 1] folds in z_i (bottom = 0); the top cell reads z alone.
    self.cells = [Cell(width, activation, name=f"cell_{i + 1}")
                  for i in range(1, len(self.latent_dims))]
    # prior_heads[i]: p(z_i | t_{i+1}) for every layer but the top.
    self.prior_heads = [keras.layers.Dense(2 * dim, name=f"prior_{i + 1}")
                        for i, dim in enumerate(self.latent_dims[:-1])]
    self.image_network = image_network

  def features(self, index, z, above=None):
    """t_index, the top-down features once z_index is folded in.

    Args:
      index: the layer (0 is the bottom), >= 1.
      z: `[batch, d_index]`.
      above: `[batch, width]` t_{index+1}, or None for the top layer.

    Returns:
      `[batch, width]` float32.
    """
    cell = self.cells[index - 1]
    if above is None:
      return ops.cast(cell(z), "float32")
    return ops.cast(cell(ops.concatenate([z, above], axis=-1), skip=above),
                    "float32")

  def prior_params(self, index, above):
    """p(z_index | z_{>index}) from t_{index+1}.

    Args:
      index: the layer, below the top.
      above: `[batch, width]` t_{index+1}.

    Returns:
      `(loc, scale)`, each `[batch, d_index]` float32.
    """
    loc, raw = ops.split(ops.cast(self.prior_heads[index](above), "float32"),
                         2, axis=-1)
    return loc, _scale(raw)

  def call(self, z_bottom, training=False):
    """The likelihood's unconstrained parameters from z_1.

    Args:
      z_bottom: `[batch, d_1]`.
      training: batch norm / dropout mode.

    Returns:
      `[batch] + parameter_shape` float32.
    """
    return ops.cast(self.image_network(z_bottom, training=training),
                    "float32")
