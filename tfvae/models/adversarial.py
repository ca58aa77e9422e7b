"""Shared base of the variants that train a discriminator beside the VAE.

`AdversarialVAE` holds the discriminator in `tfvae.auxiliary.Unexported`
(in the checkpoint, not in exports) and declares its objective, the
variant's `discriminator_loss`, for the training loop's own Adam step
(`tfvae.auxiliary`). `PriorNoiseVAE` adds prior samples to the step's
noise for variants whose discriminator or generator loss needs them: its
`noise_shape()` is `(2, latent_dim)`, slice 0 drawing z ~ q(z|x) and slice
1 being z_p ~ N(0, I); `log_weights` reads slice 0 only.

Not a registered variant: `factor_vae`, `aae` and `vae_gan` subclass it.

#### References
Goodfellow et al. (2014). Generative Adversarial Nets. NeurIPS.
"""

from tfvae import auxiliary
from tfvae.models.vae import VAE


class AdversarialVAE(VAE):
  """A VAE whose `discriminator` trains by an auxiliary objective.

  Subclasses call `add_discriminator(network)` in `__init__` and define
  `discriminator_loss(images, labels, noise, step, seed, training)`
  returning `[batch]` tensors `loss` and the other `DISCRIMINATOR_TERMS`.
  """

  # Adam's settings of the discriminator unless --discriminator_learning_rate
  # is given (GAN practice: beta_1 = 0.5).
  DISCRIMINATOR_LEARNING_RATE = 1e-4
  DISCRIMINATOR_BETAS = (0.5, 0.9)
  DISCRIMINATOR_TERMS = ("loss", "accuracy")

  def add_discriminator(self, network):
    """Holds `network` as the discriminator and declares its objective."""
    self.auxiliary_networks = auxiliary.Unexported(discriminator=network)
    beta_1, beta_2 = self.DISCRIMINATOR_BETAS
    self._objectives = (auxiliary.AuxiliaryObjective(
        name="discriminator", network=network,
        loss_fn=self.discriminator_loss, terms=self.DISCRIMINATOR_TERMS,
        learning_rate=(self.config.discriminator_learning_rate
                       or self.DISCRIMINATOR_LEARNING_RATE),
        beta_1=beta_1, beta_2=beta_2),)

  @property
  def discriminator(self):
    """The discriminator network."""
    return self.auxiliary_networks.discriminator

  def auxiliary_objectives(self):
    """The discriminator's objective (`discriminator_loss`)."""
    return self._objectives

  def discriminator_loss(self, images, labels, noise, step, seed, training):
    """Per-example discriminator terms (hook; see `tfvae.auxiliary`)."""
    raise NotImplementedError(type(self).__name__)


class PriorNoiseVAE(AdversarialVAE):
  """An `AdversarialVAE` whose step noise also carries prior samples."""

  def noise_shape(self):
    """`(2, latent_dim)`: posterior noise and prior samples z_p."""
    return (2, self.latent_dim)

  def log_weights(self, images, noise, labels=None):
    """Importance log-weights under p(z) = N(0, I); `noise` is
    `[k, batch, 2, latent_dim]` (the callers' `[k, batch] + noise_shape()`)
    or `[k, batch, latent_dim]`.

    Returns:
      `[k, batch]` log-weights, drawn with `noise[:, :, 0]`.
    """
    if noise.shape.rank == 4:
      noise = noise[:, :, 0]
    return super().log_weights(images, noise, labels)
