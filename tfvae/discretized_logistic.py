"""The mixture of discretized logistics over 8-bit pixels (PixelCNN++).

Each pixel of an `[H, W, C]` image of 8-bit values v in {0, ..., 255} has a
mixture of K components. Within component k the channels are discretized
logistics with location `mu_c`, log-scale `log_s_c`, and for c > 0 a location
that depends linearly on the pixel's earlier channels (for RGB, green on red
and blue on red and green, Salimans et al. 2017, eq. 3):

    m_c = mu_c + sum_{j < c} coefficient_(c, j) * x_j

with x_j the value of channel j on the [-1, 1] scale x = 2 v / 255 - 1. The
probability of value v in one channel is the logistic's mass over the bin
[x - 1/255, x + 1/255], the two edge bins extending to -inf (v = 0) and
+inf (v = 255), so the 256 values of a channel sum to 1 whatever the
location and scale, and the pixel's joint over its 256^C values (a product
of such conditionals per component, averaged over components) does too.
`log_prob` is therefore the exact log-probability of the 8-bit image, and
its bits per dimension are discrete bits per subpixel, comparable with the
literature (no continuous-density correction applies).

Interior bins use log(sigmoid(a) - sigmoid(b)) =
log sigmoid(a) + log sigmoid(-b) + log(1 - exp(-(a - b))), exact in float32
in the tails where the difference of the sigmoids underflows (where
PixelCNN++ falls back to the density at the bin's mid-point).

The decoder's `[..., H, W, P]` outputs, P = K (1 + 2 C + C (C - 1) / 2)
(10 K for RGB, 3 K for grey), are read as consecutive blocks: K mixture
logits, C K locations, C K log-scales (floored at -7, as in PixelCNN++) and
C (C - 1) / 2 K coefficients (tanh, in (-1, 1)); within a block entry
`c * K + k` belongs to channel (or coefficient) c and component k.
Coefficients are ordered (1, 0), (2, 0), (2, 1), ... (for RGB: green on red,
blue on red, blue on green).

#### References
Salimans, Karpathy, Chen & Kingma (2017). PixelCNN++: Improving the PixelCNN
with Discretized Logistic Mixture Likelihood and Other Modifications. ICLR.
"""

import math

import tensorflow as tf

# Largest 8-bit value; bins are [x - 1/255, x + 1/255] on the [-1, 1] scale.
MAX_VALUE = 255
_HALF_BIN = 1.0 / MAX_VALUE
# Log-scales are floored here (PixelCNN++): the largest probability of one
# value is then sigmoid(4.3) - sigmoid(-4.3) = 0.973 (0.027 nats).
MIN_LOG_SCALE = -7.0
# Below this bin width in logistic units, log(1 - exp(-d)) = log d - d / 2
# to float32 precision.
_SMALL_WIDTH = 1e-4


def num_coefficients(channels):
  """Channel-dependence coefficients per component: C (C - 1) / 2."""
  return channels * (channels - 1) // 2


def num_parameters(num_mixtures, channels):
  """Decoder outputs per pixel: K (1 + 2 C + C (C - 1) / 2)."""
  return num_mixtures * (1 + 2 * channels + num_coefficients(channels))


def coefficient_index(channel, earlier):
  """Position of coefficient (channel, earlier < channel) in its block."""
  return num_coefficients(channel) + earlier


def split_parameters(outputs, num_mixtures, channels):
  """Decoder outputs -> the mixture's constrained parameters.

  Args:
    outputs: `[..., H, W, P]` float, P = `num_parameters(K, C)`.
    num_mixtures: K.
    channels: C.

  Returns:
    Dict: `logits` `[..., H, W, K]` mixture logits; `loc` and `log_scale`
    `[..., H, W, C, K]` on the [-1, 1] scale (log-scales >= -7); and, for
    C > 1, `coefficients` `[..., H, W, C (C - 1) / 2, K]` in (-1, 1).
  """
  k = num_mixtures
  lead = tf.shape(outputs)[:-1]

  def block(start, rows):
    values = outputs[..., start:start + rows * k]
    return tf.reshape(values, tf.concat([lead, [rows, k]], axis=0))

  params = {
      "logits": outputs[..., :k],
      "loc": block(k, channels),
      "log_scale": tf.maximum(block(k + channels * k, channels),
                              MIN_LOG_SCALE),
  }
  if channels > 1:
    params["coefficients"] = tf.tanh(block(k + 2 * channels * k,
                                           num_coefficients(channels)))
  return params


def to_values(x):
  """`[...]` images in [0, 1] -> the nearest 8-bit values v, as floats."""
  return tf.clip_by_value(tf.round(x * MAX_VALUE), 0.0, MAX_VALUE)


def _log1mexp(width, log_width):
  """log(1 - exp(-width)) for width > 0, finite however small width is.

  Args:
    width: positive tensor.
    log_width: `log(width)`, computed without underflow.
  """
  small = width < _SMALL_WIDTH
  safe = tf.where(small, tf.ones_like(width), width)
  return tf.where(small, log_width - 0.5 * width,
                  tf.math.log(-tf.math.expm1(-safe)))


def bin_log_prob(values, loc, log_scale):
  """log P(v) of 8-bit values under discretized logistics.

  Args:
    values: 8-bit values v in {0, ..., 255} (floats), broadcastable with
      `loc`.
    loc: locations on the [-1, 1] scale.
    log_scale: log-scales on the [-1, 1] scale, same shape as `loc`.

  Returns:
    The log-probabilities, the broadcast shape; finite for any finite
    parameters.
  """
  x = values * (2.0 / MAX_VALUE) - 1.0
  inv_scale = tf.exp(-log_scale)
  centred = x - loc
  upper = inv_scale * (centred + _HALF_BIN)
  lower = inv_scale * (centred - _HALF_BIN)
  # log sigmoid(upper): the whole mass below the bin's upper edge.
  log_cdf_upper = -tf.nn.softplus(-upper)
  # log (1 - sigmoid(lower)): the whole mass above the bin's lower edge.
  log_sf_lower = -tf.nn.softplus(lower)
  log_width = math.log(2.0 * _HALF_BIN) - log_scale
  width = tf.exp(log_width)  # upper - lower, without cancellation.
  log_interior = log_cdf_upper + log_sf_lower + _log1mexp(width, log_width)
  return tf.where(values <= 0.0, log_cdf_upper,
                  tf.where(values >= MAX_VALUE, log_sf_lower, log_interior))


def _channel_locations(params, x, channels):
  """`[..., C, K]` locations m_c = mu_c + sum_j coefficient_cj x_j.

  Args:
    params: `split_parameters`' dict.
    x: `[..., C]` the values of the channels on the [-1, 1] scale
      (broadcastable with the parameters' leading axes).
    channels: C.
  """
  loc = params["loc"]
  if channels == 1:
    return loc
  x = x[..., None]
  coefficients = params["coefficients"]
  # Row 0 is broadcast to the data's leading axes like the other rows.
  rows = [loc[..., 0, :] + 0.0 * x[..., 0, :]]
  for c in range(1, channels):
    row = loc[..., c, :]
    for j in range(c):
      row += coefficients[..., coefficient_index(c, j), :] * x[..., j, :]
    rows.append(row)
  return tf.stack(rows, axis=-2)


class DiscretizedLogisticMixture:
  """p(x|z): independent pixels, each a mixture of discretized logistics.

  Args:
    params: `split_parameters`' dict, `[..., H, W, ...]` tensors.
    channels: C.
  """

  def __init__(self, params, channels):
    self.params = params
    self.channels = channels

  def pixel_log_prob(self, x):
    """`[..., H, W]` log p of each pixel of `x` `[..., H, W, C]` in [0, 1].

    `x` is read as the nearest 8-bit values v / 255.
    """
    values = to_values(x)
    scaled = values * (2.0 / MAX_VALUE) - 1.0
    loc = _channel_locations(self.params, scaled, self.channels)
    log_bins = bin_log_prob(values[..., None], loc, self.params["log_scale"])
    log_weights = tf.nn.log_softmax(self.params["logits"], axis=-1)
    return tf.reduce_logsumexp(
        log_weights + tf.reduce_sum(log_bins, axis=-2), axis=-1)

  def log_prob(self, x):
    """`[...]` log p(x) of images `x` `[..., H, W, C]`, summed over pixels."""
    return tf.reduce_sum(self.pixel_log_prob(x), axis=[-2, -1])


def _softplus(x):
  """softplus with TFLite built-in ops (MAXIMUM, ABS, EXP, LOG)."""
  return tf.maximum(x, 0.0) + tf.math.log(1.0 + tf.exp(-tf.abs(x)))


def _clipped_mean(loc, scale):
  """E[clip(X, -1, 1)] of X ~ Logistic(loc, scale), in closed form.

  E[clip(X, a, b)] = loc + s (softplus((a - loc) / s)
  - softplus((loc - b) / s)).
  """
  value = loc + scale * (_softplus((-1.0 - loc) / scale)
                         - _softplus((loc - 1.0) / scale))
  return tf.clip_by_value(value, -1.0, 1.0)


def mean(params, channels):
  """`[..., H, W, C]` the 8-bit image nearest the mixture's mean, in [0, 1].

  Per component, each channel's value is the mean of its logistic clipped to
  the 8-bit range (the continuous counterpart of the discretized mean),
  with the earlier channels' own means in the channel dependence; these are
  averaged over the components with the mixture weights and rounded to the
  nearest v / 255. Built from TFLite built-in ops only.

  Args:
    params: `split_parameters`' dict.
    channels: C.
  """
  weights = tf.nn.softmax(params["logits"], axis=-1)
  scale = tf.exp(params["log_scale"])
  loc, coefficients = params["loc"], params.get("coefficients")
  expected = []  # Per channel, `[..., H, W, K]` on the [-1, 1] scale.
  for c in range(channels):
    location = loc[..., c, :]
    for j in range(c):
      location += (coefficients[..., coefficient_index(c, j), :]
                   * expected[j])
    expected.append(_clipped_mean(location, scale[..., c, :]))
  pixel = tf.stack([tf.reduce_sum(weights * e, axis=-1) for e in expected],
                   axis=-1)
  values = tf.round((pixel + 1.0) * (MAX_VALUE / 2.0))
  return tf.clip_by_value(values, 0.0, MAX_VALUE) / MAX_VALUE
