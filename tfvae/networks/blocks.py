"""Layer stacks shared by the MLP and convolutional networks."""

import keras

# PyTorch's nn.LeakyReLU default, as in PyTorch-VAE's VanillaVAE.
LEAKY_RELU_SLOPE = 0.01


def activation_layer(name):
  """A Keras activation layer for `relu` or `leaky_relu`."""
  if name == "leaky_relu":
    return keras.layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE)
  return keras.layers.Activation(name)


def dense_stack(widths, activation, batch_norm, dropout, name=None):
  """Hidden Dense layers, each followed by [BatchNorm], activation, [Dropout].

  Args:
    widths: the layer widths, input side first.
    activation: `relu` or `leaky_relu`.
    batch_norm: insert BatchNormalization before each activation.
    dropout: dropout rate after each activation; 0 disables it.
    name: the stack's name.

  Returns:
    A `keras.Sequential` (a container, so checkpoints track every layer's
    variables, batch-norm statistics included; a plain list is not tracked).
  """
  layers = []
  for width in widths:
    layers.append(keras.layers.Dense(width, use_bias=not batch_norm))
    if batch_norm:
      layers.append(keras.layers.BatchNormalization())
    layers.append(activation_layer(activation))
    if dropout > 0:
      layers.append(keras.layers.Dropout(dropout))
  return keras.Sequential(layers, name=name)
