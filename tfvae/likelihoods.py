"""Likelihood heads: decoder outputs -> named parameters of p(x|z).

A head turns the decoder's unconstrained `[batch, H, W, C]` output into a
dict of parameter tensors (what export signatures return) plus the pixel
means, and builds the TFP distribution from those parameters.
"""

import math

import keras
import tensorflow as tf

from tfvae import distributions

_MIN_SCALE = 1e-3


class BernoulliLikelihood(keras.layers.Layer):
  """Independent Bernoulli pixels parameterized by logits."""

  def call(self, outputs):
    """Args: outputs: `[batch, H, W, C]`. Returns: `{'logits'}`, same shape."""
    return {"logits": outputs}

  def mean(self, params):
    """`[batch, H, W, C]` pixel means in [0, 1]."""
    return tf.sigmoid(params["logits"])

  def distribution(self, params):
    return distributions.bernoulli_image(params["logits"])


class GaussianLikelihood(keras.layers.Layer):
  """Independent Gaussian pixels with sigmoid means and a per-pixel scale.

  Args:
    data_shape: `(H, W, C)`.
    scale: the fixed scale, or the initial scale when learned.
    learn_scale: learn one scale per pixel.
  """

  def __init__(self, data_shape, scale, learn_scale=False, **kwargs):
    super().__init__(**kwargs)
    self.data_shape = tuple(data_shape)
    self.learn_scale = learn_scale
    self.initial_scale = scale
    if learn_scale:
      # softplus(raw) + min = scale at initialization.
      raw = math.log(math.expm1(scale - _MIN_SCALE))
      self.raw_scale = self.add_weight(
          name="raw_scale", shape=self.data_shape,
          initializer=keras.initializers.Constant(raw))

  def pixel_scale(self):
    """`[H, W, C]` positive standard deviations."""
    if self.learn_scale:
      return tf.nn.softplus(self.raw_scale) + _MIN_SCALE
    return tf.fill(self.data_shape, tf.constant(self.initial_scale,
                                                 tf.float32))

  def call(self, outputs):
    """Args: outputs: `[batch, H, W, C]`. Returns: `{'loc', 'scale'}`."""
    loc = tf.sigmoid(outputs)
    return {"loc": loc,
            "scale": tf.broadcast_to(self.pixel_scale(), tf.shape(loc))}

  def mean(self, params):
    return params["loc"]

  def distribution(self, params):
    return distributions.gaussian_image(params["loc"], params["scale"])


def build_likelihood(config, data_shape):
  """The head for `config.likelihood` (`bernoulli` or `gaussian`)."""
  if config.likelihood == "gaussian":
    return GaussianLikelihood(data_shape, config.gaussian_scale,
                              config.learn_gaussian_scale, name="likelihood")
  return BernoulliLikelihood(name="likelihood")
