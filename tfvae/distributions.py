"""Distribution parameters (plain tensors) to `tfp.distributions` objects.

The one place where TFP distributions are built. The likelihoods' log-probs
the training step and the NLL evaluation take at every step are also here,
computed from the parameters directly (`bernoulli_log_prob`,
`gaussian_log_prob`): the same values as the TFP objects', with fewer
ops. Networks return tensors;
models call these functions, so traced functions that are exported never
return TFP types.
"""

import math

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

_LOG_2PI = math.log(2.0 * math.pi)


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


def bernoulli_image(logits, event_ndims=3):
  """Independent Bernoulli pixels (or vector entries): p(x|z) for binary data.

  Args:
    logits: `[..., H, W, C]` (or `[..., D]`) log-odds of each value being 1.
    event_ndims: 3 for images, 1 for vectors.

  Returns:
    `tfd.Distribution` with event shape `[H, W, C]` (or `[D]`).
  """
  return tfd.Independent(tfd.Bernoulli(logits=logits, dtype=logits.dtype),
                         reinterpreted_batch_ndims=event_ndims)


def _event_axes(event_ndims):
  return list(range(-event_ndims, 0))


def bernoulli_log_prob(logits, x, event_ndims=3):
  """log p(x) of independent Bernoullis, straight from the logits.

  Equals `bernoulli_image(logits, event_ndims).log_prob(x)`, x log sigmoid(l)
  + (1 - x) log sigmoid(-l) = x l - softplus(l), with one softplus per entry
  where TFP's `Bernoulli` takes two (it also accepts x in [0, 1]).

  Args:
    logits: `[..., H, W, C]` (or `[..., D]`) log-odds.
    x: values in [0, 1], broadcastable to `logits`.
    event_ndims: 3 for images, 1 for vectors.

  Returns:
    `[...]` log-probabilities summed over the event.
  """
  return tf.reduce_sum(x * logits - tf.nn.softplus(logits),
                       axis=_event_axes(event_ndims))


def gaussian_log_prob(loc, scale, x, event_ndims=3):
  """log p(x) of independent Gaussians whose scale has the event's shape.

  Equals `gaussian_image(loc, scale, event_ndims).log_prob(x)`; the
  normalizer sum(log scale) is taken once over the event instead of once
  per example.

  Args:
    loc: `[..., H, W, C]` (or `[..., D]`) means.
    scale: the event shape `[H, W, C]` (or `[D]`), or anything broadcastable
      to `loc`: positive standard deviations.
    x: broadcastable to `loc`.
    event_ndims: 3 for images, 1 for vectors.

  Returns:
    `[...]` log-probabilities summed over the event.
  """
  axes = _event_axes(event_ndims)
  event_shape = tf.shape(loc)[-event_ndims:]
  scale = tf.convert_to_tensor(scale, loc.dtype)
  squared = tf.reduce_sum(tf.square((x - loc) / scale), axis=axes)
  log_scale = tf.math.log(scale)
  if scale.shape.rank is not None and scale.shape.rank <= event_ndims:
    # One scale per event entry: one sum serves every example.
    log_scale = tf.reduce_sum(tf.broadcast_to(log_scale, event_shape))
  else:
    log_scale = tf.reduce_sum(tf.broadcast_to(log_scale, tf.shape(loc)),
                              axis=axes)
  event_size = tf.cast(tf.reduce_prod(event_shape), loc.dtype)
  return -0.5 * squared - log_scale - 0.5 * event_size * _LOG_2PI


def gaussian_image(loc, scale, event_ndims=3):
  """Independent Gaussian pixels (or vector entries): p(x|z), continuous data.

  Args:
    loc: `[..., H, W, C]` (or `[..., D]`) means.
    scale: `loc`'s shape, or its event shape: positive standard deviations.
    event_ndims: 3 for images, 1 for vectors.

  Returns:
    `tfd.Distribution` with event shape `[H, W, C]` (or `[D]`).
  """
  scale = tf.broadcast_to(scale, tf.shape(loc))
  return tfd.Independent(tfd.Normal(loc=loc, scale=scale),
                         reinterpreted_batch_ndims=event_ndims)


class TabularDistribution:
  """Independent columns of one table row, each with its own family.

  TFP has no product of scalar distributions of different families over the
  entries of one vector, so this holds one TFP distribution per group of
  columns and sums their log-probabilities. Parameters are raw-unit values.

  Args:
    num_columns: D, the row length.
    continuous: `(indices, loc, scale)` of the Gaussian columns: int column
      indices `[n]`, and `[..., n]` means and standard deviations; or None.
    binary: `(indices, logits)` of the Bernoulli columns, `[..., n]`; or None.
    categorical: list of `(index, logits)`, one per categorical column with
      `[..., K]` logits; the row holds the category id.
  """

  def __init__(self, num_columns, continuous=None, binary=None,
               categorical=()):
    self.num_columns = num_columns
    self.continuous = continuous
    self.binary = binary
    self.categorical = tuple(categorical)

  def column_log_prob(self, x):
    """`[..., D]` log p of each column of `x` `[..., D]` (same order)."""
    parts, indices = [], []
    if self.continuous is not None:
      index, loc, scale = self.continuous
      parts.append(tfd.Normal(loc, scale).log_prob(tf.gather(x, index,
                                                             axis=-1)))
      indices += list(index)
    if self.binary is not None:
      index, logits = self.binary
      parts.append(tfd.Bernoulli(logits=logits, dtype=x.dtype).log_prob(
          tf.gather(x, index, axis=-1)))
      indices += list(index)
    for index, logits in self.categorical:
      ids = tf.cast(tf.round(x[..., index]), tf.int32)
      parts.append(tfd.Categorical(logits=logits).log_prob(ids)[..., None])
      indices.append(index)
    # Back to column order: position p of the concatenation is column
    # indices[p].
    order = sorted(range(len(indices)), key=indices.__getitem__)
    return tf.gather(tf.concat(parts, axis=-1), order, axis=-1)

  def log_prob(self, x):
    """`[...]` log p(x) of rows `x` `[..., D]`."""
    return tf.reduce_sum(self.column_log_prob(x), axis=-1)


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
