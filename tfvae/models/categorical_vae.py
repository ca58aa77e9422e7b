"""Categorical VAE: discrete codes through the Gumbel-softmax relaxation.

The code is `N = categorical_latents` independent categorical variables of
`K = categories` classes each, z_j ~ q(z_j|x) = Categorical(softmax(l_j(x))),
with a uniform prior p(z_j) = 1/K; optionally (`continuous_latent_dim` D
> 0) Gaussian latents beside it, q(c|x) = N(mu(x), diag sigma(x)^2) with
prior N(0, I), as in JointVAE (Dupont 2018). The decoder reads the code
`[batch, N * K + D]`: the one-hot vector of each variable, flattened
variable-major (class k of variable j at position j * K + k), then the
continuous part. `latent_dim` is that code size; `--latent_dim` is not used.

Training decodes the Gumbel-softmax (Concrete) relaxation of a draw,
y_j = softmax((l_j + g_j) / tau), where the Gumbels g come from the
standard Normal noise the loop hands every model (`noise_shape()`,
`N * K + D` values per example) through the Normal CDF (probability
integral transform, `tfvae.gumbel`), so the noise stays stateless and a
resumed run draws what it would have drawn. The temperature anneals in
the graph, tau = max(temperature_min, temperature_start *
exp(-temperature_anneal_rate * step)) (`tfvae.schedules.temperature`).

The KL terms are analytic: KL_cat = sum_j sum_k q_jk log q_jk + N log K,
KL_cont the usual Gaussian one, and `rate` = KL_cat + KL_cont. The loss is

  -log p(x | y) + kl_weight * (KL_cat + KL_cont)

or, with `categorical_capacity_max` / `continuous_capacity_max` > 0, the
JointVAE objective, each capacity C(step) growing linearly to its maximum
over `capacity_steps` (`tfvae.schedules.capacity`) and weighted by `gamma`:

  -log p(x | y) + gamma |KL_cat - C_cat(step)| + gamma |KL_cont - C_cont(step)|

(a code part without a capacity keeps its plain `kl_weight * KL` term).

Evaluation uses the discrete model itself, never the relaxation: with
`training=False`, `compute_loss` decodes a hard draw z ~ q(z|x) (the
Gumbel-max trick on the same noise), so the test -ELBO is a bound on the
categorical model's -log p(x). `log_weights` draws hard codes too,
log w = log p(x|z) + log p(z) - log q(z|x). When the whole code is
categorical with at most `EXACT_MAX_CODES` codes (K^N <= 4096),
`exact_log_likelihood` sums p(x|z) p(z) over every code, and the evaluator
reports that exact log p(x) instead of the importance-sampled estimate
(`nll_exact` in its results; k is then unused). At that size the
enumeration decodes at most 4096 codes per evaluation batch, less work than
k = 1000 importance samples of a batch of 200. The exported
`log_likelihood` signature stays importance-sampled.

The deterministic code (`encode_code`: traversals, active units,
interpolations) is the posterior probabilities `[batch, N * K]`, then the
continuous means. `decode_code` decodes the most probable class of each
variable (one-hot of the argmax), so `reconstruct` shows the MAP code and a
traversal row sets one class of one variable.

Exported signatures:
- `encode`: `x` -> `probs` `[N, categorical_latents, categories]` (each row
  sums to 1), plus `mean` and `stddev` `[N, continuous_latent_dim]` with
  continuous latents;
- `decode`: `z` float32 `[N, categorical_latents * categories +
  continuous_latent_dim]`, the decoder's input as above: for the discrete
  model, one_hot(argmax(probs)) flattened, then the continuous part (e.g.
  `mean`). Any real values are decoded as given (training decodes points of
  the simplex);
- `sample`: classes drawn on device from one uniform per variable
  (`priors.categorical_from_uniform`), continuous latents from N(0, I);
  returns pixel means;
- `reconstruct`, `log_likelihood` as for every model.

`code_usage(codes)` summarizes how the categorical code is used (the
evaluator adds it to its results): each variable's mutual information
I(x; z_j) = H(mean_x q(z_j|x)) - mean_x H(q(z_j|x)) over the evaluated data,
the perplexity exp H(mean_x q(z_j|x)) of its aggregate posterior (1 to K),
and the number of variables with I(x; z_j) > `USED_VARIABLE_NATS` (those
whose posterior has not collapsed to one distribution for every x).

#### References
Jang, Gu & Poole (2017). Categorical Reparameterization with Gumbel-Softmax.
ICLR.
Maddison, Mnih & Teh (2017). The Concrete Distribution: A Continuous
Relaxation of Discrete Random Variables. ICLR.
Dupont (2018). Learning Disentangled Joint Continuous and Discrete
Representations. NeurIPS.
Burgess et al. (2018). Understanding disentangling in beta-VAE.
arXiv:1804.03599.
"""

import math

import keras
from keras import ops
import numpy as np
import tensorflow as tf

from tfvae import distributions
from tfvae import gumbel
from tfvae import likelihoods
from tfvae import priors
from tfvae import schedules
from tfvae.config import ModelConfig
from tfvae.errors import ConfigError
from tfvae.models import registry
from tfvae.models.vae import VAE
from tfvae.networks import blocks
from tfvae.networks import conv
from tfvae.networks import factory
from tfvae.networks.mlp import MIN_SCALE

# Codes (K^N) up to which `exact_log_likelihood` enumerates the code.
EXACT_MAX_CODES = 4096
# Code x image pairs one enumeration chunk holds when the caller gives no
# bound (the evaluator passes its own, from its memory budget).
_DEFAULT_MAX_DECODED = 2**14
# A variable whose mutual information with x exceeds this (nats) is used.
USED_VARIABLE_NATS = 0.01
_DEFAULTS = ModelConfig()


class CodeEncoder(keras.Model):
  """Data -> hidden layers -> categorical logits and Gaussian parameters.

  The hidden layers are those of `--encoder` (`mlp`: Dense layers; `conv`:
  stride-2 conv blocks), with the networks' defaults for unset widths,
  activation and batch norm; one Dense head gives N * K logits and, with
  continuous latents, D means and D softplus scales.

  Args:
    config: a `ModelConfig`.
    input_shape: per-example shape of what the encoder reads.
    num_variables: N.
    categories: K.
    continuous_dim: D (0 for none).
  """

  def __init__(self, config, input_shape, num_variables, categories,
               continuous_dim, **kwargs):
    super().__init__(**kwargs)
    self.num_variables = num_variables
    self.categories = categories
    self.continuous_dim = continuous_dim
    widths, activation, batch_norm = factory.settings(
        config, config.encoder, input_shape)
    self.is_conv = config.encoder == "conv"
    if self.is_conv:
      self.hidden = conv.downsampling_stack(widths, activation, batch_norm)
    else:
      self.hidden = blocks.dense_stack(widths, activation, batch_norm,
                                       config.dropout, name="hidden")
    self.flatten = keras.layers.Flatten()
    self.head = keras.layers.Dense(num_variables * categories
                                   + 2 * continuous_dim)

  def call(self, x, training=False):
    """Maps data to posterior parameters.

    Args:
      x: `[batch] + input_shape` float32.
      training: batch norm / dropout mode.

    Returns:
      `(logits, loc, scale)`: `[batch, N, K]`, `[batch, D]` and `[batch, D]`
      float32 (whatever the layers' compute dtype); scale is positive.
    """
    if self.is_conv:
      h = self.flatten(self.hidden(x, training=training))
    else:
      h = self.hidden(self.flatten(x), training=training)
    out = ops.cast(self.head(h), "float32")
    size = self.num_variables * self.categories
    logits = ops.reshape(out[:, :size],
                         (-1, self.num_variables, self.categories))
    loc = out[:, size:size + self.continuous_dim]
    scale = ops.softplus(out[:, size + self.continuous_dim:]) + MIN_SCALE
    return logits, loc, scale


@registry.register("categorical_vae")
class CategoricalVAE(VAE):
  """Categorical (and optionally Gaussian) latents, Gumbel-softmax training.

  Args:
    config: a `ModelConfig`.
    data_shape: `(H, W, C)` of images or `(D,)` of vectors.
    num_classes: number of labels in the data (unused).
    columns: the `tfvae.data.columns.Column`s of vector data, or None.
  """

  accepts_custom_networks = False
  # The code is one-hot vectors: a Gaussian mixture does not fit it.
  has_continuous_code = False
  OPTIONS = frozenset({
      "categorical_latents", "categories", "temperature_start",
      "temperature_min", "temperature_anneal_rate", "continuous_latent_dim",
      "continuous_capacity_max", "categorical_capacity_max",
      "capacity_steps", "gamma"})

  def __init__(self, config, data_shape, num_classes=None, columns=None,
               **kwargs):
    # VAE.__init__ builds a Gaussian encoder, prior and flow of latent_dim;
    # none apply, so only keras.Model is initialized (float32, as in VAE:
    # only the networks follow a mixed policy).
    kwargs.setdefault("dtype", "float32")
    keras.Model.__init__(self, name=config.model, **kwargs)  # pylint: disable=non-parent-init-called
    self.config = config
    self.data_shape = tuple(data_shape)
    self.num_classes = num_classes
    self.columns = None if columns is None else tuple(columns)
    self.num_variables = config.categorical_latents
    self.categories = config.categories
    self.continuous_dim = config.continuous_latent_dim
    self.categorical_dim = self.num_variables * self.categories
    # The decoder's input and the code's size.
    self.latent_dim = self.categorical_dim + self.continuous_dim
    self.likelihood = likelihoods.build_likelihood(config, self.data_shape,
                                                   self.columns)
    self.encoder = CodeEncoder(config, self.encoder_input_shape(),
                               self.num_variables, self.categories,
                               self.continuous_dim, name="encoder")
    self.decoder = factory.build_decoder(config,
                                         self.likelihood.parameter_shape,
                                         latent_dim=self.latent_dim)
    self.num_codes = self.categories**self.num_variables
    # Exact log p(x) by enumeration: a small, purely categorical code.
    self.enumerates_codes = (self.continuous_dim == 0
                             and self.num_codes <= EXACT_MAX_CODES)

  @classmethod
  def check_config(cls, config):
    super().check_config(config)
    if config.categories < 2:
      raise ConfigError(
          f"--categories={config.categories} gives variables with one class "
          "and no information; use --categories=2 or more.")
    largest = config.categorical_latents * math.log(config.categories)
    if config.categorical_capacity_max > largest:
      raise ConfigError(
          f"--categorical_capacity_max={config.categorical_capacity_max} "
          f"exceeds the largest KL of the categorical code, "
          f"--categorical_latents x log(--categories) = {largest:.4g} nats; "
          "lower it or enlarge the code.")
    if config.continuous_capacity_max > 0 and config.continuous_latent_dim == 0:
      raise ConfigError(
          f"--continuous_capacity_max={config.continuous_capacity_max} needs "
          "continuous latents; set --continuous_latent_dim > 0 or drop it.")
    if (config.categorical_capacity_max == 0
        and config.continuous_capacity_max == 0):
      for name in ("capacity_steps", "gamma"):
        if getattr(config, name) != getattr(_DEFAULTS, name):
          raise ConfigError(
              f"--{name}={getattr(config, name)} applies to the JointVAE "
              "capacities only; set --categorical_capacity_max or "
              "--continuous_capacity_max, or drop it.")

  # ---- Codes ---------------------------------------------------------------

  def _split(self, code):
    """`[..., N * K + D]` -> (`[..., N, K]`, `[..., D]`)."""
    categorical = code[..., :self.categorical_dim]
    shape = tf.concat([tf.shape(categorical)[:-1],
                       [self.num_variables, self.categories]], 0)
    return tf.reshape(categorical, shape), code[..., self.categorical_dim:]

  def _join(self, categorical, continuous=None):
    """(`[..., N, K]`, `[..., D]` or None when D = 0) -> `[..., N * K + D]`.

    Without continuous latents nothing is concatenated (TFLite's XNNPACK
    delegate rejects empty tensors).
    """
    shape = tf.concat([tf.shape(categorical)[:-2], [self.categorical_dim]], 0)
    flat = tf.reshape(categorical, shape)
    if not self.continuous_dim:
      return flat
    return tf.concat([flat, continuous], axis=-1)

  def encode(self, images, labels=None, training=False):
    """Posterior parameters.

    Args:
      images: `[batch, H, W, C]` float32 in [0, 1], or `[batch, D]` vectors.
      labels: unused.
      training: batch norm / dropout mode.

    Returns:
      `{'logits'}` `[batch, N, K]`, plus `{'loc', 'scale'}` `[batch, D]`
      with continuous latents.
    """
    del labels
    logits, loc, scale = self.encoder(self.likelihood.features(images),
                                      training=training)
    params = {"logits": logits}
    if self.continuous_dim:
      params.update(loc=loc, scale=scale)
    return params

  def latent_sample(self, params, noise, temperature=None):
    """A code drawn from q(z|x) with external noise.

    Args:
      params: `encode`'s output.
      noise: `[..., batch, N * K + D]` standard Normal draws: N * K become
        Gumbels (probability integral transform), D drive the continuous
        part.
      temperature: float32 scalar tau for the Gumbel-softmax relaxation, or
        None for a hard (Gumbel-max) draw.

    Returns:
      `(code, log_q)`: `[..., batch, N * K + D]`, the relaxed or one-hot
      code and the continuous sample; `[..., batch]` log q(z|x) of a hard
      draw (None for a relaxed one, whose density is not used).
    """
    logits = params["logits"]
    normal_cat, normal_cont = self._split(noise)
    g = gumbel.gumbel_from_normal(normal_cat)
    continuous = None
    if self.continuous_dim:
      continuous = params["loc"] + params["scale"] * normal_cont
    if temperature is not None:
      return self._join(gumbel.gumbel_softmax(logits, g, temperature),
                        continuous), None
    categorical = gumbel.gumbel_max(logits, g)
    log_q = gumbel.log_prob(logits, categorical)
    if self.continuous_dim:
      log_q += distributions.diagonal_normal(
          params["loc"], params["scale"]).log_prob(continuous)
    return self._join(categorical, continuous), log_q

  def log_prior(self, code):
    """`[...]` log p(z) of codes `[..., N * K + D]` (one-hot categorical
    part): -N log K plus the standard Normal density of the continuous
    part."""
    _, continuous = self._split(code)
    log_p = -self.num_variables * math.log(self.categories) * tf.ones(
        tf.shape(code)[:-1])
    if self.continuous_dim:
      log_p += distributions.standard_normal(self.continuous_dim).log_prob(
          continuous)
    return log_p

  def prior(self):
    raise NotImplementedError(
        "categorical_vae has a uniform categorical prior over one-hot codes "
        "(`log_prior`), not a density over a continuous z.")

  def encode_code(self, images, labels=None, training=False):
    """`[batch, N * K + D]` the posterior probabilities (flattened), then
    the continuous means."""
    params = self.encode(images, labels, training)
    return self._join(tf.nn.softmax(params["logits"], axis=-1),
                      params.get("loc"))

  def decode_code(self, code, labels=None, training=False):
    """Decodes each variable's most probable class (and the continuous part)
    of `[batch, N * K + D]` codes from `encode_code` (or any point)."""
    categorical, continuous = self._split(code)
    hard = tf.one_hot(tf.argmax(categorical, axis=-1), self.categories,
                      dtype=tf.float32)
    return self.decode(self._join(hard, continuous), labels, training)

  def code_dim(self):
    """`N * K + D`, the size of `encode_code`'s (and `fitted_code`'s)
    codes."""
    return self.latent_dim

  def latent_groups(self):
    """The categorical code's dimensions, then the continuous ones."""
    groups = (("categorical", self.categorical_dim),)
    if self.continuous_dim:
      groups += (("continuous", self.continuous_dim),)
    return groups

  def kl_per_dimension(self, images, labels=None):
    """None: the KL is per categorical variable, not per code dimension."""
    del images, labels
    return None

  def code_usage(self, codes):
    """How the evaluated data use the categorical code.

    Args:
      codes: `[num_examples, N * K + D]` numpy `encode_code` outputs.

    Returns:
      Dict (JSON-ready): `variables` N, `categories` K, `used_variables`
      (how many have I(x; z_j) > `USED_VARIABLE_NATS`),
      `mutual_information` (`[N]` nats), `perplexity` (`[N]`, of each
      aggregate posterior, 1 to K) and `mean_perplexity`.
    """
    probs = np.asarray(codes, np.float64)[:, :self.categorical_dim].reshape(
        -1, self.num_variables, self.categories)
    aggregate = probs.mean(axis=0)

    def entropy(p):
      return -np.sum(p * np.log(np.maximum(p, 1e-300)), axis=-1)

    aggregate_entropy = entropy(aggregate)
    information = np.maximum(
        aggregate_entropy - entropy(probs).mean(axis=0), 0.0)
    perplexity = np.exp(aggregate_entropy)
    return {"variables": self.num_variables, "categories": self.categories,
            "used_variables": int(np.sum(information > USED_VARIABLE_NATS)),
            "mutual_information": [float(v) for v in information],
            "perplexity": [float(v) for v in perplexity],
            "mean_perplexity": float(perplexity.mean())}

  # ---- Generation ----------------------------------------------------------

  def prior_code_noise_shapes(self):
    """`((max(D, 1),), (N,))`: D normals (one unused when D = 0) and one
    uniform per categorical variable."""
    return (max(self.continuous_dim, 1),), (self.num_variables,)

  def prior_code(self, normal, uniform):
    """`[n, N * K + D]` codes from p(z), in TFLite built-in ops.

    Args:
      normal: `[n, max(D, 1)]` standard Normal draws (the continuous part).
      uniform: `[n, N]` uniform draws in (0, 1): each variable's class by
        the inverse CDF of the uniform prior.
    """
    probs = tf.fill([self.categories], 1.0 / self.categories)
    classes = priors.categorical_from_uniform(probs,
                                              tf.reshape(uniform, [-1, 1]))
    one_hot = tf.one_hot(tf.reshape(classes, [-1, self.num_variables]),
                         self.categories, dtype=tf.float32)
    return self._join(one_hot, normal[:, :self.continuous_dim]
                      if self.continuous_dim else None)

  def export_encode(self, images, labels=None):
    """The exported `encode`: `probs` `[batch, N, K]`, plus `mean`, `stddev`
    `[batch, D]` with continuous latents."""
    params = self.encode(images, labels)
    outputs = {"probs": tf.nn.softmax(params["logits"], axis=-1)}
    if self.continuous_dim:
      outputs.update(mean=params["loc"], stddev=params["scale"])
    return outputs

  # ---- Objective -----------------------------------------------------------

  def noise_shape(self):
    """`(N * K + D,)`: one Normal per class (-> a Gumbel) and per continuous
    dimension."""
    return (self.latent_dim,)

  def temperature(self, step):
    """The float32 Gumbel-softmax temperature at `step` (in-graph)."""
    config = self.config
    return schedules.temperature(step, config.temperature_start,
                                 config.temperature_min,
                                 config.temperature_anneal_rate)

  def rate_terms(self, params):
    """`(kl_categorical, kl_continuous)`, each `[batch]` nats, analytic."""
    kl_categorical = tf.reduce_sum(gumbel.kl_to_uniform(params["logits"]),
                                   axis=-1)
    if not self.continuous_dim:
      return kl_categorical, tf.zeros_like(kl_categorical)
    kl_continuous = tf.reduce_sum(distributions.kl_per_dimension(
        distributions.diagonal_normal(params["loc"], params["scale"]),
        distributions.standard_normal(self.continuous_dim)), axis=-1)
    return kl_categorical, kl_continuous

  def penalty_terms(self, kl_categorical, kl_continuous, step, kl_weight):
    """`[batch]` the regularizer: per code part, gamma |KL - C(step)| with
    a capacity, else kl_weight * KL."""
    config = self.config
    total = 0.0
    for kl, capacity_max in ((kl_categorical, config.categorical_capacity_max),
                             (kl_continuous, config.continuous_capacity_max)):
      if capacity_max > 0:
        target = schedules.capacity(step, capacity_max, config.capacity_steps)
        total += config.gamma * tf.abs(kl - target)
      else:
        total += kl_weight * kl
    return total

  def compute_loss(self, images, noise, step, kl_weight, labels=None,
                   training=True):
    """Per-example loss terms for one batch.

    Args:
      images: `[batch, H, W, C]` float32 in [0, 1].
      noise: `[batch, N * K + D]` standard Normal draws.
      step: scalar int64 optimizer step (temperature and capacities).
      kl_weight: scalar float32 KL weight (parts without a capacity).
      labels: unused.
      training: True decodes the Gumbel-softmax relaxation at the step's
        temperature; False a hard draw from q(z|x) (the discrete model).

    Returns:
      Dict of `[batch]` tensors: `loss`, `distortion` (-log p(x|z)), `rate`
      (KL_cat + KL_cont), `elbo`, `rate_categorical` and, with continuous
      latents, `rate_continuous`.
    """
    params = self.encode(images, labels, training)
    temperature = self.temperature(step) if training else None
    code, _ = self.latent_sample(params, noise, temperature)
    distortion = -self.likelihood.log_prob(
        self.decode(code, labels, training), images)
    kl_categorical, kl_continuous = self.rate_terms(params)
    rate = kl_categorical + kl_continuous
    terms = {
        "loss": distortion + self.penalty_terms(kl_categorical, kl_continuous,
                                                step, kl_weight),
        "distortion": distortion, "rate": rate, "elbo": -(distortion + rate),
        "rate_categorical": kl_categorical}
    if self.continuous_dim:
      terms["rate_continuous"] = kl_continuous
    return terms

  def _decode_log_prob(self, code, images):
    """`[k, batch]` log p(x|z) of codes `[k, batch, N * K + D]`."""
    k, batch = tf.shape(code)[0], tf.shape(code)[1]
    decoded = self.decode(tf.reshape(code, [k * batch, self.latent_dim]))
    decoded = {name: tf.reshape(value, tf.concat([[k, batch],
                                                  tf.shape(value)[1:]], 0))
               for name, value in decoded.items()}
    return self.likelihood.log_prob(decoded, images)

  def log_weights(self, images, noise, labels=None):
    """Importance log-weights with hard codes z_i ~ q(z|x).

    Args:
      images: `[batch, H, W, C]`.
      noise: `[k, batch, N * K + D]` standard Normal draws.
      labels: unused.

    Returns:
      `[k, batch]` log p(x|z_i) + log p(z_i) - log q(z_i|x).
    """
    del labels
    code, log_q = self.latent_sample(self.encode(images), noise)
    return self._decode_log_prob(code, images) + self.log_prior(code) - log_q

  def exact_log_likelihood(self, images, labels=None, max_decoded=None):
    """log p(x) = log sum_z p(x|z) p(z) over all K^N codes, or None.

    Defined when the code is categorical only and K^N <= `EXACT_MAX_CODES`
    (`enumerates_codes`). The codes are decoded in chunks of
    max(1, max_decoded // batch), each code once for the whole batch, inside
    one graph (a `tf.while_loop`, one chunk live at a time); the chunks'
    log-sum-exps are combined by a running log-sum-exp.

    Args:
      images: `[batch, H, W, C]` float32.
      labels: unused.
      max_decoded: code x image pairs one chunk may hold (an int or int32
        scalar tensor); None means `_DEFAULT_MAX_DECODED`.

    Returns:
      `[batch]` float32 log p(x), or None when the code is not enumerated.
    """
    del labels
    if not self.enumerates_codes:
      return None
    if max_decoded is None:
      max_decoded = _DEFAULT_MAX_DECODED
    batch = tf.shape(images)[0]
    num_codes = tf.constant(self.num_codes)
    chunk = tf.clip_by_value(
        tf.cast(max_decoded, tf.int32) // tf.maximum(batch, 1), 1, num_codes)

    def body(start, total):
      size = tf.minimum(chunk, num_codes - start)
      codes = tf.reshape(
          gumbel.enumerate_codes(start + tf.range(size), self.num_variables,
                                 self.categories),
          [size, self.latent_dim])
      # Each code decoded once, its parameters shared by the whole batch.
      decoded = {
          name: tf.broadcast_to(value[:, tf.newaxis], tf.concat(
              [[size, batch], tf.shape(value)[1:]], 0))
          for name, value in self.decode(codes).items()}
      log_px_z = self.likelihood.log_prob(decoded, images)
      partial = tf.reduce_logsumexp(log_px_z, axis=0)
      return start + size, tf.reduce_logsumexp(tf.stack([total, partial]),
                                               axis=0)

    _, total = tf.while_loop(
        lambda start, total: start < num_codes, body,
        [tf.constant(0), tf.fill([batch], tf.constant(-np.inf, tf.float32))],
        parallel_iterations=1)
    return total - self.num_variables * math.log(self.categories)
