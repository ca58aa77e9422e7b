"""Priors p(z) for Gaussian-latent models, chosen with `--prior`.

A prior is a Keras layer (so its parameters are trained and checkpointed)
with three methods:

- `distribution(model)` -> a `tfd.Distribution` with event shape
  `[latent_dim]` (the model is passed so a VampPrior can run its encoder);
- `uniform_noise_shape()` -> per-sample shape of the uniform noise that
  `sample_from_noise` needs besides `[latent_dim]` standard Normal noise;
- `sample_from_noise(model, normal, uniform)` -> `[n, latent_dim]` samples,
  written in ops TFLite runs, so exported models sample on device.

A prior is a float32 layer whatever the global Keras dtype policy
(`build_prior`), so priors stay float32 under mixed precision; a VampPrior's
components come from the model's encoder, whose outputs are float32.

A prior never stores the model (only receives it as an argument): the model
owns the prior, and a reference back would make Keras/checkpoint tracking
cyclic.

#### References
Tomczak & Welling (2018). VAE with a VampPrior. AISTATS.
Dilokthanakul et al. (2016). Deep Unsupervised Clustering with Gaussian
Mixture Variational Autoencoders. arXiv:1611.02648.
"""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfvae import distributions
from tfvae.errors import ConfigError

tfd = tfp.distributions



class StandardNormalPrior(keras.layers.Layer):
  """p(z) = N(0, I).

  Args:
    latent_dim: size of z.
  """

  def __init__(self, latent_dim, **kwargs):
    super().__init__(**kwargs)
    self.latent_dim = latent_dim

  def distribution(self, model):
    del model
    return distributions.standard_normal(self.latent_dim)

  def uniform_noise_shape(self):
    return (1,)

  def sample_from_noise(self, model, normal, uniform):
    """Args: normal `[n, latent_dim]`, uniform (unused). Returns: normal."""
    del model, uniform
    return normal

  def call(self, inputs):
    return inputs


_PRIOR_CLASSES = {"normal": StandardNormalPrior}


def register_prior(name):
  """Class decorator adding a prior for `--prior=name`."""
  def decorator(cls):
    _PRIOR_CLASSES[name] = cls
    return cls
  return decorator


def categorical_from_uniform(probs, uniform):
  """Inverse-CDF draws of a categorical, in TFLite built-in ops only.

  Args:
    probs: `[K]` probabilities (summing to 1).
    uniform: `[n, 1]` uniform draws in (0, 1).

  Returns:
    `[n]` int32 component indices in [0, K): the number of CDF values below
    each uniform (clipped to K - 1 against rounding of the last CDF value).
  """
  cdf = tf.cumsum(probs)
  below = tf.cast(uniform > cdf[tf.newaxis, :], tf.int32)
  return tf.minimum(tf.reduce_sum(below, axis=-1), tf.size(probs) - 1)


def _mixture_of_diagonal_normals(logits, loc, scale):
  """`tfd.MixtureSameFamily` of K diagonal Normals.

  Args:
    logits: `[K]` mixture logits.
    loc: `[K, latent_dim]` component means.
    scale: `[K, latent_dim]` component standard deviations.

  Returns:
    A distribution with event shape `[latent_dim]`.
  """
  return tfd.MixtureSameFamily(
      mixture_distribution=tfd.Categorical(logits=logits),
      components_distribution=distributions.diagonal_normal(loc, scale))


@register_prior("mixture")
class MixtureOfGaussiansPrior(keras.layers.Layer):
  """p(z) = sum_k pi_k N(z; mu_k, diag(sigma_k^2)), all learned.

  Logits start at 0 (equal weights), means ~ N(0, 1) and scales at 1
  (sigma = softplus(raw)).

  Args:
    config: a `ModelConfig` (`latent_dim`, `prior_components` = K).
    data_shape: unused.
  """

  def __init__(self, config, data_shape, **kwargs):
    super().__init__(**kwargs)
    del data_shape
    self.latent_dim = config.latent_dim
    self.num_components = config.prior_components
    shape = (self.num_components, self.latent_dim)
    self.logits = self.add_weight(name="logits", shape=(self.num_components,),
                                  initializer="zeros")
    self.loc = self.add_weight(
        name="loc", shape=shape,
        initializer=keras.initializers.RandomNormal(stddev=1.0))
    self.raw_scale = self.add_weight(
        name="raw_scale", shape=shape,
        initializer=keras.initializers.Constant(math.log(math.expm1(1.0))))
    self.built = True

  def mixture_parameters(self):
    """`(logits [K], loc [K, latent_dim], scale [K, latent_dim])` tensors."""
    return (tf.convert_to_tensor(self.logits), tf.convert_to_tensor(self.loc),
            tf.nn.softplus(self.raw_scale) + 1e-5)

  def distribution(self, model):
    del model
    return _mixture_of_diagonal_normals(*self.mixture_parameters())

  def uniform_noise_shape(self):
    return (1,)

  def sample_from_noise(self, model, normal, uniform):
    """Samples of p(z) from external noise (TFLite built-in ops).

    Args:
      model: unused.
      normal: `[n, latent_dim]` standard Normal draws.
      uniform: `[n, 1]` uniform draws in (0, 1), choosing the component.

    Returns:
      `[n, latent_dim]` samples.
    """
    del model
    logits, loc, scale = self.mixture_parameters()
    component = categorical_from_uniform(tf.nn.softmax(logits), uniform)
    return (tf.gather(loc, component) + tf.gather(scale, component) * normal)

  def call(self, inputs):
    return inputs


@register_prior("vamp")
class VampPrior(keras.layers.Layer):
  """The VampPrior: p(z) = 1/K sum_k q(z | u_k), u_k learned pseudo-inputs.

  The K pseudo-inputs are images `u = sigmoid(raw)` (so they stay in
  [0, 1]), `raw` initialized ~ N(0, 0.5^2) (pixels near 0.5). The mixture's
  components are the model's own posterior at the pseudo-inputs,
  `model.encode(u)`, so the prior and encoder are trained jointly. The model
  must have its encoder built (`build_from_shape`) before training; a first
  call builds it anyway, since `encode` does not use the prior.

  Args:
    config: a `ModelConfig` (`latent_dim`, `prior_components` = K).
    data_shape: `(H, W, C)` of the pseudo-inputs.
  """

  def __init__(self, config, data_shape, **kwargs):
    super().__init__(**kwargs)
    self.latent_dim = config.latent_dim
    self.num_components = config.prior_components
    self.data_shape = tuple(data_shape)
    self.raw_pseudo_inputs = self.add_weight(
        name="raw_pseudo_inputs",
        shape=(self.num_components,) + self.data_shape,
        initializer=keras.initializers.RandomNormal(stddev=0.5))
    self.built = True

  def pseudo_inputs(self):
    """`[K, H, W, C]` pseudo-inputs in [0, 1]."""
    return tf.sigmoid(self.raw_pseudo_inputs)

  def components(self, model):
    """`(loc, scale)`, each `[K, latent_dim]`: q(z|u_k) of every u_k.

    Raises:
      ConfigError: for a conditional model (its q(z|x, y) needs labels).
    """
    if getattr(model, "conditional", False):
      raise ConfigError(
          f"--prior=vamp needs an unconditional model; --model="
          f"{model.config.model} encodes with labels. Use --prior=mixture.")
    params = model.encode(self.pseudo_inputs(), labels=None)
    return params["loc"], params["scale"]

  def distribution(self, model):
    loc, scale = self.components(model)
    logits = tf.zeros([self.num_components], loc.dtype)
    return _mixture_of_diagonal_normals(logits, loc, scale)

  def uniform_noise_shape(self):
    return (1,)

  def sample_from_noise(self, model, normal, uniform):
    """Samples of p(z): a uniformly chosen component, then loc + scale * eps.

    Args:
      model: the model whose encoder defines the components.
      normal: `[n, latent_dim]` standard Normal draws.
      uniform: `[n, 1]` uniform draws in (0, 1), choosing the component.

    Returns:
      `[n, latent_dim]` samples.
    """
    loc, scale = self.components(model)
    probs = tf.fill([self.num_components], 1.0 / self.num_components)
    component = categorical_from_uniform(probs, uniform)
    return tf.gather(loc, component) + tf.gather(scale, component) * normal

  def call(self, inputs):
    return inputs


def build_prior(config, data_shape):
  """The prior layer for `config.prior`.

  Args:
    config: a `ModelConfig`.
    data_shape: `(H, W, C)` (a VampPrior's pseudo-inputs are images).

  Returns:
    A prior layer, float32 under any global dtype policy.

  Raises:
    ConfigError: for an unknown prior.
  """
  if config.prior not in _PRIOR_CLASSES:
    raise ConfigError(f"--prior={config.prior!r} is not one of: "
                      f"{', '.join(sorted(_PRIOR_CLASSES))}.")
  if config.prior == "normal":
    return StandardNormalPrior(config.latent_dim, name="prior",
                               dtype="float32")
  return _PRIOR_CLASSES[config.prior](config, data_shape, name="prior",
                                      dtype="float32")

