"""A hierarchical VAE: the Ladder VAE with L stochastic layers.

Layers are numbered from the bottom: z_1 is closest to x, z_L the top, of
sizes `--latent_dims` (bottom first; empty: `--latent_dim` in every layer).
The generative model is

    p(z_L) = N(0, I),  p(z_i | z_{>i}) = N(mu_p,i, sigma_p,i^2),
    p(x | z_1),

the prior parameters computed from top-down features t_{i+1} of the upper
latents and the image from z_1 (`tfvae.networks.ladder.TopDown`).
Inference shares that path (Sønderby et al. 2016): a deterministic
bottom-up pass gives an estimate (mu_hat_i, sigma_hat_i) per layer, and
going down

    q(z_L | x) = N(mu_hat_L, sigma_hat_L^2),
    q(z_i | z_{>i}, x) = N(mu_q,i, sigma_q,i^2),
    sigma_q^2 = 1 / (sigma_hat^-2 + sigma_p^-2),
    mu_q = (mu_hat sigma_hat^-2 + mu_p sigma_p^-2) sigma_q^2,

the precision-weighted combination of the bottom-up estimate and the
top-down prior. With one layer this is a plain VAE.

The loss is -log p(x | z_1) + kl_weight * sum_i KL_i, where KL_i is the
analytic KL(q(z_i | z_{>i}, x) || p(z_i | z_{>i})) given the sampled upper
latents (the ELBO's one-sample estimate). `--free_bits=lambda` applies per
layer on the batch mean (Kingma et al. 2016): layer i contributes
max(mean_batch KL_i, lambda * d_i), so a layer whose mean KL is below its
budget of lambda nats per dimension gets no gradient from its KL.

Train it with a KL warm-up (`--kl_schedule=linear --kl_warmup_steps`, about
the first half of the steps). Without one, on Fashion-MNIST, the lower
layers' KL falls to ~0 within the first epoch: the prior p(z_1 | z_2)
shrinks until q(z_1 | .) equals it, the bottom-up estimate then gets no
gradient, and z_1 stays a deterministic function of z_2 (a deeper
one-layer VAE, ~3 nats worse than `vae` after 5 epochs). Free bits alone
(0.1 nat per dimension) kept z_1 in use but scored no better.

The code (`encode_code`, the exported `encode` `mean` and `decode` `z`) is
the concatenation of every layer's latent, bottom first, `[batch,
sum(latent_dims)]`; its deterministic value is the posterior-mean path
(z_L = mu_hat_L, then each z_i = mu_q,i given the means above). `decode`
takes that concatenation and, as p(x | z_1) says, its pixels depend on the
z_1 part alone: the upper layers act on x only through the prior of z_1
(so traversals of their dimensions leave the image unchanged).
`kl_per_dimension` is each layer's analytic per-dimension KL along that
path, and `latent_groups` names the layers (`z1`, `z2`, ...) so that
metrics report `kl_per_layer` and `active_units_per_layer`.
`log_weights` importance-weights with the full hierarchical posterior:
log p(x|z_1) + sum_{i<L} log p(z_i|z_{>i}) + log p(z_L) - sum_i log q(z_i|.),
noise `(sum(latent_dims),)` laid out as the code. `sample` draws the top
layer with `draw_code` (N(0, I), or a fitted sampler's code; its noise
first) and then the lower layers from their conditional priors with the
rest of the normal noise, top-down.

#### References
Sønderby, Raiko, Maaløe, Sønderby & Winther (2016). Ladder Variational
Autoencoders. NeurIPS.
Kingma et al. (2016). Improved Variational Inference with Inverse
Autoregressive Flow. NeurIPS (free bits).
Vahdat & Kautz (2020). NVAE: A Deep Hierarchical Variational Autoencoder.
NeurIPS.
Child (2021). Very Deep VAEs Generalize Autoregressive Models and Can
Outperform Them on Images. ICLR.
"""

import keras
import tensorflow as tf

from tfvae import distributions
from tfvae import likelihoods
from tfvae import objectives
from tfvae.errors import ConfigError
from tfvae.models import registry
from tfvae.models.vae import VAE
from tfvae.networks import factory
from tfvae.networks import ladder


def layer_dims(config):
  """Latent sizes per layer, bottom first, from `config`."""
  if config.latent_dims:
    return tuple(config.latent_dims)
  return (config.latent_dim,) * config.latent_layers


def precision_weighted(loc_a, scale_a, loc_b, scale_b):
  """The product of two diagonal Gaussians, renormalized (LVAE's q).

  Args:
    loc_a, scale_a: `[..., d]` the bottom-up estimate.
    loc_b, scale_b: `[..., d]` the top-down prior.

  Returns:
    `(loc, scale)`: precision-weighted mean and the scale of precision
    sigma_a^-2 + sigma_b^-2, each `[..., d]`.
  """
  var_a, var_b = tf.square(scale_a), tf.square(scale_b)
  total = var_a + var_b
  loc = (loc_a * var_b + loc_b * var_a) / total
  scale = tf.sqrt(var_a * var_b / total)
  return loc, scale


def free_bits_per_layer(kl_per_dim, dims, free_bits):
  """The rate with free bits per layer, as the optimizer sees it.

  Args:
    kl_per_dim: `[batch, sum(dims)]` per-dimension KL, layers bottom first.
    dims: latent size of each layer.
    free_bits: nats per dimension, a Python float >= 0.

  Returns:
    `[batch]` rate whose batch mean is
    `sum_i max(mean_b KL_i, free_bits * d_i)` with KL_i a layer's summed KL;
    layers under their budget contribute a constant (no gradient).
  """
  total = 0.0
  for kl in tf.split(kl_per_dim, list(dims), axis=-1):
    layer = tf.reduce_sum(kl, axis=-1)
    budget = tf.cast(free_bits * kl.shape[-1], layer.dtype)
    total += tf.where(tf.reduce_mean(layer) > budget, layer,
                      tf.fill(tf.shape(layer), budget))
  return total


@registry.register("hvae")
class HVAE(VAE):
  """Ladder VAE: bottom-up estimates precision-weighted with top-down priors.

  Args:
    config: a `ModelConfig`.
    data_shape: `(H, W, C)` of images or `(D,)` of vectors.
    num_classes: number of labels in the data (unused).
    columns: the `tfvae.data.columns.Column`s of vector data, or None.
  """

  accepts_custom_networks = False
  OPTIONS = frozenset({"latent_layers", "latent_dims", "free_bits"})

  def __init__(self, config, data_shape, num_classes=None, columns=None,
               **kwargs):
    # VAE.__init__ builds one-layer networks, prior and flow; none apply.
    kwargs.setdefault("dtype", "float32")
    keras.Model.__init__(self, name=config.model, **kwargs)  # pylint: disable=non-parent-init-called
    self.config = config
    self.data_shape = tuple(data_shape)
    self.num_classes = num_classes
    self.columns = None if columns is None else tuple(columns)
    self.latent_dims = layer_dims(config)
    # The code: every layer's latent, concatenated bottom first.
    self.latent_dim = sum(self.latent_dims)
    self.likelihood = likelihoods.build_likelihood(config, self.data_shape,
                                                   self.columns)
    feature_shape = self.likelihood.feature_shape
    widths, activation, batch_norm = factory.settings(config, config.encoder,
                                                     feature_shape)
    width = ladder.ladder_width(config, feature_shape)
    self.encoder = ladder.BottomUp(self.latent_dims, config.encoder, widths,
                                   width, activation, batch_norm,
                                   config.dropout, name="encoder")
    image_network = factory.build_decoder(
        config, self.likelihood.parameter_shape)
    _, decoder_activation, _ = factory.settings(config, config.decoder,
                                               feature_shape)
    self.decoder = ladder.TopDown(self.latent_dims, width, decoder_activation,
                                  image_network, name="decoder")

  @classmethod
  def check_config(cls, config):
    super().check_config(config)
    if config.latent_dims and len(config.latent_dims) != config.latent_layers:
      raise ConfigError(
          f"--latent_dims={','.join(map(str, config.latent_dims))} lists "
          f"{len(config.latent_dims)} layers but --latent_layers="
          f"{config.latent_layers}; give one size per layer, or drop "
          "--latent_dims to use --latent_dim in every layer.")

  def latent_groups(self):
    """`(('z1', d_1), ..., ('zL', d_L))`: the code's layers, bottom first."""
    return tuple((f"z{i + 1}", dim) for i, dim in enumerate(self.latent_dims))

  # ---- The two paths -------------------------------------------------------

  def bottom_up(self, images, training=False):
    """List, bottom first, of the `(loc, scale)` estimates `[batch, d_i]`."""
    return self.encoder(self.likelihood.features(images), training=training)

  def _split(self, code):
    """`[..., sum(d)]` -> list, bottom first, of `[..., d_i]`."""
    return tf.split(code, list(self.latent_dims), axis=-1)

  def infer(self, estimates, noise):
    """Samples z top-down through the posterior; no image.

    Args:
      estimates: `bottom_up`'s output, each `[n, d_i]`.
      noise: `[n, sum(d)]` standard Normal draws, laid out as the code
        (zeros give the posterior-mean path).

    Returns:
      Dict of lists, bottom first: `z`, `posterior` and `prior` (each
      `(loc, scale)` `[n, d_i]`; the top prior is N(0, I)).
    """
    top = len(self.latent_dims) - 1
    noise = self._split(noise)
    z, posterior, prior = [None] * (top + 1), [None] * (top + 1), [None] * (
        top + 1)
    loc, scale = estimates[top]
    posterior[top] = (loc, scale)
    prior[top] = (tf.zeros_like(loc), tf.ones_like(scale))
    z[top] = loc + scale * noise[top]
    above = None
    for index in range(top - 1, -1, -1):
      above = self.decoder.features(index + 1, z[index + 1], above)
      prior[index] = self.decoder.prior_params(index, above)
      posterior[index] = precision_weighted(*estimates[index], *prior[index])
      loc, scale = posterior[index]
      z[index] = loc + scale * noise[index]
    return {"z": z, "posterior": posterior, "prior": prior}

  def _image_params(self, z_bottom, training=False):
    """p(x | z_1)'s parameters and `mean` from `[n, d_1]` z_1."""
    params = self.likelihood(self.decoder(z_bottom, training=training))
    return dict(params, mean=self.likelihood.mean(params))

  @staticmethod
  def _kl_per_dim(path):
    """`[n, sum(d)]` analytic KL of each layer's posterior to its prior."""
    return tf.concat([
        distributions.kl_per_dimension(
            distributions.diagonal_normal(*q), distributions.diagonal_normal(
                *p)) for q, p in zip(path["posterior"], path["prior"])],
                     axis=-1)

  # ---- The model interface -------------------------------------------------

  def encode(self, images, labels=None, training=False):
    """The posterior along the posterior-mean path.

    Returns:
      `{'loc', 'scale'}`, each `[batch, sum(latent_dims)]`, bottom first.
    """
    del labels
    estimates = self.bottom_up(images, training)
    path = self.infer(estimates, tf.zeros(
        [tf.shape(images)[0], self.latent_dim]))
    return {"loc": tf.concat([q[0] for q in path["posterior"]], -1),
            "scale": tf.concat([q[1] for q in path["posterior"]], -1)}

  def decode(self, z, labels=None, training=False):
    """Likelihood parameters from every layer's latents.

    Args:
      z: `[batch, sum(latent_dims)]` the layers' latents, bottom first;
        p(x | z_1) reads the first `latent_dims[0]`.
      labels: unused.
      training: batch norm / dropout mode.

    Returns:
      Dict of `[batch, H, W, C]` tensors: the likelihood's parameters and
      `mean`.
    """
    del labels
    return self._image_params(z[:, :self.latent_dims[0]], training)

  def encode_code(self, images, labels=None, training=False):
    """`[batch, sum(latent_dims)]` the posterior-mean path's latents."""
    return self.encode(images, labels, training)["loc"]

  def export_encode(self, images, labels=None):
    """`mean`, `stddev` `[N, sum(latent_dims)]` (bottom first) and per layer
    `mean_z<i>`, `stddev_z<i>` `[N, d_i]`, along the posterior-mean path."""
    params = self.encode(images, labels)
    outputs = {"mean": params["loc"], "stddev": params["scale"]}
    for (name, _), loc, scale in zip(self.latent_groups(),
                                     self._split(params["loc"]),
                                     self._split(params["scale"])):
      outputs[f"mean_{name}"] = loc
      outputs[f"stddev_{name}"] = scale
    return outputs

  def kl_per_dimension(self, images, labels=None):
    """`[batch, sum(latent_dims)]` each layer's analytic KL per dimension,
    along the posterior-mean path (upper latents at their means)."""
    del labels
    estimates = self.bottom_up(images)
    return self._kl_per_dim(self.infer(estimates, tf.zeros(
        [tf.shape(images)[0], self.latent_dim])))

  # ---- Generation ----------------------------------------------------------

  def fitted_code(self, images, labels=None):
    """`[batch, d_L]` the top layer's posterior mean."""
    del labels
    return self.bottom_up(images)[-1][0]

  def prior_code_noise_shapes(self):
    """`((d_L,), (1,))`: the top layer's N(0, I) takes normal noise only."""
    return (self.latent_dims[-1],), (1,)

  def prior_code(self, normal, uniform):
    """`[n, d_L]` top-layer codes from N(0, I): the normal noise itself."""
    del uniform
    return normal

  def sample_noise_shapes(self):
    """The top code's noise (`code_noise_shapes`), then d_1 + ... + d_{L-1}
    normals for the lower layers."""
    normal, uniform = self.code_noise_shapes()
    return (int(normal[0]) + sum(self.latent_dims[:-1]),), tuple(uniform)

  def sample_from_noise(self, normal, uniform, labels=None):
    """Images from externally drawn noise.

    Args:
      normal: `[n] + sample_noise_shapes()[0]`: the top code's noise, then
        the lower layers', top-down (z_{L-1} first, z_1 last).
      uniform: `[n] + sample_noise_shapes()[1]` for `draw_code`.
      labels: unused.

    Returns:
      `[n, H, W, C]` pixel means of p(x | z_1), z from the hierarchical
      prior.
    """
    del labels
    code_size = int(self.code_noise_shapes()[0][0])
    z = self.draw_code(normal[:, :code_size], uniform)
    rest = normal[:, code_size:]
    above, offset = None, 0
    for index in range(len(self.latent_dims) - 2, -1, -1):
      above = self.decoder.features(index + 1, z, above)
      loc, scale = self.decoder.prior_params(index, above)
      dim = self.latent_dims[index]
      z = loc + scale * rest[:, offset:offset + dim]
      offset += dim
    return self._image_params(z)["mean"]

  # ---- Objective -----------------------------------------------------------

  def noise_shape(self):
    """`(sum(latent_dims),)`, laid out as the code (bottom first)."""
    return (self.latent_dim,)

  def penalty(self, rate, kl_per_dim, step, kl_weight):
    """`kl_weight` times the rate, with free bits per layer when set."""
    del step
    if self.config.free_bits > 0:
      rate = free_bits_per_layer(kl_per_dim, self.latent_dims,
                                 self.config.free_bits)
    return kl_weight * rate

  def compute_loss(self, images, noise, step, kl_weight, labels=None,
                   training=True):
    """Per-example loss terms; `noise` is `[batch, sum(latent_dims)]`.

    Returns:
      Dict of `[batch]` tensors: `loss`, `distortion` (-log p(x|z_1)),
      `rate` (sum of the layers' KL) and `elbo`.
    """
    del labels
    path = self.infer(self.bottom_up(images, training), noise)
    decoded = self._image_params(path["z"][0], training)
    distortion = -self.likelihood.log_prob(decoded, images)
    kl_per_dim = self._kl_per_dim(path)
    rate = tf.reduce_sum(kl_per_dim, axis=-1)
    loss = distortion + self.penalty(rate, kl_per_dim, step, kl_weight)
    return {"loss": loss, "distortion": distortion, "rate": rate,
            "elbo": objectives.elbo(distortion, rate)}

  def log_weights(self, images, noise, labels=None):
    """Importance log-weights with the full hierarchical posterior.

    log p(x|z_1) + sum_i log p(z_i | z_{>i}) - sum_i log q(z_i | z_{>i}, x),
    the top prior N(0, I).

    Args:
      images: `[batch, H, W, C]`.
      noise: `[k, batch, sum(latent_dims)]` standard Normal draws.
      labels: unused.

    Returns:
      `[k, batch]` log-weights.
    """
    del labels
    k, batch = tf.shape(noise)[0], tf.shape(noise)[1]
    estimates = [(tf.tile(loc, [k, 1]), tf.tile(scale, [k, 1]))
                 for loc, scale in self.bottom_up(images)]
    path = self.infer(estimates, tf.reshape(noise,
                                            [k * batch, self.latent_dim]))
    decoded = self._image_params(path["z"][0])
    decoded = {name: tf.reshape(value, tf.concat([[k, batch],
                                                  tf.shape(value)[1:]], 0))
               for name, value in decoded.items()}
    log_weights = self.likelihood.log_prob(decoded, images)
    for z, q, p in zip(path["z"], path["posterior"], path["prior"]):
      log_ratio = (distributions.diagonal_normal(*p).log_prob(z)
                   - distributions.diagonal_normal(*q).log_prob(z))
      log_weights += tf.reshape(log_ratio, [k, batch])
    return log_weights
