"""Likelihood heads: decoder outputs -> named parameters of p(x|z).

A head turns the decoder's unconstrained output (`parameter_shape`, per
example) into a dict of parameter tensors (what export signatures return)
plus the data-space means, and builds the TFP distribution from those
parameters. It also says what the encoder reads (`features`), which is the
data itself except for tables, whose categories become one-hot vectors and
whose continuous columns are standardized.

Heads: `bernoulli` (binary pixels), `gaussian` (a continuous density),
`discretized_logistic` (8-bit pixels, `tfvae.discretized_logistic`) and
`tabular` (one family per column).

Data are images `[batch, H, W, C]` or vectors `[batch, D]`. Heads are
float32 layers under any mixed-precision policy (`build_likelihood`).
"""

import math

import keras
import numpy as np
import tensorflow as tf

from tfvae import discretized_logistic
from tfvae import distributions
from tfvae.errors import ConfigError

_MIN_SCALE = 1e-3


class _Likelihood(keras.layers.Layer):
  """A likelihood head: `call` (decoder outputs -> parameters), `mean`,
  `distribution` (parameters -> a distribution over one example) and
  `log_prob`."""

  def log_prob(self, params, x):
    """`[...]` log p(x) under `distribution(params)`; heads override it
    with a direct computation of the same value.

    Args:
      params: `call`'s output, each `[..., *parameter event shape]`.
      x: `[..., *data_shape]`, broadcastable against the parameters.
    """
    return self.distribution(params).log_prob(x)


class _ElementwiseLikelihood(_Likelihood):
  """One parameter per data entry; the encoder reads the data as they are.

  Args:
    data_shape: `(H, W, C)` or `(D,)`.
  """

  def __init__(self, data_shape, **kwargs):
    super().__init__(**kwargs)
    self.data_shape = tuple(data_shape)
    self.event_ndims = len(self.data_shape)

  @property
  def parameter_shape(self):
    """Per-example shape of the decoder output this head reads."""
    return self.data_shape

  @property
  def feature_shape(self):
    """Per-example shape of `features(x)`."""
    return self.data_shape

  def features(self, x):
    """What the encoder reads: `x` itself."""
    return x


class BernoulliLikelihood(_ElementwiseLikelihood):
  """Independent Bernoulli pixels (or vector entries) parameterized by logits.

  Args:
    data_shape: `(H, W, C)` or `(D,)`.
  """

  def __init__(self, data_shape=(1, 1, 1), **kwargs):
    super().__init__(data_shape, **kwargs)

  def call(self, outputs):
    """Args: outputs: `[batch, ...]`. Returns: `{'logits'}`, same shape."""
    return {"logits": outputs}

  def mean(self, params):
    """`[batch, ...]` means in [0, 1]."""
    return tf.sigmoid(params["logits"])

  def distribution(self, params):
    return distributions.bernoulli_image(params["logits"], self.event_ndims)

  def log_prob(self, params, x):
    return distributions.bernoulli_log_prob(params["logits"], x,
                                            self.event_ndims)


class GaussianLikelihood(_ElementwiseLikelihood):
  """Independent Gaussian pixels (or vector entries) with a per-entry scale.

  Means of images are sigmoids (pixels lie in [0, 1]); means of vectors are
  the decoder's outputs as they are.

  Args:
    data_shape: `(H, W, C)` or `(D,)`.
    scale: the fixed scale, or the initial scale when learned.
    learn_scale: learn one scale per pixel.
  """

  def __init__(self, data_shape, scale, learn_scale=False, **kwargs):
    super().__init__(data_shape, **kwargs)
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
    """Args: outputs: `[batch, ...]`. Returns: `{'loc', 'scale'}`."""
    loc = tf.sigmoid(outputs) if self.event_ndims == 3 else outputs
    return {"loc": loc,
            "scale": tf.broadcast_to(self.pixel_scale(), tf.shape(loc))}

  def mean(self, params):
    return params["loc"]

  def distribution(self, params):
    return distributions.gaussian_image(params["loc"], params["scale"],
                                        self.event_ndims)

  def log_prob(self, params, x):
    # params["scale"] is `pixel_scale()` broadcast over the batch; the
    # unbroadcast one keeps log(scale) to one [H, W, C] pass.
    return distributions.gaussian_log_prob(params["loc"], self.pixel_scale(),
                                           x, self.event_ndims)


class DiscretizedLogisticLikelihood(_Likelihood):
  """8-bit pixels, each a mixture of K discretized logistics (PixelCNN++).

  `log_prob` is the exact log-probability of the 8-bit values v = 255 x of
  images x in [0, 1] (`tfvae.discretized_logistic`), so bits per dimension
  are discrete bits per subpixel. The mean is an 8-bit image: the
  mixture's mean (each component's logistics clipped to the 8-bit range,
  channels chained through the channel dependence) rounded to the nearest
  v / 255.

  Args:
    data_shape: `(H, W, C)`.
    num_mixtures: K components per pixel.
  """

  def __init__(self, data_shape, num_mixtures=1, **kwargs):
    super().__init__(**kwargs)
    self.data_shape = tuple(data_shape)
    self.event_ndims = 3
    self.num_mixtures = num_mixtures
    self.channels = self.data_shape[-1]

  @property
  def parameter_shape(self):
    """`(H, W, K (1 + 2 C + C (C - 1) / 2))`: 10 K outputs per RGB pixel,
    3 K per grey pixel."""
    height, width, _ = self.data_shape
    return (height, width, discretized_logistic.num_parameters(
        self.num_mixtures, self.channels))

  @property
  def feature_shape(self):
    return self.data_shape

  def features(self, x):
    """What the encoder reads: `x` itself."""
    return x

  def call(self, outputs):
    """Args: outputs: `[batch, H, W, P]`.

    Returns:
      `{'logits'}` `[batch, H, W, K]`, `{'loc', 'log_scale'}`
      `[batch, H, W, C, K]` on the [-1, 1] scale and, for C > 1,
      `coefficients` `[batch, H, W, C (C - 1) / 2, K]`.

    Raises:
      ConfigError: a decoder that does not give `parameter_shape` outputs.
    """
    wanted = self.parameter_shape[-1]
    if outputs.shape[-1] is not None and outputs.shape[-1] != wanted:
      raise ConfigError(
          f"--likelihood=discretized_logistic with --logistic_mixtures="
          f"{self.num_mixtures} reads {wanted} decoder outputs per pixel, but "
          f"this model's decoder gives {outputs.shape[-1]}; use it with a "
          "Gaussian-latent model (e.g. --model=vae).")
    return discretized_logistic.split_parameters(outputs, self.num_mixtures,
                                                 self.channels)

  def mean(self, params):
    """`[batch, H, W, C]` 8-bit-valid images v / 255."""
    return discretized_logistic.mean(params, self.channels)

  def distribution(self, params):
    return discretized_logistic.DiscretizedLogisticMixture(params,
                                                           self.channels)


class TabularLikelihood(_Likelihood):
  """One likelihood per table column, on raw (unstandardized) values.

  Continuous columns are Gaussians whose decoder output is the standardized
  mean, `loc = mean + std * output`, with one learned standardized scale
  per column (`scale = std * softplus(raw) + ...`), so log-probabilities are
  densities of the raw values. Binary columns are Bernoullis (one logit),
  categorical columns categoricals over their vocabulary (K logits); the
  row holds the category id. The encoder reads standardized continuous
  values, binary values and one-hot categories.

  Args:
    columns: the `tfvae.data.columns.Column`s, in row order.
  """

  def __init__(self, columns, **kwargs):
    super().__init__(**kwargs)
    self.columns = tuple(columns)
    self.data_shape = (len(self.columns),)
    self.event_ndims = 1
    kinds = [c.kind for c in self.columns]
    self.continuous = [i for i, k in enumerate(kinds) if k == "continuous"]
    self.binary = [i for i, k in enumerate(kinds) if k == "binary"]
    self.categorical = [i for i, k in enumerate(kinds) if k == "categorical"]
    # Offsets of each column's outputs in the decoder's parameter vector.
    sizes = [c.num_parameters for c in self.columns]
    self.offsets = [int(o) for o in np.cumsum([0] + sizes)]
    self.column_mean = tf.constant(
        [self.columns[i].mean for i in self.continuous], tf.float32)
    self.column_std = tf.constant(
        [self.columns[i].std for i in self.continuous], tf.float32)
    if self.continuous:
      self.raw_scale = self.add_weight(
          name="raw_scale", shape=(len(self.continuous),),
          initializer=keras.initializers.Constant(
              math.log(math.expm1(1.0 - _MIN_SCALE))))
    self.built = True

  @property
  def parameter_shape(self):
    return (self.offsets[-1],)

  @property
  def feature_shape(self):
    return (sum(c.num_features for c in self.columns),)

  def features(self, x):
    """`[batch, D]` raw rows -> `[batch, F]` encoder inputs, column order."""
    parts = []
    for index, column in enumerate(self.columns):
      value = x[..., index:index + 1]
      if column.kind == "continuous":
        value = (value - column.mean) / column.std
      elif column.kind == "categorical":
        value = tf.one_hot(tf.cast(tf.round(value[..., 0]), tf.int32),
                           len(column.categories), dtype=x.dtype)
      parts.append(value)
    return tf.concat(parts, axis=-1)

  def _slice(self, outputs, index):
    return outputs[..., self.offsets[index]:self.offsets[index + 1]]

  def call(self, outputs):
    """Args: outputs `[batch, P]`.

    Returns:
      Dict with, where the table has such columns: `loc`, `scale`
      `[batch, n_continuous]` (raw units), `logits` `[batch, n_binary]`,
      and `logits_<i>`, `probs_<i>` `[batch, K_i]` for categorical column i.
    """
    params = {}
    if self.continuous:
      standardized = tf.concat([self._slice(outputs, i)
                                for i in self.continuous], axis=-1)
      params["loc"] = self.column_mean + self.column_std * standardized
      scale = (tf.nn.softplus(self.raw_scale) + _MIN_SCALE) * self.column_std
      params["scale"] = tf.broadcast_to(scale, tf.shape(standardized))
    if self.binary:
      params["logits"] = tf.concat([self._slice(outputs, i)
                                    for i in self.binary], axis=-1)
    for i in self.categorical:
      logits = self._slice(outputs, i)
      params[f"logits_{i}"] = logits
      params[f"probs_{i}"] = tf.nn.softmax(logits, axis=-1)
    return params

  def mean(self, params):
    """`[batch, D]` point values: Gaussian means, Bernoulli probabilities and
    the most probable category id."""
    values = {}
    for position, i in enumerate(self.continuous):
      values[i] = params["loc"][..., position]
    for position, i in enumerate(self.binary):
      values[i] = tf.sigmoid(params["logits"][..., position])
    for i in self.categorical:
      values[i] = tf.cast(tf.argmax(params[f"logits_{i}"], axis=-1),
                          tf.float32)
    return tf.stack([values[i] for i in range(len(self.columns))], axis=-1)

  def distribution(self, params):
    return distributions.TabularDistribution(
        len(self.columns),
        continuous=((self.continuous, params["loc"], params["scale"])
                    if self.continuous else None),
        binary=(self.binary, params["logits"]) if self.binary else None,
        categorical=[(i, params[f"logits_{i}"]) for i in self.categorical])


def build_likelihood(config, data_shape, columns=None):
  """The head for `config.likelihood`, a float32 layer whatever the global
  Keras dtype policy (likelihoods stay float32 under mixed precision).

  Args:
    config: a `ModelConfig`.
    data_shape: `(H, W, C)` or `(D,)`.
    columns: the vector data's `Column`s (needed by `tabular`).

  Raises:
    ConfigError: `tabular` without columns, `discretized_logistic` without
      images.
  """
  if config.likelihood == "tabular":
    if columns is None or len(data_shape) != 1:
      raise ConfigError(
          "--likelihood=tabular models vectors [N, D] (e.g. --dataset=csv); "
          f"these data are {list(data_shape)}. Use --likelihood=bernoulli or "
          "gaussian.")
    return TabularLikelihood(columns, name="likelihood", dtype="float32")
  if config.likelihood == "discretized_logistic":
    if len(data_shape) != 3:
      raise ConfigError(
          "--likelihood=discretized_logistic models 8-bit images [N, H, W, "
          f"C]; these data are {list(data_shape)}. Use --likelihood=gaussian "
          "or tabular for vectors.")
    return DiscretizedLogisticLikelihood(
        data_shape, config.logistic_mixtures, name="likelihood",
        dtype="float32")
  if config.likelihood == "gaussian":
    return GaussianLikelihood(data_shape, config.gaussian_scale,
                              config.learn_gaussian_scale, name="likelihood",
                              dtype="float32")
  return BernoulliLikelihood(data_shape, name="likelihood", dtype="float32")
