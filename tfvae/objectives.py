"""Pure functions of per-example tensors: ELBO, importance-weighted bounds.

Vocabulary (as in TFP's examples): `distortion` is -log p(x|z), `rate` is
KL(q(z|x) || p(z)), and `elbo = -(distortion + rate)`, all in nats.
"""

import math

import tensorflow as tf


def elbo(distortion, rate):
  """The evidence lower bound per example.

  Args:
    distortion: `[batch]` -log p(x|z) for z ~ q(z|x).
    rate: `[batch]` KL(q(z|x) || p(z)).

  Returns:
    `[batch]` ELBO in nats (a lower bound on log p(x)).
  """
  return -(distortion + rate)


def free_bits_rate(kl_per_dim, free_bits):
  """The rate with free bits (Kingma et al. 2016), as the optimizer sees it.

  Each latent dimension's KL, averaged over the batch, is clamped from below
  at `free_bits` nats, so the optimizer gains nothing by pushing a dimension
  under that budget and posterior collapse is discouraged.

  Args:
    kl_per_dim: `[batch, latent_dim]` KL of each dimension.
    free_bits: nats per dimension, a Python float >= 0.

  Returns:
    `[batch]` rate whose batch mean is `sum_d max(mean_b KL_bd, free_bits)`;
    dimensions under the budget contribute a constant (no gradient). Under
    a distribution strategy the batch mean is taken per replica.
  """
  batch_mean = tf.reduce_mean(kl_per_dim, axis=0)
  budget = tf.fill(tf.shape(kl_per_dim), tf.cast(free_bits, kl_per_dim.dtype))
  return tf.reduce_sum(
      tf.where(batch_mean > free_bits, kl_per_dim, budget), axis=-1)


def log_mean_exp(log_weights, axis=0):
  """log(mean(exp(log_weights))) along `axis`, computed stably."""
  count = tf.cast(tf.shape(log_weights)[axis], log_weights.dtype)
  return tf.reduce_logsumexp(log_weights, axis=axis) - tf.math.log(count)


def iwae_bound(log_weights):
  """Importance-weighted bound (Burda et al. 2016) from k log-weights.

  Args:
    log_weights: `[k, batch]` log p(x, z_i) - log q(z_i|x), z_i ~ q(z|x).

  Returns:
    `[batch]` log(1/k sum_i w_i), a lower bound on log p(x) that tightens as
    k grows and equals the ELBO's estimate at k = 1.
  """
  return log_mean_exp(log_weights, axis=0)


def bits_per_dim(nats_per_example, num_dims):
  """Converts per-example nats to bits per data dimension."""
  return nats_per_example / (num_dims * math.log(2.0))
