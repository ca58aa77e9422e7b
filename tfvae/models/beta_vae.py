"""beta-VAE: a weighted KL term, or a KL held at a growing capacity.

With `capacity_max = 0` the penalty is `beta * kl_weight * KL` (Higgins et
al. 2017); otherwise it is `gamma * |KL - C(step)|` with C growing linearly
to `capacity_max` over `capacity_steps` (Burgess et al. 2018), which replaces
the KL schedule.

#### References
Higgins et al. (2017). beta-VAE: Learning Basic Visual Concepts with a
Constrained Variational Framework. ICLR.
Burgess et al. (2018). Understanding disentangling in beta-VAE. arXiv:1804.03599.
"""

import tensorflow as tf

from tfvae import schedules
from tfvae.models import registry
from tfvae.models.vae import GAUSSIAN_LATENT_OPTIONS
from tfvae.models.vae import VAE


@registry.register("beta_vae")
class BetaVAE(VAE):
  """A VAE whose only change is the regularizer."""

  OPTIONS = GAUSSIAN_LATENT_OPTIONS | {"beta", "capacity_max",
                                       "capacity_steps", "gamma"}

  def penalty(self, rate, kl_per_dim, step, kl_weight):
    if self.config.capacity_max > 0:
      target = schedules.capacity(step, self.config.capacity_max,
                                  self.config.capacity_steps)
      return self.config.gamma * tf.abs(rate - target)
    return self.config.beta * super().penalty(rate, kl_per_dim, step,
                                              kl_weight)
