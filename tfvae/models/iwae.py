"""Importance Weighted Autoencoder: trains on the k-sample bound.

The loss is the negative importance-weighted bound (Burda et al. 2016)

    L_k(x) = log (1/k) sum_i p(x, z_i) / q(z_i|x),  z_i ~ q(z|x),

with k = `--iw_samples`; L_1 is the ELBO and L_k tightens as k grows. The
logged terms stay comparable with `vae`: `distortion` is -log p(x|z_1) of
the first sample, `rate` the KL (analytic where TFP has it) and `elbo` the
single-sample ELBO -(distortion + rate), not the k-sample bound (which is
`-loss`). The KL schedule (`kl_weight`) does not apply: the bound has no
separate KL term. Free bits, defined on a KL term, are rejected.

`noise_shape()` is `(k, latent_dim)`. `log_weights` takes the callers'
`[n, batch] + noise_shape()` noise and uses the first of the k draws, so an
n-sample log p(x) estimate uses n samples, as for every other variant.

#### References
Burda, Grosse & Salakhutdinov (2016). Importance Weighted Autoencoders. ICLR.
"""

import tensorflow as tf

from tfvae import objectives
from tfvae.errors import ConfigError
from tfvae.models import registry
from tfvae.models.vae import GAUSSIAN_LATENT_OPTIONS
from tfvae.models.vae import VAE


@registry.register("iwae")
class IWAE(VAE):
  """A VAE whose loss is the k-sample importance-weighted bound."""

  OPTIONS = GAUSSIAN_LATENT_OPTIONS | {"iw_samples"}

  @classmethod
  def check_config(cls, config):
    super().check_config(config)
    if config.free_bits > 0:
      raise ConfigError(
          f"--free_bits={config.free_bits} does not apply to --model=iwae: "
          "its importance-weighted bound has no KL term to hold at a "
          "budget. Drop the flag, or use --model=vae.")

  def noise_shape(self):
    """`(iw_samples, latent_dim)`: k posterior draws per example."""
    return (self.config.iw_samples, self.latent_dim)

  def importance_terms(self, images, noise, labels=None, training=False):
    """Log-weights and the pieces they are made of.

    Args:
      images: `[batch, H, W, C]`.
      noise: `[k, batch, latent_dim]` standard Normal draws.
      labels: `[batch]` int32 class ids (conditional models only).
      training: batch norm / dropout mode.

    Returns:
      `(log_weights [k, batch], log_px_z [k, batch], params, z
      [k, batch, latent_dim], log_q [k, batch])`.
    """
    params = self.encode(images, labels, training)
    z, log_q = self.latent_sample(params, noise)
    k, batch = tf.shape(noise)[0], tf.shape(noise)[1]
    flat_labels = None if labels is None else tf.tile(labels, [k])
    decoded = self.decode(tf.reshape(z, [k * batch, self.latent_dim]),
                          flat_labels, training)
    decoded = {name: tf.reshape(value, tf.concat([[k, batch],
                                                  tf.shape(value)[1:]], 0))
               for name, value in decoded.items()}
    log_px_z = self.likelihood.log_prob(decoded, images)
    log_weights = log_px_z + self.prior().log_prob(z) - log_q
    return log_weights, log_px_z, params, z, log_q

  def compute_loss(self, images, noise, step, kl_weight, labels=None,
                   training=True):
    """Per-example terms; `noise` is `[batch, k, latent_dim]`.

    Returns:
      Dict of `[batch]` tensors: `loss` (-L_k), `distortion` and `rate` of
      the first sample, `elbo` (single-sample, = -(distortion + rate)) and
      `iwae_bound` (L_k).
    """
    del step, kl_weight  # The bound has no separate KL term.
    noise = tf.transpose(noise, [1, 0, 2])  # [k, batch, latent_dim]
    log_weights, log_px_z, params, z, log_q = self.importance_terms(
        images, noise, labels, training)
    bound = objectives.iwae_bound(log_weights)
    distortion = -log_px_z[0]
    rate, _ = self.rate_terms(params, z[0], log_q[0])
    return {"loss": -bound, "distortion": distortion, "rate": rate,
            "elbo": objectives.elbo(distortion, rate), "iwae_bound": bound}

  def log_weights(self, images, noise, labels=None):
    """Importance log-weights for log p(x) estimates.

    Args:
      images: `[batch, H, W, C]`.
      noise: `[n, batch, k, latent_dim]` (`[n, batch] + noise_shape()`, as
        the evaluator and the `log_likelihood` signature draw it) or
        `[n, batch, latent_dim]`.
      labels: `[batch]` int32 class ids (conditional models only).

    Returns:
      `[n, batch]` log-weights, drawn with `noise[:, :, 0]`.
    """
    if noise.shape.rank == 4:
      noise = noise[:, :, 0]
    return self.importance_terms(images, noise, labels)[0]
