"""The Variational Autoencoder (Kingma & Welling 2014) and the model interface.

`VAE` is the base of every variant. The training loop, evaluation and export
use only this interface, never a variant's name:

- `encode(images, labels)` -> posterior parameters (`{'loc', 'scale'}`)
- `decode(z, labels)` -> likelihood parameters plus pixel `'mean'`
- `encode_code(images, labels)` / `decode_code(code, labels)`: the
  deterministic continuous code `[batch, code_dim]` and back to parameters
  (traversals, interpolations, active units, reconstructions)
- `reconstruct(images, labels)`, `sample(num_samples, seed, labels)`
- `sample_noise_shapes()` and `sample_from_noise(normal, uniform, labels)`:
  sampling driven by noise drawn outside (export's counter-based generator)
- `fitted_code(images, labels)` `[batch, code_dim()]`, `prior_code(normal,
  uniform)`, `draw_code(normal, uniform)` and their noise shapes: the codes
  `sample` decodes, from p(z) (`--sampler=prior`) or from a Gaussian mixture
  fitted to the training codes (`--sampler=gmm`, `tfvae.samplers`)
- `noise_shape()` and `compute_loss(images, noise, step, kl_weight, labels)`
  -> per-example loss terms
- `log_weights(images, noise, labels)` -> importance log-weights for log p(x)
  (when `has_likelihood_bound`); `exact_log_likelihood(images, labels)` ->
  exact log p(x), or None (the default) where only estimates exist
- `export_encode(images, labels)`, `decode_input_spec()`: what the exported
  `encode` returns and `decode` takes
- `latent_groups()` -> `((name, size), ...)` the code's groups of dimensions
  (the layers of `hvae`), for per-group KL and active units in metrics
- `after_training(dataset, seed)`: a hook run once training has finished
  (by default it fits the `gmm` sampler)
- `auxiliary_objectives()` -> the `tfvae.auxiliary.AuxiliaryObjective`s of
  networks trained by their own optimizer (adversarial variants'
  discriminators); none by default

Under a mixed-precision Keras policy (`tfvae.training.precision`) only the
networks compute in float16/bfloat16, and they return float32; the model
itself, its likelihood head, prior and flow are float32 layers, so
distributions, log-probabilities, KL terms and the loss stay float32.

Capabilities are class attributes: `conditional` (needs labels),
`has_likelihood_bound` (ELBO and log p(x) are defined),
`has_continuous_code` (`fitted_code` is continuous, so `--sampler=gmm`
applies), `default_sampler` (the sampler when `--sampler` is unset),
`OPTIONS` (the variant-specific `ModelConfig` fields it uses;
`registry.build` rejects others). Variants override the smallest hook,
usually `penalty`.

The `gmm` sampler is the layer `code_sampler` (None for `prior`) over codes
of size `code_dim()`, built at the end of `VAE.__init__`, or by
`build_from_shape` for variants that skip `VAE.__init__` (`hvae`); training
leaves it alone and `after_training` fits it.

#### References
Kingma & Welling (2014). Auto-Encoding Variational Bayes. ICLR.
Rezende, Mohamed & Wierstra (2014). Stochastic Backpropagation and
Approximate Inference in Deep Generative Models. ICML.
"""

import keras
import tensorflow as tf

from tfvae import distributions
from tfvae import flows
from tfvae import likelihoods
from tfvae import objectives
from tfvae import priors
from tfvae import samplers
from tfvae.errors import ConfigError
from tfvae.models import registry
from tfvae.networks import factory

# ModelConfig fields any Gaussian-latent variant understands.
GAUSSIAN_LATENT_OPTIONS = frozenset({
    "prior", "prior_components", "posterior_flow", "flow_layers",
    "flow_hidden_dims", "free_bits"})


@registry.register("vae")
class VAE(keras.Model):
  """Gaussian posterior, configurable prior and flow, any likelihood head.

  Args:
    config: a `ModelConfig`.
    data_shape: `(H, W, C)` of images or `(D,)` of vectors.
    num_classes: number of labels in the data, or None.
    columns: the `tfvae.data.columns.Column`s of vector data, or None.
    encoder_body: a Keras network mapping what the encoder reads
      (`encoder_input_shape()`) to features, replacing `config.encoder`.
    decoder_body: a Keras network mapping z to features or a feature map,
      replacing `config.decoder`.
  """

  conditional = False
  has_likelihood_bound = True
  # Data and networks the variant can take (`registry.build` checks them).
  accepts_vectors = True
  accepts_custom_networks = True
  # `fitted_code` is continuous, so a Gaussian mixture can be fitted to it.
  has_continuous_code = True
  # The sampler when `--sampler` is unset (`tfvae.samplers.resolve`).
  default_sampler = samplers.PRIOR
  OPTIONS = GAUSSIAN_LATENT_OPTIONS

  def __init__(self, config, data_shape, num_classes=None, columns=None,
               encoder_body=None, decoder_body=None, **kwargs):
    # float32 whatever the global policy: calling the model must not
    # autocast its inputs or the variables its methods read.
    kwargs.setdefault("dtype", "float32")
    super().__init__(name=config.model, **kwargs)
    self.config = config
    self.data_shape = tuple(data_shape)
    self.latent_dim = config.latent_dim
    self.num_classes = num_classes
    self.columns = None if columns is None else tuple(columns)
    self.likelihood = likelihoods.build_likelihood(config, self.data_shape,
                                                   self.columns)
    self.encoder = factory.build_encoder(config, self.encoder_input_shape(),
                                         body=encoder_body)
    self.decoder = factory.build_decoder(
        config, self.likelihood.parameter_shape, body=decoder_body,
        latent_dim=self.decoder_input_dim())
    self.latent_prior = priors.build_prior(config, self.data_shape)
    self.posterior_flow = flows.build_flow(config)
    self.code_sampler = self.build_code_sampler()

  @classmethod
  def check_config(cls, config):
    """Raises ConfigError for values this variant cannot use (hook).

    Variants that override it call `super().check_config(config)`.
    """
    if config.free_bits > 0 and (config.prior != "normal"
                                 or config.posterior_flow != "none"):
      raise ConfigError(
          "--free_bits needs the per-dimension KL of a diagonal posterior "
          "and prior; use it with --prior=normal --posterior_flow=none.")

  def encoder_input_shape(self):
    """Per-example shape of what the encoder reads (hook; `cvae` adds
    channels): the likelihood's `feature_shape`, the data's own shape except
    for tables (one-hot categories)."""
    return self.likelihood.feature_shape

  def decoder_input_dim(self):
    """Size of what the decoder reads (hook; `cvae` adds the label)."""
    return self.latent_dim

  def build(self, input_shape):
    """Nothing to create here: each network builds on its first call."""
    del input_shape

  def build_from_shape(self):
    """Creates every variable by running the networks once on zeros.

    Also builds `code_sampler` for variants whose `__init__` skips
    `VAE.__init__` (before the first call, which locks the model's state).
    """
    if not hasattr(self, "code_sampler"):
      self.code_sampler = self.build_code_sampler()
    images = tf.zeros((1,) + self.data_shape)
    labels = tf.zeros([1], tf.int32) if self.conditional else None
    noise = tf.zeros((1,) + tuple(self.noise_shape()))
    step = tf.constant(0, tf.int64)
    self(images)
    self.compute_loss(images, noise, step, tf.constant(1.0), labels,
                      training=False)
    for objective in self.auxiliary_objectives():
      objective.loss_fn(images, labels, noise, step,
                        tf.zeros([2], tf.int64), training=False)

  def call(self, images, training=False):
    labels = (tf.zeros(tf.shape(images)[:1], tf.int32) if self.conditional
              else None)
    return self.reconstruct(images, labels, training=training)

  # ---- Distributions -------------------------------------------------------

  def encode(self, images, labels=None, training=False):
    """Posterior parameters.

    Args:
      images: `[batch, H, W, C]` float32 in [0, 1], or `[batch, D]` vectors.
      labels: `[batch]` int32 class ids (conditional models only).
      training: batch norm / dropout mode.

    Returns:
      `{'loc', 'scale'}`, each `[batch, latent_dim]`.
    """
    del labels
    loc, scale = self.encoder(self.likelihood.features(images),
                              training=training)
    return {"loc": loc, "scale": scale}

  def posterior(self, params):
    """The base q0(z|x) from `encode`'s parameters (before any flow)."""
    return distributions.diagonal_normal(params["loc"], params["scale"])

  def prior(self):
    """p(z); event shape `[latent_dim]`."""
    return self.latent_prior.distribution(self)

  def latent_sample(self, params, noise):
    """Reparameterized z ~ q(z|x) and log q(z|x).

    Args:
      params: `encode`'s output, each `[batch, latent_dim]`.
      noise: `[..., batch, latent_dim]` standard Normal draws.

    Returns:
      `(z, log_q)`: `[..., batch, latent_dim]` and `[..., batch]`.
    """
    base = params["loc"] + params["scale"] * noise
    log_q = self.posterior(params).log_prob(base)
    z, log_det = self.posterior_flow(base)
    return z, log_q - log_det

  def decode(self, z, labels=None, training=False):
    """Likelihood parameters and pixel means.

    Args:
      z: `[batch, latent_dim]`.
      labels: `[batch]` int32 class ids (conditional models only).
      training: batch norm / dropout mode.

    Returns:
      Dict of `[batch, H, W, C]` tensors: the likelihood's parameters
      (`logits`, or `loc` and `scale`) and `mean`.
    """
    del labels
    params = self.likelihood(self.decoder(z, training=training))
    return dict(params, mean=self.likelihood.mean(params))

  # ---- Codes and generation ------------------------------------------------

  def encode_code(self, images, labels=None, training=False):
    """`[batch, latent_dim]` the deterministic code (the posterior's centre)."""
    params = self.encode(images, labels, training)
    return self.latent_sample(params, tf.zeros_like(params["loc"]))[0]

  def decode_code(self, code, labels=None, training=False):
    """`decode` of a code from `encode_code` (or any point of the space)."""
    return self.decode(code, labels, training)

  def reconstruct(self, images, labels=None, training=False):
    """`[batch, H, W, C]` pixel means decoded from the deterministic code."""
    code = self.encode_code(images, labels, training)
    return self.decode_code(code, labels, training)["mean"]

  def fitted_code(self, images, labels=None):
    """`[batch, code_dim]` the codes a fitted sampler (`--sampler=gmm`) fits
    and `draw_code` returns (hook; default `encode_code`; `hvae` uses its
    top layer)."""
    return self.encode_code(images, labels)

  def code_dim(self):
    """D, the size of `fitted_code`'s codes (hook).

    Default: the size of `prior_code`'s normal noise, which for Gaussian
    priors is the code it returns: `latent_dim` for `VAE`, the top layer's
    d_L for `hvae`. It is called while the model is constructed (by
    `build_code_sampler`), so an override may read only attributes set by
    then.
    """
    return int(self.prior_code_noise_shapes()[0][0])

  def build_code_sampler(self):
    """The `gmm` sampler layer for `fitted_code`'s codes, or None when the
    model samples its prior (`tfvae.samplers.build`)."""
    if samplers.resolve(self.config, type(self)) != samplers.GMM:
      return None
    return samplers.build(self.config, self.code_dim(), type(self))

  def _fitted_sampler(self):
    """`code_sampler`, or None for `--sampler=prior`.

    Raises:
      NotImplementedError: when the config asks for `gmm` and the model
        never built its sampler (so it cannot silently sample p(z)).
    """
    sampler = getattr(self, "code_sampler", None)
    if sampler is None and samplers.resolve(self.config,
                                            type(self)) == samplers.GMM:
      raise NotImplementedError(
          f"{type(self).__name__} resolves --sampler=gmm but has no "
          "code_sampler; build the model with VAE.__init__ or call "
          "build_from_shape() first.")
    return sampler

  def prior_code_noise_shapes(self):
    """Per-sample `(normal, uniform)` noise shapes `prior_code` takes."""
    return (self.latent_dim,), self.latent_prior.uniform_noise_shape()

  def prior_code(self, normal, uniform):
    """`[n, code_dim]` codes drawn from p(z) with external noise (hook)."""
    return self.latent_prior.sample_from_noise(self, normal, uniform)

  def code_noise_shapes(self):
    """Per-sample `(normal, uniform)` noise shapes `draw_code` takes:
    the `gmm` sampler's `((code_dim,), (1,))`, else the prior's."""
    sampler = self._fitted_sampler()
    if sampler is not None:
      return sampler.noise_shapes()
    return self.prior_code_noise_shapes()

  def draw_code(self, normal, uniform):
    """`[n, code_dim]` the codes `sample` decodes, from external noise:
    the fitted mixture's (`--sampler=gmm`) or p(z)'s (`prior_code`).

    Args:
      normal: `[n] + code_noise_shapes()[0]` standard Normal draws.
      uniform: `[n] + code_noise_shapes()[1]` uniform draws in (0, 1).
    """
    sampler = self._fitted_sampler()
    if sampler is not None:
      return sampler.sample_from_noise(normal, uniform)
    return self.prior_code(normal, uniform)

  def sample_noise_shapes(self):
    """Per-sample shapes of the `(normal, uniform)` noise `sample_from_noise`
    takes."""
    return self.code_noise_shapes()

  def sample_from_noise(self, normal, uniform, labels=None):
    """Images from externally drawn noise.

    Args:
      normal: `[n] + sample_noise_shapes()[0]` standard Normal draws.
      uniform: `[n] + sample_noise_shapes()[1]` uniform draws in (0, 1).
      labels: `[n]` int32 class ids (conditional models only).

    Returns:
      `[n, H, W, C]` pixel means of p(x|z), z ~ p(z).
    """
    z = self.draw_code(normal, uniform)
    return self.decode(z, labels)["mean"]

  def sample(self, num_samples, seed, labels=None):
    """`[num_samples, H, W, C]` pixel means of samples; `seed` is `[2]` int32."""
    normal_shape, uniform_shape = self.sample_noise_shapes()
    seed = tf.convert_to_tensor(seed, tf.int32)
    normal = tf.random.stateless_normal((num_samples,) + normal_shape, seed)
    uniform = tf.random.stateless_uniform(
        (num_samples,) + uniform_shape, seed + tf.constant([0, 1]),
        minval=1e-7, maxval=1.0)
    return self.sample_from_noise(normal, uniform, labels)

  def export_encode(self, images, labels=None):
    """The exported `encode` outputs: `{'mean', 'stddev'}` `[batch, latent]`."""
    params = self.encode(images, labels)
    return {"mean": params["loc"], "stddev": params["scale"]}

  def decode_input_spec(self):
    """The `tf.TensorSpec` of the exported `decode` signature's `z`."""
    return tf.TensorSpec([None, self.latent_dim], tf.float32, "z")

  def auxiliary_objectives(self):
    """Networks trained by an optimizer of their own (hook).

    Returns:
      A tuple of `tfvae.auxiliary.AuxiliaryObjective`s, the same objects on
      every call; empty by default. Their networks' variables are left out
      of the model's own gradient step.
    """
    return ()

  def latent_groups(self):
    """`((name, size), ...)`: consecutive groups of the code's dimensions,
    e.g. the layers of a hierarchy, for per-group KL and active units
    (hook; default one group, `(('z', latent_dim),)`)."""
    return (("z", self.latent_dim),)

  def after_training(self, dataset, seed=0):
    """Hook run after the last step; by default fits the `gmm` sampler.

    With `--sampler=gmm` the mixture is fitted (`tfvae.samplers`) to
    `fitted_code` of at most `samplers.MAX_FIT_CODES` examples, a uniform
    subset chosen with `seed`. Conditional models' codes are computed with
    their labels and fitted ignoring them: one mixture of q(z) aggregated
    over the classes, decoded with the label `sample` is given.

    Args:
      dataset: finite batches of `{'image', 'label'?}` training examples.
      seed: the run seed (the subset and the k-means++ initialization).

    Returns:
      True when it changed the model's variables (the caller then saves a
      checkpoint so exports and resumed runs see the change), else False.
    """
    sampler = self._fitted_sampler()
    if sampler is None:
      return False
    encode = tf.function(self.fitted_code)

    def code_batches():
      for batch in dataset:
        labels = batch.get("label") if self.conditional else None
        yield encode(batch["image"], labels).numpy()

    codes = samplers.collect_codes(code_batches(), samplers.MAX_FIT_CODES,
                                   seed)
    if len(codes) and codes.shape[1] != sampler.code_dim:
      raise ValueError(
          f"fitted_code returns [batch, {codes.shape[1]}] codes but "
          f"code_dim() is {sampler.code_dim}; override code_dim().")
    sampler.fit(codes, seed=seed)
    return True

  # ---- Objective -----------------------------------------------------------

  def noise_shape(self):
    """Per-example shape of the standard Normal noise `compute_loss` takes."""
    return (self.latent_dim,)

  def penalty(self, rate, kl_per_dim, step, kl_weight):
    """The regularizer added to the distortion; variants override this.

    Args:
      rate: `[batch]` KL(q || p) (analytic or one-sample Monte Carlo).
      kl_per_dim: `[batch, latent_dim]` per-dimension KL, or None.
      step: scalar int64 optimizer step.
      kl_weight: scalar float32 weight from the KL schedule.

    Returns:
      `[batch]` penalty: kl_weight * rate, with free bits when set.
    """
    del step
    if self.config.free_bits > 0 and kl_per_dim is not None:
      rate = objectives.free_bits_rate(kl_per_dim, self.config.free_bits)
    return kl_weight * rate

  def rate_terms(self, params, z, log_q):
    """KL(q(z|x) || p(z)) per example and per dimension.

    Analytic when q is a plain diagonal Normal and TFP knows the KL to the
    prior; otherwise the one-sample estimate log q(z|x) - log p(z).

    Returns:
      `(rate [batch], kl_per_dim [batch, latent_dim] or None)`.
    """
    prior = self.prior()
    if self.posterior_flow.is_identity:
      posterior = self.posterior(params)
      kl_per_dim = distributions.kl_per_dimension(posterior, prior)
      return distributions.kl_or_monte_carlo(posterior, prior, z), kl_per_dim
    return log_q - prior.log_prob(z), None

  def kl_per_dimension(self, images, labels=None):
    """`[batch, latent_dim]` analytic KL of each dimension, or None.

    Defined when q(z|x) is a plain diagonal Normal and the prior a diagonal
    Normal (diagnostics: traversal order, collapsed dimensions).
    """
    if not self.posterior_flow.is_identity:
      return None
    return distributions.kl_per_dimension(
        self.posterior(self.encode(images, labels)), self.prior())

  def compute_loss(self, images, noise, step, kl_weight, labels=None,
                   training=True):
    """Per-example loss terms for one batch.

    Args:
      images: `[batch, H, W, C]` float32 in [0, 1].
      noise: `[batch] + noise_shape()` standard Normal draws.
      step: scalar int64 optimizer step.
      kl_weight: scalar float32 KL weight.
      labels: `[batch]` int32 class ids (conditional models only).
      training: batch norm / dropout mode.

    Returns:
      Dict of `[batch]` tensors: `loss` (what is minimized), `distortion`
      (-log p(x|z)), `rate` (KL) and `elbo`.
    """
    params = self.encode(images, labels, training)
    z, log_q = self.latent_sample(params, noise)
    distortion = -self.likelihood.log_prob(
        self.decode(z, labels, training), images)
    rate, kl_per_dim = self.rate_terms(params, z, log_q)
    loss = distortion + self.penalty(rate, kl_per_dim, step, kl_weight)
    return {"loss": loss, "distortion": distortion, "rate": rate,
            "elbo": objectives.elbo(distortion, rate)}

  def log_weights(self, images, noise, labels=None):
    """Importance log-weights log p(x, z_i) - log q(z_i|x), z_i ~ q(z|x).

    Args:
      images: `[batch, H, W, C]`.
      noise: `[k, batch] + noise_shape()` standard Normal draws (as the
        evaluator and the `log_likelihood` signature draw it); variants
        whose `noise_shape()` is not `(latent_dim,)` override this.
      labels: `[batch]` int32 class ids (conditional models only).

    Returns:
      `[k, batch]` log-weights.
    """
    params = self.encode(images, labels)
    z, log_q = self.latent_sample(params, noise)
    k, batch = tf.shape(noise)[0], tf.shape(noise)[1]
    flat_labels = None if labels is None else tf.tile(labels, [k])
    decoded = self.decode(tf.reshape(z, [k * batch, self.latent_dim]),
                          flat_labels)
    decoded = {name: tf.reshape(value, tf.concat([[k, batch],
                                                  tf.shape(value)[1:]], 0))
               for name, value in decoded.items()}
    log_px_z = self.likelihood.log_prob(decoded, images)
    return log_px_z + self.prior().log_prob(z) - log_q

  def exact_log_likelihood(self, images, labels=None, max_decoded=None):
    """`[batch]` exact log p(x), or None where only bounds exist (hook).

    The evaluator reports it instead of the importance-weighted estimate
    when it is a tensor (e.g. `categorical_vae` enumerating a small code).
    Default: None.

    Args:
      images: `[batch, H, W, C]`.
      labels: `[batch]` int32 class ids (conditional models only).
      max_decoded: decoded examples one chunk of the computation may hold.
    """
    del images, labels, max_decoded
    return None
