"""Code samplers: how `sample` draws the codes it decodes (`--sampler`).

- `prior`: codes from the model's p(z) (`VAE.prior_code`); no layer here.
- `gmm`: a Gaussian mixture with K = `--sampler_components` full-covariance
  components, fitted to the training codes (`model.fitted_code`) once
  training has finished ("ex-post density estimation", Ghosh et al. 2020;
  pythae's `GaussianMixtureSampler`). It is the default of `ae`, which has
  no prior, and an option of every model with a continuous code
  (`has_continuous_code`), e.g. a beta-VAE whose aggregate posterior has
  drifted from N(0, I).

`GaussianMixtureSampler` is a float32 Keras layer whose non-trainable
variables hold the mixture: log-weights `[K]`, means `[K, D]` and Cholesky
factors of the covariances `[K, D, D]`, so checkpoints and exports carry
it. Until it is fitted it is the standard Normal N(0, I) (equal weights,
zero means, identity factors; `fitted_codes` is 0) and it logs a warning
when it draws or is traced unfitted. Its `sample_from_noise` is written in
TFLite built-in ops: the component by inverse CDF from one uniform
(`priors.categorical_from_uniform`), then `mean_k + L_k eps` (GATHER,
BATCH_MATMUL), so the SavedModel and `.tflite` `sample` signatures agree.

Fitting (`fit_gaussian_mixture`) is EM in float64 numpy, no scikit-learn:
k-means++ centres seeded from the run seed, hard assignment to the nearest
centre as the first responsibilities, then alternating E and M steps until
the mean log-likelihood per code rises by less than `TOLERANCE` nats, for at
most `MAX_ITERATIONS` iterations. Each covariance gets `COVARIANCE_JITTER`
on its diagonal so its Cholesky factor exists when a component sees a
(nearly) flat set of codes. At most `MAX_FIT_CODES` codes are used, a
uniform random subset chosen with the same seed (`collect_codes`), which
bounds the memory and the O(N K D^2) cost per iteration. K = 1 is the closed
form: the sample mean and the unbiased sample covariance (+ jitter). The fit
is deterministic given the codes and the seed.

#### References
Ghosh, Sajjadi, Vergari, Black & Schoelkopf (2020). From Variational to
Deterministic Autoencoders. ICLR.
Chadebec, Vincent & Allassonniere (2022). Pythae: Unifying Generative
Autoencoders in Python. NeurIPS Datasets and Benchmarks.
Dempster, Laird & Rubin (1977). Maximum Likelihood from Incomplete Data via
the EM Algorithm. JRSS B.
Arthur & Vassilvitskii (2007). k-means++: The Advantages of Careful
Seeding. SODA.
"""

import dataclasses
import math

from absl import logging
import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfvae import priors
from tfvae.config import ModelConfig
from tfvae.errors import ConfigError

tfd = tfp.distributions

PRIOR = "prior"
GMM = "gmm"
# Added to every fitted covariance's diagonal (the Cholesky factor then
# exists even for constant code dimensions).
COVARIANCE_JITTER = 1e-6
# Codes the mixture is fitted to at most (a seeded uniform subset).
MAX_FIT_CODES = 50_000
# EM stops after this many iterations, or when the mean log-likelihood per
# code rises by less than TOLERANCE nats.
MAX_ITERATIONS = 300
TOLERANCE = 1e-3
_DEFAULT_COMPONENTS = ModelConfig().sampler_components


def resolve(config, model_cls):
  """The sampler a model of class `model_cls` uses under `config`.

  Args:
    config: a `ModelConfig`.
    model_cls: the model class (its `default_sampler` applies when
      `config.sampler` is None).

  Returns:
    `'prior'` or `'gmm'`.
  """
  if config.sampler is not None:
    return config.sampler
  return getattr(model_cls, "default_sampler", PRIOR)


def check_config(config, model_cls):
  """Rejects `--sampler`/`--sampler_components` the model cannot use.

  Args:
    config: a `ModelConfig`.
    model_cls: the model class.

  Raises:
    ConfigError: for `--sampler=gmm` on a model without a continuous code,
      or `--sampler_components` set while the sampler is not `gmm`.
  """
  sampler = resolve(config, model_cls)
  if sampler == GMM and not getattr(model_cls, "has_continuous_code", True):
    raise ConfigError(
        f"--sampler=gmm fits a Gaussian mixture to continuous codes; "
        f"--model={config.model} has a discrete code. Drop the flag or use "
        "--sampler=prior.")
  if sampler != GMM and config.sampler_components != _DEFAULT_COMPONENTS:
    raise ConfigError(
        f"--sampler_components={config.sampler_components} applies only to "
        f"--sampler=gmm; --model={config.model} samples with "
        f"--sampler={sampler}. Add --sampler=gmm or drop the flag.")


def build(config, code_dim, model_cls):
  """The sampler layer a model needs, or None when it samples its prior.

  Args:
    config: a `ModelConfig`.
    code_dim: D, the size of the model's `fitted_code`.
    model_cls: the model class (for its `default_sampler`).

  Returns:
    A float32 `GaussianMixtureSampler` with K = `config.sampler_components`
    for the `gmm` sampler, else None.
  """
  if resolve(config, model_cls) != GMM:
    return None
  return GaussianMixtureSampler(config.sampler_components, code_dim,
                                name="gmm_sampler", dtype="float32")


# ---- Fitting (numpy) ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GaussianMixtureFit:
  """A fitted mixture sum_k w_k N(mean_k, L_k L_k^T), float64 arrays.

  Attributes:
    weights: `[K]` mixture weights (positive, summing to 1).
    means: `[K, D]` component means.
    scale_trils: `[K, D, D]` lower-triangular Cholesky factors L_k.
    log_likelihoods: mean log-likelihood per code after the first M step
      and after each EM iteration (non-decreasing); one value for K = 1.
    iterations: EM iterations run (0 for K = 1).
    converged: whether the last iteration gained less than the tolerance.
    num_codes: codes the mixture was fitted to.
  """
  weights: np.ndarray
  means: np.ndarray
  scale_trils: np.ndarray
  log_likelihoods: tuple
  iterations: int
  converged: bool
  num_codes: int

  @property
  def covariances(self):
    """`[K, D, D]` the component covariances L_k L_k^T."""
    return self.scale_trils @ np.swapaxes(self.scale_trils, -1, -2)


def collect_codes(code_batches, max_codes=MAX_FIT_CODES, seed=0):
  """A uniform random subset of at most `max_codes` codes from batches.

  Streams: each code gets a seeded random key and the `max_codes` smallest
  keys are kept, so memory stays bounded and the subset depends only on the
  codes' order and `seed`.

  Args:
    code_batches: iterable of `[batch, D]` arrays.
    max_codes: most codes returned.
    seed: seeds the keys.

  Returns:
    `[min(N, max_codes), D]` float64 array, in the order the codes came.
  """
  rng = np.random.default_rng(seed)
  kept_codes, kept_keys, kept_index = None, None, None
  offset = 0
  for batch in code_batches:
    batch = np.asarray(batch, np.float64)
    keys = rng.random(len(batch))
    index = offset + np.arange(len(batch))
    offset += len(batch)
    if kept_codes is None:
      kept_codes, kept_keys, kept_index = batch, keys, index
    else:
      kept_codes = np.concatenate([kept_codes, batch])
      kept_keys = np.concatenate([kept_keys, keys])
      kept_index = np.concatenate([kept_index, index])
    if len(kept_codes) > max_codes:
      keep = np.argpartition(kept_keys, max_codes - 1)[:max_codes]
      kept_codes, kept_keys, kept_index = (
          kept_codes[keep], kept_keys[keep], kept_index[keep])
  if kept_codes is None:
    return np.zeros((0, 0))
  order = np.argsort(kept_index)
  return kept_codes[order]


def _log_gaussians(codes, means, scale_trils):
  """`[N, K]` log N(codes_n; means_k, L_k L_k^T)."""
  num_codes, dim = codes.shape
  out = np.empty((num_codes, len(means)))
  for k, (mean, tril) in enumerate(zip(means, scale_trils)):
    # L^-1 (x - mu) as one matrix product (the jitter bounds L's condition).
    whitened = (codes - mean) @ np.linalg.inv(tril).T
    out[:, k] = (-0.5 * np.sum(whitened**2, axis=1)
                 - np.sum(np.log(np.diag(tril)))
                 - 0.5 * dim * math.log(2 * math.pi))
  return out


def _e_step(codes, weights, means, scale_trils):
  """`(mean log-likelihood, [N, K] responsibilities)`."""
  log_joint = _log_gaussians(codes, means, scale_trils) + np.log(weights)
  peak = log_joint.max(axis=1, keepdims=True)
  log_norm = peak + np.log(np.sum(np.exp(log_joint - peak), axis=1,
                                  keepdims=True))
  return float(np.mean(log_norm)), np.exp(log_joint - log_norm)


def _m_step(codes, responsibilities, jitter):
  """`(weights [K], means [K, D], scale_trils [K, D, D])`."""
  dim = codes.shape[1]
  counts = responsibilities.sum(axis=0) + 10 * np.finfo(np.float64).eps
  weights = counts / counts.sum()
  means = responsibilities.T @ codes / counts[:, None]
  scale_trils = np.empty((len(counts), dim, dim))
  for k in range(len(counts)):
    centred = codes - means[k]
    covariance = (responsibilities[:, k, None] * centred).T @ centred
    covariance = covariance / counts[k] + jitter * np.eye(dim)
    scale_trils[k] = np.linalg.cholesky(covariance)
  return weights, means, scale_trils


def _kmeans_plus_plus(codes, num_components, rng):
  """`[K]` row indices of k-means++ centres (Arthur & Vassilvitskii 2007)."""
  chosen = [int(rng.integers(len(codes)))]
  distance = np.sum((codes - codes[chosen[0]])**2, axis=1)
  for _ in range(1, num_components):
    total = distance.sum()
    if total > 0:
      index = int(rng.choice(len(codes), p=distance / total))
    else:  # Fewer distinct codes than components: any code.
      index = int(rng.integers(len(codes)))
    chosen.append(index)
    distance = np.minimum(distance, np.sum((codes - codes[index])**2, axis=1))
  return np.array(chosen)


def fit_gaussian_mixture(codes, num_components, seed=0,
                         max_iterations=MAX_ITERATIONS, tolerance=TOLERANCE,
                         jitter=COVARIANCE_JITTER, max_codes=MAX_FIT_CODES):
  """Maximum-likelihood full-covariance Gaussian mixture of `codes` by EM.

  Args:
    codes: `[N, D]` array.
    num_components: K.
    seed: seeds the subset (when N > max_codes) and the k-means++ centres.
    max_iterations: most EM iterations.
    tolerance: stop when the mean log-likelihood per code rises by less.
    jitter: added to every covariance's diagonal.
    max_codes: fit to a seeded uniform subset of at most this many codes.

  Returns:
    A `GaussianMixtureFit`. For K = 1: the sample mean and
    `np.cov(codes) + jitter * I` (unbiased), with no iterations.

  Raises:
    ConfigError: with fewer than max(2, K) codes (names
      `--sampler_components`).
  """
  codes = np.asarray(codes, np.float64)
  if len(codes) > max_codes:
    codes = collect_codes([codes], max_codes, seed)
  if codes.ndim != 2 or len(codes) < max(2, num_components):
    raise ConfigError(
        f"--sampler_components={num_components} needs at least "
        f"{max(2, num_components)} training codes to fit, got {len(codes)}; "
        "use more training data or fewer --sampler_components.")
  dim = codes.shape[1]
  if num_components == 1:
    mean = codes.mean(axis=0)
    covariance = np.atleast_2d(np.cov(codes, rowvar=False))
    tril = np.linalg.cholesky(covariance + jitter * np.eye(dim))
    weights, means, trils = np.ones(1), mean[None], tril[None]
    log_likelihood, _ = _e_step(codes, weights, means, trils)
    return GaussianMixtureFit(weights, means, trils, (log_likelihood,), 0,
                              True, len(codes))
  rng = np.random.default_rng(seed)
  centres = codes[_kmeans_plus_plus(codes, num_components, rng)]
  nearest = np.argmin(
      np.sum(codes**2, axis=1, keepdims=True) - 2 * codes @ centres.T
      + np.sum(centres**2, axis=1), axis=1)
  responsibilities = np.eye(num_components)[nearest]
  params = _m_step(codes, responsibilities, jitter)
  log_likelihood, responsibilities = _e_step(codes, *params)
  trace = [log_likelihood]
  converged = False
  iterations = 0
  while iterations < max_iterations:
    iterations += 1
    params = _m_step(codes, responsibilities, jitter)
    new_log_likelihood, responsibilities = _e_step(codes, *params)
    trace.append(new_log_likelihood)
    if new_log_likelihood - log_likelihood < tolerance:
      converged = True
      break
    log_likelihood = new_log_likelihood
  weights, means, trils = params
  return GaussianMixtureFit(weights, means, trils, tuple(trace), iterations,
                            converged, len(codes))


# ---- The layer ---------------------------------------------------------------


class GaussianMixtureSampler(keras.layers.Layer):
  """Draws codes from a fitted full-covariance Gaussian mixture.

  Unfitted (as built) it is N(0, I): equal weights, zero means, identity
  Cholesky factors, `fitted_codes` = 0; `fit` or `assign_fit` set it.

  Args:
    num_components: K.
    code_dim: D.
  """

  def __init__(self, num_components, code_dim, **kwargs):
    super().__init__(**kwargs)
    self.num_components = int(num_components)
    self.code_dim = int(code_dim)
    self.log_weights = self.add_weight(
        name="log_weights", shape=(self.num_components,),
        initializer="zeros", trainable=False)
    self.means = self.add_weight(
        name="means", shape=(self.num_components, self.code_dim),
        initializer="zeros", trainable=False)
    self.scale_trils = self.add_weight(
        name="scale_trils",
        shape=(self.num_components, self.code_dim, self.code_dim),
        initializer="zeros", trainable=False)
    self.scale_trils.assign(np.broadcast_to(
        np.eye(self.code_dim, dtype=np.float32), self.scale_trils.shape))
    # Codes the mixture was fitted to; 0 means "not fitted" (N(0, I)).
    self.fitted_codes = self.add_weight(
        name="fitted_codes", shape=(), initializer="zeros", trainable=False)
    self._warned_unfitted = False
    self.built = True

  def is_fitted(self):
    """Whether `fit`/`assign_fit` has set the mixture (Python bool)."""
    with tf.init_scope():
      return bool(float(keras.ops.convert_to_numpy(self.fitted_codes)) > 0)

  def noise_shapes(self):
    """Per-sample `(normal, uniform)` noise shapes: `((D,), (1,))`."""
    return (self.code_dim,), (1,)

  def mixture_parameters(self):
    """`(log_weights [K], means [K, D], scale_trils [K, D, D])` tensors."""
    return (tf.convert_to_tensor(self.log_weights),
            tf.convert_to_tensor(self.means),
            tf.convert_to_tensor(self.scale_trils))

  def distribution(self):
    """The mixture as a `tfd.MixtureSameFamily` with event shape `[D]`."""
    log_weights, means, scale_trils = self.mixture_parameters()
    return tfd.MixtureSameFamily(
        mixture_distribution=tfd.Categorical(logits=log_weights),
        components_distribution=tfd.MultivariateNormalTriL(
            loc=means, scale_tril=scale_trils))

  def sample_from_noise(self, normal, uniform):
    """Mixture samples from external noise, in TFLite built-in ops.

    Args:
      normal: `[n, D]` standard Normal draws eps.
      uniform: `[n, 1]` uniform draws in (0, 1), choosing the component by
        inverse CDF of the weights.

    Returns:
      `[n, D]` codes `means[k] + scale_trils[k] @ eps`.
    """
    if not self._warned_unfitted and not self.is_fitted():
      logging.warning(
          "The gmm sampler is not fitted yet (the model's after_training "
          "fits it); it draws from N(0, I).")
      self._warned_unfitted = True
    log_weights, means, scale_trils = self.mixture_parameters()
    component = priors.categorical_from_uniform(tf.nn.softmax(log_weights),
                                                uniform)
    scale = tf.gather(scale_trils, component)
    return tf.gather(means, component) + tf.squeeze(
        tf.matmul(scale, normal[:, :, tf.newaxis]), axis=-1)

  def assign_fit(self, fit):
    """Sets the variables from a `GaussianMixtureFit` (K and D must match)."""
    if fit.means.shape != (self.num_components, self.code_dim):
      raise ValueError(
          f"A fit of means {fit.means.shape} does not match this sampler's "
          f"[K, D] = [{self.num_components}, {self.code_dim}].")
    self.log_weights.assign(np.log(fit.weights).astype(np.float32))
    self.means.assign(fit.means.astype(np.float32))
    self.scale_trils.assign(fit.scale_trils.astype(np.float32))
    self.fitted_codes.assign(float(fit.num_codes))
    self._warned_unfitted = False

  def fit(self, codes, seed=0):
    """Fits the mixture to `codes` `[N, D]` (`fit_gaussian_mixture`).

    Returns:
      The `GaussianMixtureFit`.
    """
    fit = fit_gaussian_mixture(codes, self.num_components, seed=seed)
    self.assign_fit(fit)
    logging.info(
        "gmm sampler: K=%d fitted to %d codes in %d EM iterations "
        "(converged: %s), mean log-likelihood %.3f nats per code.",
        self.num_components, fit.num_codes, fit.iterations, fit.converged,
        fit.log_likelihoods[-1])
    return fit

  def call(self, inputs):
    return inputs
