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
from tfvae.evaluation import chunking
from tfvae.evaluation import tabular

# A posterior-mean variance above this marks an active unit (Burda et al.).
ACTIVE_UNIT_THRESHOLD = 0.01
# Upper bound on decoded pixels held at once by the importance sampler (the
# networks' activations are bounded too, by `chunking`).
_PIXEL_BUDGET = 2**24
# Seed offset between the parts of a split evaluation batch.
_PART_SEED_STRIDE = 7919


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
    self._log_likelihood = tf.function(self._log_likelihood_eager)
    self._exact_log_likelihood = tf.function(
        lambda images, labels, max_decoded: self.model.exact_log_likelihood(
            images, labels, max_decoded))
    self._max_decoded = None

  def _batch_terms_eager(self, images, labels, noise):
    model = self.model
    terms = model.compute_loss(images, noise, tf.constant(0, tf.int64),
                               tf.constant(1.0), labels, training=False)
    code = model.encode_code(images, labels)
    reconstruction = model.decode_code(code, labels)["mean"]
    results = {
        "distortion": terms["distortion"],
        "reconstruction_mse": tf.reduce_mean(
            tf.square(reconstruction - images),
            axis=tf.range(1, tf.rank(images))),
        "code": code}
    if images.shape.rank == 2:  # Vectors: per-column errors need them.
      results["reconstruction"] = reconstruction
    if model.has_likelihood_bound:
      results["neg_elbo"] = -terms["elbo"]
      results["rate"] = terms["rate"]
      kl_per_dim = model.kl_per_dimension(images, labels)
      if kl_per_dim is not None:
        results["kl_per_dim"] = kl_per_dim
    return results

  def _log_likelihood_eager(self, images, labels, num_samples, chunk, seed):
    """log sum_i w_i over k samples, `chunk` at a time, in one graph.

    Chunk c draws its `[size, batch] + noise_shape()` noise with the stateless
    seed `[seed[0], seed[1] + start]` (start = c * chunk); the chunks'
    float32 log-sum-exps are combined in float64 by a running log-add-exp.
    One iteration runs at a time, so one chunk's activations are live.

    Args:
      images: `[batch, H, W, C]` float32.
      labels: `[batch]` int32, or None.
      num_samples: int32 scalar k.
      chunk: int32 scalar, samples per chunk.
      seed: `[2]` int64 stateless seed.

    Returns:
      `[batch]` float64 log sum_i w_i (not yet divided by k).
    """
    batch = tf.shape(images)[0]
    noise_shape = tf.constant(self.model.noise_shape(), tf.int32)

    def body(start, total):
      size = tf.minimum(chunk, num_samples - start)
      noise = tf.random.stateless_normal(
          tf.concat([[size, batch], noise_shape], 0),
          seed=tf.stack([seed[0], seed[1] + tf.cast(start, tf.int64)]))
      log_w = self.model.log_weights(images, noise, labels)
      partial = tf.cast(tf.reduce_logsumexp(log_w, axis=0), tf.float64)
      return start + chunk, _log_add_exp(total, partial)

    _, total = tf.while_loop(
        lambda start, total: start < num_samples, body,
        [tf.constant(0), tf.fill([batch], tf.constant(-np.inf, tf.float64))],
        parallel_iterations=1)
    return total

  def max_rows(self):
    """Examples evaluated at once: a batch larger than this is split.

    Half of `chunking.max_decoded_examples`: the batch terms run the decoder
    twice (the ELBO and the reconstruction of the code), so a conv model's
    activations on a large evaluation batch stay within the budget.
    Models without a likelihood bound (whose cost `chunking` measures
    through `log_weights`) evaluate whole batches.
    """
    if not self.model.has_likelihood_bound:
      return 2**31 - 1
    if self._max_decoded is None:
      self._max_decoded = chunking.max_decoded_examples(self.model)
    return max(1, self._max_decoded // 2)

  def samples_per_chunk(self, num_samples, batch, num_dims):
    """Samples decoded per call for `batch` examples of `num_dims` values.

    The smallest of k, the pixel cap `_PIXEL_BUDGET // (num_dims * batch)`
    and the activation cap `chunking.max_decoded_examples(model) // batch`,
    and at least 1 (an evaluation batch is never split).
    """
    if self._max_decoded is None:
      self._max_decoded = chunking.max_decoded_examples(self.model)
    by_pixels = _PIXEL_BUDGET // (num_dims * batch)
    return chunking.samples_per_chunk(
        num_samples, batch, min(self._max_decoded, by_pixels * batch))

  def exact_log_likelihood(self, images, labels=None):
    """The model's exact log p(x) (`model.exact_log_likelihood`), or None.

    Defined for models that can sum over their whole code (e.g. a
    `categorical_vae` with at most 4096 codes); chunked like the sampler,
    with code x image pairs bounded as decoded samples are.

    Returns:
      `[batch]` numpy float64 log p(x) in nats, or None.
    """
    if self._max_decoded is None:
      self._max_decoded = chunking.max_decoded_examples(self.model)
    batch, num_dims = int(images.shape[0]), math.prod(images.shape[1:])
    max_pairs = min(self._max_decoded,
                    _PIXEL_BUDGET // (num_dims * batch) * batch)
    exact = self._exact_log_likelihood(images, labels,
                                       tf.constant(max(1, max_pairs)))
    return None if exact is None else exact.numpy().astype(np.float64)

  def log_likelihood(self, images, num_samples, seed, labels=None):
    """Importance-weighted estimate of log p(x), sampled in memory-sized chunks.

    Chunks hold `samples_per_chunk(...)` samples of every image, so that
    both the decoded pixels and the networks' activations stay bounded
    (`tfvae.evaluation.chunking`); all chunks run in one graph call. A model
    that computes log p(x) exactly (`exact_log_likelihood`) gives that
    instead, and `num_samples` and `seed` are unused.

    Args:
      images: `[batch, H, W, C]` float32.
      num_samples: k, a Python int >= 1.
      seed: `[2]` int stateless seed.
      labels: `[batch]` int32 class ids (conditional models only).

    Returns:
      `[batch]` numpy float64 estimates of log p(x) in nats.
    """
    exact = self.exact_log_likelihood(images, labels)
    if exact is not None:
      return exact
    batch = int(images.shape[0])
    chunk = self.samples_per_chunk(num_samples, batch,
                                   math.prod(images.shape[1:]))
    total = self._log_likelihood(
        images, labels, tf.constant(num_samples), tf.constant(chunk),
        tf.constant([seed[0], seed[1]], tf.int64)).numpy()
    return total - math.log(num_samples)

  def evaluate(self, dataset, iw_samples=0, progress=None):
    """Averages the evaluation metrics over a finite dataset.

    Args:
      dataset: batches of dicts with `image` `[b, H, W, C]` (and `label`).
      iw_samples: k of the importance-weighted log p(x); 0 skips it. Models
        without a likelihood bound skip it too.
      progress: a `keras.utils.Progbar` over examples, updated with the
        number evaluated after each batch (part); or None.

    Returns:
      Dict of Python floats (nats per example unless named otherwise):
      `distortion`, `reconstruction_mse` (per pixel), `active_units`,
      `code_variance` (list, per code dimension), `codes` and `labels`
      (numpy, per example; labels None without them), `num_examples`,
      `column_errors` (vectors: `tfvae.evaluation.tabular.column_errors`,
      else None); with a likelihood bound also `neg_elbo`, `rate`,
      `kl_per_dim` (list), and `nll` and `bits_per_dim` (from the k-sample
      estimate when asked for, else from the ELBO; exact, with
      `nll_exact` True, when the model sums over its whole code:
      `exact_log_likelihood`); without one these are None.
      `code_usage`: the model's `code_usage(codes)` (a dict; categorical
      codes), else None.
      Per group of the code (`model.latent_groups()`, e.g. the
      layers of `hvae`, bottom first): `active_units_per_layer` and, with
      `kl_per_dim`, `kl_per_layer` (lists, one int / nats per group; None
      when the groups do not tile the code).
    """
    sums, codes, labels_seen, count, nll_sum = {}, [], [], 0, 0.0
    nll_exact = False
    rows, reconstructions = [], []
    kl_per_dim, num_dims = None, None
    bound = self.model.has_likelihood_bound
    max_rows = self.max_rows()
    for index, batch in enumerate(dataset):
      if "label" in batch:
        labels_seen.append(batch["label"].numpy())
      batch_images = batch["image"]
      noise = tf.random.stateless_normal(
          tf.concat([tf.shape(batch_images)[:1], self.model.noise_shape()],
                    0), seed=tf.constant([self.seed, index], tf.int64))
      num_dims = math.prod(batch_images.shape[1:])
      # Part j of a batch larger than max_rows draws its importance samples
      # from its own seed stream (part 0 from the batch's).
      for part, start in enumerate(range(0, int(batch_images.shape[0]),
                                         max_rows)):
        end = start + max_rows
        images = batch_images[start:end]
        labels = (batch["label"][start:end] if self.model.conditional
                  else None)
        terms = self._batch_terms(images, labels, noise[start:end])
        for name in ("neg_elbo", "distortion", "rate",
                     "reconstruction_mse"):
          if name in terms:
            sums[name] = sums.get(name, 0.0) + float(
                tf.reduce_sum(terms[name]))
        if "kl_per_dim" in terms:
          part_kl = tf.reduce_sum(terms["kl_per_dim"], axis=0).numpy()
          kl_per_dim = part_kl if kl_per_dim is None else kl_per_dim + part_kl
        codes.append(terms["code"].numpy())
        if "reconstruction" in terms:
          rows.append(images.numpy())
          reconstructions.append(terms["reconstruction"].numpy())
        if iw_samples and bound:
          log_p = self.exact_log_likelihood(images, labels)
          nll_exact = log_p is not None
          if not nll_exact:
            log_p = self.log_likelihood(
                images, iw_samples,
                (self.seed + 1 + _PART_SEED_STRIDE * part,
                 index * iw_samples), labels)
          nll_sum -= float(np.sum(log_p))
        count += int(images.shape[0])
        if progress is not None:
          progress.update(count)
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
    results["nll_exact"] = nll_exact
    results["kl_per_dim"] = (None if kl_per_dim is None else
                             [float(v) / count for v in kl_per_dim])
    codes = np.concatenate(codes)
    results["active_units"] = active_units(codes)
    results["kl_per_layer"], results["active_units_per_layer"] = (
        per_group(self.model, results["kl_per_dim"], codes))
    results["code_variance"] = [float(v) for v in np.var(codes, axis=0)]
    results["codes"] = codes
    code_usage = getattr(self.model, "code_usage", None)
    results["code_usage"] = None if code_usage is None else code_usage(codes)
    results["labels"] = (np.concatenate(labels_seen) if labels_seen
                         else None)
    results["num_examples"] = count
    results["column_errors"] = (
        tabular.column_errors(np.concatenate(rows),
                              np.concatenate(reconstructions),
                              self.model.columns)
        if rows and getattr(self.model, "columns", None) else None)
    return results


def _log_add_exp(a, b):
  """log(exp(a) + exp(b)) elementwise, as `np.logaddexp` (-inf-safe)."""
  larger = tf.maximum(a, b)
  gap = tf.where(tf.math.is_finite(larger), -tf.abs(a - b),
                 tf.zeros_like(larger))
  return larger + tf.math.log1p(tf.exp(gap))


def per_group(model, kl_per_dim, codes):
  """KL and active units of each group of the code (`model.latent_groups`).

  Args:
    model: the evaluated model.
    kl_per_dim: list, per code dimension, of mean KL in nats, or None.
    codes: `[num_examples, code_dim]` deterministic codes.

  Returns:
    `(kl_per_layer, active_units_per_layer)`: lists in the groups' order of
    each group's summed KL (None without `kl_per_dim`) and its active
    units; both None when the groups' sizes do not add up to the code's
    width.
  """
  groups = tuple(model.latent_groups())
  if sum(size for _, size in groups) != codes.shape[-1]:
    return None, None
  if kl_per_dim is not None and len(kl_per_dim) != codes.shape[-1]:
    kl_per_dim = None
  units, kl, start = [], [], 0
  for _, size in groups:
    units.append(active_units(codes[:, start:start + size]))
    if kl_per_dim is not None:
      kl.append(float(sum(kl_per_dim[start:start + size])))
    start += size
  return (kl if kl_per_dim is not None else None), units


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
