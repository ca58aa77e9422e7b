"""A plain (deterministic) autoencoder: the baseline without a KL term.

The code is the encoder's `loc` (its `scale` is ignored) and the loss is the
reconstruction term alone, -log p(x|z) of the configured likelihood (a
Bernoulli cross-entropy, or for `--likelihood=gaussian` the squared error
scaled by 1 / (2 sigma^2) plus a constant). There is no ELBO or log p(x)
(`has_likelihood_bound = False`): evaluation reports the distortion and
reconstruction error, and the export has no `log_likelihood` signature.

Sampling follows the "fit a density to the codes" recipe (Ghosh et al.
2020): an autoencoder has no prior, so its sampler is `gmm`
(`tfvae.samplers`; `--sampler=prior` is rejected): `after_training` fits a
Gaussian mixture with `--sampler_components` full-covariance components to
the training codes, and `sample` decodes its draws. With
`--sampler_components=1` it is one Gaussian with the mean and covariance of
the codes.

The exported `encode` returns `mean` (the code) and `stddev` (zeros), the
same outputs as Gaussian-latent models, so serving clients need no special
case.

#### References
Hinton & Salakhutdinov (2006). Reducing the Dimensionality of Data with
Neural Networks. Science.
Ghosh et al. (2020). From Variational to Deterministic Autoencoders. ICLR.
"""

import tensorflow as tf

from tfvae import samplers
from tfvae.errors import ConfigError
from tfvae.models import registry
from tfvae.models.vae import VAE


@registry.register("ae")
class AE(VAE):
  """Deterministic encoder and decoder; a mixture fitted to codes samples."""

  has_likelihood_bound = False
  default_sampler = samplers.GMM
  OPTIONS = frozenset()

  @classmethod
  def check_config(cls, config):
    super().check_config(config)
    if config.sampler == samplers.PRIOR:
      raise ConfigError(
          "--sampler=prior: --model=ae is an autoencoder and has no prior to "
          "sample; use --sampler=gmm (its default), with "
          "--sampler_components=1 for a single fitted Gaussian.")

  def encode_code(self, images, labels=None, training=False):
    """`[batch, latent_dim]` the deterministic code (the encoder's `loc`)."""
    return self.encode(images, labels, training)["loc"]

  def export_encode(self, images, labels=None):
    """`{'mean': code, 'stddev': zeros}`, each `[batch, latent_dim]`."""
    code = self.encode_code(images, labels)
    return {"mean": code, "stddev": tf.zeros_like(code)}

  def kl_per_dimension(self, images, labels=None):
    """None: an autoencoder has no KL."""
    del images, labels
    return None

  def compute_loss(self, images, noise, step, kl_weight, labels=None,
                   training=True):
    """Per-example reconstruction loss; `noise`, `step`, `kl_weight` unused.

    Returns:
      Dict of `[batch]` tensors `loss` and `distortion` (equal).
    """
    del noise, step, kl_weight
    code = self.encode_code(images, labels, training)
    distortion = -self.likelihood.log_prob(
        self.decode(code, labels, training), images)
    return {"loss": distortion, "distortion": distortion}

  def log_weights(self, images, noise, labels=None):
    raise NotImplementedError(
        "An autoencoder has no likelihood bound (has_likelihood_bound is "
        "False), so no importance weights.")
