"""InfoVAE: the ELBO's KL term traded against MMD(q(z) || p(z)).

InfoVAE's objective (Zhao et al. 2019, eq. 6) is
`distortion + (1 - alpha) KL(q(z|x) || p(z))
+ (alpha + lambda - 1) D(q(z), p(z))`. With D = MMD this variant minimizes

    loss = distortion + (1 - alpha) * kl_weight * KL + w * MMD^2(q(z), p(z))

with alpha = `--info_alpha`, w = `--mmd_weight` (the MMD's coefficient
alpha + lambda - 1) and the kernel `--mmd_kernel` (`tfvae.mmd`). The default
alpha = 0 is the MMD-regularized VAE: the ELBO plus the MMD term, whose
likelihood bounds are comparable with a VAE's. alpha = 1 is the MMD-VAE with
no KL at all: nothing then keeps q(z|x) wide, its samples sit near the mean,
and the ELBO and the importance-weighted log p(x) (which uses q(z|x) as the
proposal) become very loose — on Fashion-MNIST worse than the per-pixel
baseline (`benchmarks/zoo.py`, 5 epochs: 473 nats against 385).
MMD^2 is the unbiased estimate between the batch's z ~ q(z|x) and as many
prior samples, one scalar per batch (per replica under a distribution
strategy), added to every example's loss so the batch mean carries it once.
The KL schedule (`kl_weight`) scales the KL term.

The model still defines q(z|x), p(z) and p(x|z), so the ELBO and the
importance-weighted log p(x) are reported as for a VAE (`rate` is the
analytic KL; it is logged, not minimized).

`noise_shape()` is `(2, latent_dim)`: per example, `noise[:, 0]` draws z from
q(z|x) and `noise[:, 1]` is a sample of the N(0, I) prior. `log_weights`
uses only the first slice.

#### References
Zhao, Song & Ermon (2019). InfoVAE: Balancing Learning and Inference in
Variational Autoencoders. AAAI.
Tolstikhin et al. (2018). Wasserstein Auto-Encoders. ICLR.
"""

import tensorflow as tf

from tfvae import mmd
from tfvae import objectives
from tfvae.models import registry
from tfvae.models.vae import VAE


@registry.register("info_vae")
class InfoVAE(VAE):
  """A VAE trained on distortion + (1 - alpha) KL + w * MMD(q(z), p(z)).

  Only the N(0, I) prior (its samples are the given noise); a posterior flow
  is allowed (MMD only needs samples of q(z)).
  """

  OPTIONS = frozenset({"mmd_weight", "mmd_kernel", "info_alpha",
                       "posterior_flow",
                       "flow_layers", "flow_hidden_dims"})

  def noise_shape(self):
    """`(2, latent_dim)`: posterior noise and prior samples."""
    return (2, self.latent_dim)

  def compute_loss(self, images, noise, step, kl_weight, labels=None,
                   training=True):
    """Per-example loss terms; `noise` is `[batch, 2, latent_dim]`.

    Returns:
      Dict of `[batch]` tensors: `loss` (distortion + the batch's
      lambda * MMD^2), `distortion`, `rate` (analytic KL, logged), `elbo`
      and `mmd` (the batch's MMD^2 estimate, broadcast).
    """
    del step
    params = self.encode(images, labels, training)
    z, log_q = self.latent_sample(params, noise[:, 0])
    distortion = -self.likelihood.log_prob(
        self.decode(z, labels, training), images)
    rate, _ = self.rate_terms(params, z, log_q)
    divergence = mmd.mmd(z, noise[:, 1], self.config.mmd_kernel)
    penalty = (self.config.mmd_weight * divergence
               + (1.0 - self.config.info_alpha) * kl_weight * rate)
    return {"loss": distortion + penalty, "distortion": distortion,
            "rate": rate, "elbo": objectives.elbo(distortion, rate),
            "mmd": tf.broadcast_to(divergence, tf.shape(distortion))}

  def log_weights(self, images, noise, labels=None):
    """Importance log-weights; `noise` is `[k, batch, 2, latent_dim]` (the
    callers' `[k, batch] + noise_shape()`) or `[k, batch, latent_dim]`.

    Returns:
      `[k, batch]` log-weights, drawn with `noise[:, :, 0]`.
    """
    if noise.shape.rank == 4:
      noise = noise[:, :, 0]
    return super().log_weights(images, noise, labels)
