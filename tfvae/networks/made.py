"""MADE: a masked autoencoder whose outputs are autoregressive in its inputs.

Written in Keras 3 (`tfb.AutoregressiveNetwork` is built on `tf_keras` and
does not work with Keras 3). Every Dense kernel is multiplied by a fixed
binary mask so that output i depends only on inputs that come before i in
`ordering`; the masked products are plain MatMul/Mul/Add ops, so a MADE
exports to SavedModel and converts to TFLite built-in ops.

Degrees (Germain et al. 2015): input j has degree `ordering[j]` in 1..d;
hidden unit k of every layer gets a degree in 1..d-1 (cycled); a hidden unit
sees the inputs/units of degree <= its own, and an output of degree i sees
hidden units of degree < i. Hence d out_i / d in_j = 0 unless
`ordering[j] < ordering[i]`.

#### References
Germain, Gregor, Murray & Larochelle (2015). MADE: Masked Autoencoder for
Distribution Estimation. ICML.
Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling (2016). Improved
Variational Inference with Inverse Autoregressive Flow. NeurIPS.
"""

import keras
import numpy as np
import tensorflow as tf


def made_masks(ordering, hidden_dims):
  """The binary masks of a MADE.

  Args:
    ordering: length-d sequence, a permutation of 1..d: the degree (position
      in the autoregressive order) of each input.
    hidden_dims: widths of the hidden layers.

  Returns:
    `(hidden_masks, output_mask)`: a list of `[fan_in, width]` float32
    arrays, one per hidden layer, and the `[last_width, d]` mask of one
    output head (every head uses the same mask).
  """
  input_degrees = np.asarray(ordering, np.int64)
  d = input_degrees.size
  if sorted(input_degrees.tolist()) != list(range(1, d + 1)):
    raise ValueError(f"ordering must be a permutation of 1..{d}, got "
                     f"{list(ordering)}.")
  hidden_masks = []
  previous = input_degrees
  for width in hidden_dims:
    degrees = np.arange(width) % max(1, d - 1) + 1
    hidden_masks.append(
        (degrees[None, :] >= previous[:, None]).astype(np.float32))
    previous = degrees
  output_mask = (input_degrees[None, :] > previous[:, None]).astype(np.float32)
  return hidden_masks, output_mask


class MADE(keras.layers.Layer):
  """An autoregressive network giving a shift and a log-scale per dimension.

  Args:
    event_dim: d, the size of the last input axis.
    hidden_dims: widths of the masked hidden layers.
    ordering: the autoregressive order, a permutation of 1..d (default:
      1..d, i.e. the natural order); `'reversed'` means d..1.
    activation: hidden activation.
    log_scale_bias: initial bias of the log-scale head (an IAF initializes
      it positive so that each layer starts close to the identity).
  """

  def __init__(self, event_dim, hidden_dims=(64, 64), ordering=None,
               activation="relu", log_scale_bias=0.0, **kwargs):
    super().__init__(**kwargs)
    self.event_dim = int(event_dim)
    self.hidden_dims = tuple(int(h) for h in hidden_dims)
    if ordering is None:
      ordering = np.arange(1, self.event_dim + 1)
    elif isinstance(ordering, str) and ordering == "reversed":
      ordering = np.arange(self.event_dim, 0, -1)
    self.ordering = np.asarray(ordering, np.int64)
    self.activation = keras.activations.get(activation)
    hidden_masks, output_mask = made_masks(self.ordering, self.hidden_dims)
    self._hidden_masks = tuple(hidden_masks)
    # Both heads (shift, log-scale) share the mask: [last_width, 2 * d].
    self._output_mask = np.concatenate([output_mask] * 2, axis=1)
    self.hidden_kernels = []
    self.hidden_biases = []
    fan_in = self.event_dim
    for i, width in enumerate(self.hidden_dims):
      self.hidden_kernels.append(self.add_weight(
          name=f"kernel_{i}", shape=(fan_in, width),
          initializer="glorot_uniform"))
      self.hidden_biases.append(self.add_weight(
          name=f"bias_{i}", shape=(width,), initializer="zeros"))
      fan_in = width
    self.output_kernel = self.add_weight(
        name="output_kernel", shape=(fan_in, 2 * self.event_dim),
        initializer=keras.initializers.RandomNormal(stddev=0.01))
    bias = np.concatenate([np.zeros(self.event_dim, np.float32),
                           np.full(self.event_dim, log_scale_bias, np.float32)])
    self.output_bias = self.add_weight(
        name="output_bias", shape=(2 * self.event_dim,),
        initializer=keras.initializers.Constant(bias))
    self.built = True

  def call(self, inputs):
    """Shift and log-scale, autoregressive in `inputs`.

    Args:
      inputs: `[batch, d]`.

    Returns:
      `(shift, log_scale)`, each `[batch, d]` float32 (whatever the layer's
      compute dtype); element i depends only on the inputs j with
      `ordering[j] < ordering[i]`.
    """
    h = inputs
    # Variables read here are in the compute dtype (Keras autocasts them).
    dtype = self.compute_dtype
    for kernel, bias, mask in zip(self.hidden_kernels, self.hidden_biases,
                                  self._hidden_masks):
      kernel = tf.convert_to_tensor(kernel) * tf.cast(mask, dtype)
      h = self.activation(tf.matmul(h, kernel) + bias)
    out = tf.matmul(h, tf.convert_to_tensor(self.output_kernel)
                    * tf.cast(self._output_mask, dtype))
    out = tf.cast(out + self.output_bias, tf.float32)
    return out[:, :self.event_dim], out[:, self.event_dim:]

  def compute_output_shape(self, input_shape):
    return tuple(input_shape), tuple(input_shape)
