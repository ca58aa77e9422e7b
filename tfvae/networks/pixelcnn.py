"""A small PixelCNN over a grid of discrete codes (the VQ-VAE's learned prior).

Masked convolutions make the logits at grid position p depend only on the
positions before p in raster order (rows top to bottom, columns left to
right): the first layer's mask (type A) hides the centre, later ones (type
B) show it, and the final 1x1 convolution to K logits mixes channels only.
So p(k) = prod_p p(k_p | k_<p) is a normalized distribution over code grids.

#### References
van den Oord, Kalchbrenner & Kavukcuoglu (2016). Pixel Recurrent Neural
Networks. ICML.
van den Oord et al. (2016). Conditional Image Generation with PixelCNN
Decoders. NeurIPS.
"""

import keras
import numpy as np
import tensorflow as tf

FIRST_KERNEL_SIZE = 7
KERNEL_SIZE = 3


def causal_mask(kernel_size, mask_type):
  """The `[k, k, 1, 1]` float32 mask of a masked convolution.

  Args:
    kernel_size: odd side k of the square kernel.
    mask_type: `A` hides the centre tap, `B` keeps it.

  Returns:
    numpy array: 1 above the centre row and left of the centre on its row
    (and at the centre for `B`), 0 elsewhere.
  """
  if mask_type not in ("A", "B"):
    raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}.")
  centre = kernel_size // 2
  mask = np.zeros((kernel_size, kernel_size, 1, 1), np.float32)
  mask[:centre] = 1.0
  mask[centre, :centre + (mask_type == "B")] = 1.0
  return mask


class MaskedConv2D(keras.layers.Layer):
  """A stride-1 `same` convolution whose kernel is multiplied by a causal mask.

  Args:
    filters: output channels.
    kernel_size: odd side of the square kernel.
    mask_type: `A` (first layer) or `B`.
  """

  def __init__(self, filters, kernel_size, mask_type, **kwargs):
    super().__init__(**kwargs)
    if kernel_size % 2 != 1:
      raise ValueError(f"kernel_size must be odd, got {kernel_size}.")
    self.filters = filters
    self.kernel_size = kernel_size
    self.mask_type = mask_type
    self.mask = causal_mask(kernel_size, mask_type)

  def build(self, input_shape):
    self.kernel = self.add_weight(
        name="kernel", shape=(self.kernel_size, self.kernel_size,
                              int(input_shape[-1]), self.filters),
        initializer="glorot_uniform")
    self.bias = self.add_weight(name="bias", shape=(self.filters,),
                                initializer="zeros")

  def call(self, inputs):
    """Args: inputs: `[batch, h, w, c]`. Returns: `[batch, h, w, filters]`
    in the layer's compute dtype."""
    # The kernel is read in the compute dtype (Keras autocasts it).
    kernel = tf.convert_to_tensor(self.kernel) * tf.cast(self.mask,
                                                         self.compute_dtype)
    return tf.nn.conv2d(inputs, kernel, 1, "SAME") + self.bias


class PixelCNN(keras.Model):
  """Autoregressive categorical model of `[h, w]` grids of code indices.

  A type-A 7x7 masked convolution, `num_layers - 1` residual type-B 3x3
  masked convolutions (all with `channels` outputs and ReLU), then a 1x1
  convolution to `num_categories` logits per position.

  Args:
    num_categories: K, the number of code values.
    num_layers: masked convolution layers (>= 1).
    channels: hidden channels.
  """

  def __init__(self, num_categories, num_layers, channels, **kwargs):
    super().__init__(**kwargs)
    self.num_categories = num_categories
    self.first = MaskedConv2D(channels, FIRST_KERNEL_SIZE, "A", name="conv_a")
    self.hidden = [MaskedConv2D(channels, KERNEL_SIZE, "B", name=f"conv_b{i}")
                   for i in range(num_layers - 1)]
    self.head = keras.layers.Conv2D(num_categories, 1, name="logits")

  def logits_from_one_hot(self, one_hot):
    """Logits from one-hot (or any real-valued) `[batch, h, w, K]` inputs.

    Returns:
      `[batch, h, w, K]` float32 logits (whatever the layers' compute
      dtype); position p depends on inputs before p only.
    """
    h = tf.nn.relu(self.first(one_hot))
    for layer in self.hidden:
      h = h + tf.nn.relu(layer(h))
    return tf.cast(self.head(h), tf.float32)

  def call(self, indices):
    """Args: indices: `[batch, h, w]` int32. Returns: `[batch, h, w, K]`
    float32 logits."""
    return self.logits_from_one_hot(
        tf.one_hot(indices, self.num_categories, dtype=tf.float32))

  def log_prob(self, indices):
    """`[batch]` log p(indices) = sum_p log p(k_p | k_<p)."""
    logits = self(indices)
    log_probs = -tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=indices, logits=logits)
    return tf.reduce_sum(log_probs, axis=[1, 2])

  def sample_from_uniform(self, uniform, grid_shape):
    """Draws grids position by position in raster order (unrolled loop).

    Each step runs the network on the grid drawn so far and picks the
    category at the step's position by inverse CDF: the number of entries
    of cumsum(softmax(logits)) below the position's uniform. Only TFLite
    built-in ops (SOFTMAX, CUMSUM, LESS, CAST, SUM, ONE_HOT, ...).

    Args:
      uniform: `[n, h * w]` float32 draws in (0, 1), one per position.
      grid_shape: `(h, w)` Python ints.

    Returns:
      `[n, h, w]` int32 code indices.
    """
    height, width = grid_shape
    size = height * width
    n = tf.shape(uniform)[0]
    flat = tf.zeros([n, size], tf.int32)
    for position in range(size):
      row, column = divmod(position, width)
      grid = tf.reshape(flat, [n, height, width])
      logits = self(grid)[:, row, column, :]
      cdf = tf.cumsum(tf.nn.softmax(logits), axis=-1)
      below = tf.cast(cdf < uniform[:, position:position + 1], tf.int32)
      category = tf.minimum(tf.reduce_sum(below, axis=-1),
                            self.num_categories - 1)
      # Positions not drawn yet hold 0, so adding writes this one.
      flat = flat + category[:, None] * tf.one_hot(position, size,
                                                   dtype=tf.int32)[None, :]
    return tf.reshape(flat, [n, height, width])
