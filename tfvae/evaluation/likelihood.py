"""Likelihood evaluation: test -ELBO, importance-weighted -log p(x), and more.

All numbers are nats per example unless named otherwise. The importance-
weighted estimate uses k samples from q(z|x) (Burda et al. 2016):
log p(x) ~= log (1/k) sum_i p(x, z_i) / q(z_i|x), a lower bound that
tightens as k grows. Noise is stateless and seeded, so an evaluation is
repeatable.

#### References
Burda, Grosse & Salakhutdinov (2016). Importance Weighted Autoencoders. ICLR.
"""

import math

import numpy as np
import tensorflow as tf

from tfvae import objectives

# A posterior-mean variance above this marks an active unit (Burda et al.).
ACTIVE_UNIT_THRESHOLD = 0.01
# Upper bound on decoded pixels held at once by the importance sampler.
_PIXEL_BUDGET = 2**24


class Evaluator:
  """Evaluates a model on batches of images.

  Args:
    model: a model with the `tfvae.models.vae.VAE` interface.
    seed: seed of the evaluation noise.
  """

  def __init__(self, model, seed=0):
    self.model = model
    self.seed = seed
    self._batch_terms = tf.function(self._batch_terms_eager)
    self._log_weights = tf.function(self._log_weights_eager)

  def _batch_terms_eager(self, images, labels, seed):
    model = self.model
    noise = tf.random.stateless_normal(
        tf.concat([tf.shape(images)[:1], model.noise_shape()], 0), seed=seed)
    terms = model.compute_loss(images, noise, tf.constant(0, tf.int64),
                               tf.constant(1.0), labels, training=False)
    code = model.encode_code(images, labels)
    reconstruction = model.decode_code(code, labels)["mean"]
    results = {
        "distortion": terms["distortion"],
        "reconstruction_mse": tf.reduce_mean(
            tf.square(reconstruction - images), axis=[1, 2, 3]),
        "code": code}
    if model.has_likelihood_bound:
      results["neg_elbo"] = -terms["elbo"]
      results["rate"] = terms["rate"]
      kl_per_dim = model.kl_per_dimension(images, labels)
      if kl_per_dim is not None:
        results["kl_per_dim"] = kl_per_dim
    return results

  def _log_weights_eager(self, images, labels, num_samples, seed):
    noise = tf.random.stateless_normal(
        tf.concat([[num_samples], tf.shape(images)[:1],
                   self.model.noise_shape()], 0), seed=seed)
    return self.model.log_weights(images, noise, labels)

  def log_likelihood(self, images, num_samples, seed, labels=None):
    """Importance-weighted estimate of log p(x), sampled in memory-sized chunks.

    Args:
      images: `[batch, H, W, C]` float32.
      num_samples: k, a Python int >= 1.
      seed: `[2]` int stateless seed.
      labels: `[batch]` int32 class ids (conditional models only).

    Returns:
      `[batch]` numpy float64 estimates of log p(x) in nats.
    """
    batch = int(images.shape[0])
    pixels = math.prod(images.shape[1:])
    chunk = max(1, min(num_samples, _PIXEL_BUDGET // (pixels * batch)))
    total = None
    for start in range(0, num_samples, chunk):
      size = min(chunk, num_samples - start)
      log_w = self._log_weights(
          images, labels, tf.constant(size),
          tf.constant([seed[0], seed[1] + start], tf.int64))
      partial = tf.reduce_logsumexp(log_w, axis=0).numpy().astype(np.float64)
      total = partial if total is None else np.logaddexp(total, partial)
    return total - math.log(num_samples)

  def evaluate(self, dataset, iw_samples=0):
    """Averages the evaluation metrics over a finite dataset.

    Args:
      dataset: batches of dicts with `image` `[b, H, W, C]` (and `label`).
      iw_samples: k of the importance-weighted log p(x); 0 skips it. Models
        without a likelihood bound skip it too.

    Returns:
      Dict of Python floats (nats per example unless named otherwise):
      `distortion`, `reconstruction_mse` (per pixel), `active_units`,
      `code_variance` (list, per code dimension), `num_examples`; with a likelihood bound also `neg_elbo`, `rate`,
      `kl_per_dim` (list), and `nll` and `bits_per_dim` (from the k-sample
      estimate when asked for, else from the ELBO); without one these are
      None.
    """
    sums, codes, count, nll_sum = {}, [], 0, 0.0
    kl_per_dim, num_dims = None, None
    bound = self.model.has_likelihood_bound
    for index, batch in enumerate(dataset):
      images = batch["image"]
      labels = batch.get("label") if self.model.conditional else None
      num_dims = math.prod(images.shape[1:])
      seed = tf.constant([self.seed, index], tf.int64)
      terms = self._batch_terms(images, labels, seed)
      for name in ("neg_elbo", "distortion", "rate", "reconstruction_mse"):
        if name in terms:
          sums[name] = sums.get(name, 0.0) + float(tf.reduce_sum(terms[name]))
      if "kl_per_dim" in terms:
        batch_kl = tf.reduce_sum(terms["kl_per_dim"], axis=0).numpy()
        kl_per_dim = batch_kl if kl_per_dim is None else kl_per_dim + batch_kl
      codes.append(terms["code"].numpy())
      if iw_samples and bound:
        nll_sum -= float(np.sum(self.log_likelihood(
            images, iw_samples, (self.seed + 1, index * iw_samples), labels)))
      count += int(images.shape[0])
    if not count:
      raise ValueError("Cannot evaluate on an empty dataset.")
    results = {name: value / count for name, value in sums.items()}
    results["neg_elbo"] = results.get("neg_elbo")
    results["rate"] = results.get("rate")
    if bound:
      results["nll"] = (nll_sum / count if iw_samples
                        else results["neg_elbo"])
      results["bits_per_dim"] = float(objectives.bits_per_dim(
          results["nll"], num_dims))
    else:
      results["nll"] = results["bits_per_dim"] = None
    results["kl_per_dim"] = (None if kl_per_dim is None else
                             [float(v) / count for v in kl_per_dim])
    codes = np.concatenate(codes)
    results["active_units"] = active_units(codes)
    results["code_variance"] = [float(v) for v in np.var(codes, axis=0)]
    results["num_examples"] = count
    return results


def active_units(posterior_means, threshold=ACTIVE_UNIT_THRESHOLD):
  """Counts latent dimensions whose posterior mean varies across the data.

  Args:
    posterior_means: `[num_examples, code_dim]` the deterministic code
      (E_q[z|x] for a VAE) per example.
    threshold: variance above which a unit counts as active.

  Returns:
    int, the number of dimensions with Var_x(E_q[z_d|x]) > threshold.
  """
  if len(posterior_means) < 2:
    return 0
  return int(np.sum(np.var(posterior_means, axis=0) > threshold))
