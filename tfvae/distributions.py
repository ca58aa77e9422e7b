"""Distribution parameters (plain tensors) to `tfp.distributions` objects.

The one place where TFP distributions are built. Networks return tensors;
models call these functions, so traced functions that are exported never
return TFP types.
"""

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def diagonal_normal(loc, scale):
  """A diagonal Normal over the last axis: q(z|x) or a Gaussian prior.

  Args:
    loc: `[..., latent_dim]` means.
    scale: `[..., latent_dim]` positive standard deviations.

  Returns:
    `tfd.Distribution` with event shape `[latent_dim]`.
  """
  return tfd.Independent(tfd.Normal(loc=loc, scale=scale),
                         reinterpreted_batch_ndims=1)


def standard_normal(latent_dim, dtype=tf.float32):
  """The N(0, I) prior over `latent_dim` dimensions (event shape `[d]`)."""
  zeros = tf.zeros([latent_dim], dtype)
  return diagonal_normal(zeros, tf.ones_like(zeros))


def bernoulli_image(logits):
  """Independent Bernoulli pixels: p(x|z) for binary images.

  Args:
    logits: `[..., H, W, C]` log-odds of each pixel being 1.

  Returns:
    `tfd.Distribution` with event shape `[H, W, C]`.
  """
  return tfd.Independent(tfd.Bernoulli(logits=logits, dtype=logits.dtype),
                         reinterpreted_batch_ndims=3)


def gaussian_image(loc, scale):
  """Independent Gaussian pixels: p(x|z) for continuous images.

  Args:
    loc: `[..., H, W, C]` pixel means.
    scale: `[H, W, C]` or `[..., H, W, C]` positive standard deviations.

  Returns:
    `tfd.Distribution` with event shape `[H, W, C]`.
  """
  scale = tf.broadcast_to(scale, tf.shape(loc))
  return tfd.Independent(tfd.Normal(loc=loc, scale=scale),
                         reinterpreted_batch_ndims=3)


def kl_or_monte_carlo(posterior, prior, z):
  """KL(q || p) per example: analytic where TFP has it, else one-sample MC.

  Args:
    posterior: q(z|x) with batch shape `[batch]`, event shape `[latent_dim]`.
    prior: p(z), event shape `[latent_dim]`.
    z: `[batch, latent_dim]` a reparameterized sample from `posterior`,
      used only for the Monte Carlo fallback.

  Returns:
    `[batch]` KL divergences in nats.
  """
  try:
    return tfd.kl_divergence(posterior, prior)
  except NotImplementedError:
    return posterior.log_prob(z) - prior.log_prob(z)


def kl_per_dimension(posterior, prior):
  """Analytic KL of each latent dimension, for free bits and diagnostics.

  Args:
    posterior: a `diagonal_normal` q(z|x), batch shape `[batch]`.
    prior: a `diagonal_normal` p(z).

  Returns:
    `[batch, latent_dim]` KL divergences in nats, or None when either
    distribution is not a diagonal Normal.
  """
  try:
    return tfd.kl_divergence(posterior.distribution, prior.distribution)
  except (AttributeError, NotImplementedError):
    return None
