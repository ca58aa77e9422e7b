"""Priors p(z) for Gaussian-latent models, chosen with `--prior`.

A prior is a Keras layer (so its parameters are trained and checkpointed)
with three methods:

- `distribution(model)` -> a `tfd.Distribution` with event shape
  `[latent_dim]` (the model is passed so a VampPrior can run its encoder);
- `uniform_noise_shape()` -> per-sample shape of the uniform noise that
  `sample_from_noise` needs besides `[latent_dim]` standard Normal noise;
- `sample_from_noise(model, normal, uniform)` -> `[n, latent_dim]` samples,
  written in ops TFLite runs, so exported models sample on device.
"""

import keras
import tensorflow as tf

from tfvae import distributions
from tfvae.errors import ConfigError



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


def build_prior(config, image_shape):
  """The prior layer for `config.prior`.

  Args:
    config: a `ModelConfig`.
    image_shape: `(H, W, C)` (a VampPrior's pseudo-inputs are images).

  Returns:
    A prior layer.

  Raises:
    ConfigError: for an unknown prior.
  """
  if config.prior not in _PRIOR_CLASSES:
    raise ConfigError(f"--prior={config.prior!r} is not one of: "
                      f"{', '.join(sorted(_PRIOR_CLASSES))}.")
  if config.prior == "normal":
    return StandardNormalPrior(config.latent_dim, name="prior")
  return _PRIOR_CLASSES[config.prior](config, image_shape, name="prior")

