"""Adversarial autoencoder: q(z) matched to p(z) by a code discriminator.

Makhzani et al. (2016) replace the VAE's KL term by a GAN on the code: a
discriminator D (`tfvae.networks.discriminator.CodeDiscriminator`) learns
to tell prior samples z_p ~ p(z) = N(0, I) from codes z ~ q(z|x), and the
encoder learns to fool it, which pulls the aggregate posterior
q(z) = E_x q(z|x) toward p(z), so decoded prior samples look like data.
With the Gaussian (stochastic) encoder, z = loc + scale * eps, this variant
minimizes, per example,

    loss = -log p(x | z) + adversarial_weight * -log D(z)

(the distortion plus the encoder's non-saturating generator loss, logits
from D), with no KL term; `rate`, the analytic KL(q(z|x) || p(z)), is
reported for monitoring only, and the KL schedule (`kl_weight`) has nothing
to scale. D is held in `tfvae.auxiliary.Unexported` (in the checkpoint,
not in exports), left out of the model's step (`auxiliary_objectives`) and
trained by its own Adam (`--discriminator_learning_rate`, beta_1 = 0.5) on
the binary cross-entropy of z_p -> 1 and z ~ q(z|x) (gradient stopped)
-> 0, reported per decision as `discriminator_loss` (log 2 at chance) and
`discriminator_accuracy`.

The paper alternates a reconstruction and a regularization phase with
separate optimizer steps; here both terms share one loss and one Adam step,
so `--adversarial_weight` sets their balance: the distortion is summed
over pixels (hundreds of nats) while the generator loss is about log 2
nats at equilibrium; hence the default 10. On binarized Fashion-MNIST (MLP
512-256, 32 latents, 3 epochs, D trained at 1e-3) weight 1 left q(z)
loosely matched (D right on 95 % of test codes; squared 2-Wasserstein
distance between N(0, I) and a Gaussian with q(z)'s moments 7.0; median
posterior scale 0.007; NLL 353 nats) where 10 matched it (66 %, 0.63, 0.9,
264 nats; without the term the distance was 224 after one epoch). D must
keep pace with the encoder: `configs/aae.flags` trains it at the model's
1e-3; at the shared default 1e-4 the encoder can outrun it (one of two
seeds drifted at weight 10: D at chance while q(z) moved away from p(z)).

`noise_shape()` is `(2, latent_dim)`: per example `noise[:, 0]` draws z ~
q(z|x) and `noise[:, 1]` is z_p. q(z|x) is a Gaussian, so with the N(0, I)
prior the model p(z) p(x|z) has a valid ELBO and importance-weighted
log p(x) (`log_weights`, first noise slice; `has_likelihood_bound`). They
measure the decoder under the prior, which the adversarial term, not a
KL, pulls q toward. Only that term keeps q(z|x) wide: when it is weak
(or D lags) the posterior scale shrinks toward a deterministic code, the
rate and the ELBO grow loose, and the NLL estimate, with q(z|x) as
proposal, is looser than a `vae`'s at the same k.

#### References
Makhzani, Shlens, Jaitly, Goodfellow & Frey (2016). Adversarial
Autoencoders. ICLR workshop.
"""

import tensorflow as tf

from tfvae import objectives
from tfvae.models import registry
from tfvae.models.adversarial import PriorNoiseVAE
from tfvae.networks import discriminator as discriminator_lib


@registry.register("aae")
class AAE(PriorNoiseVAE):
  """A Gaussian-encoder autoencoder regularized by a code discriminator.

  Only the N(0, I) prior (its samples are the step's noise) and a plain
  diagonal posterior.
  """

  OPTIONS = frozenset({"adversarial_weight", "discriminator_hidden_dims",
                       "discriminator_learning_rate"})
  # Unless --discriminator_learning_rate says otherwise: at 1e-4 the
  # encoder outruns the discriminator under adversarial_weight 10.
  DISCRIMINATOR_LEARNING_RATE = 1e-3

  def __init__(self, config, data_shape, **kwargs):
    super().__init__(config, data_shape, **kwargs)
    # The `CodeDiscriminator`: codes `[batch, latent_dim]` -> `[batch]`.
    self.add_discriminator(discriminator_lib.build_code_discriminator(config))

  def compute_loss(self, images, noise, step, kl_weight, labels=None,
                   training=True):
    """Per-example loss terms; `noise` is `[batch, 2, latent_dim]`.

    `step` and `kl_weight` are unused (there is no KL term).

    Returns:
      Dict of `[batch]` tensors: `loss` (distortion + adversarial_weight *
      adversarial), `distortion`, `rate` (analytic KL, logged), `elbo` and
      `adversarial` (the encoder's -log D(z)).
    """
    del step, kl_weight
    params = self.encode(images, labels, training)
    z, log_q = self.latent_sample(params, noise[:, 0])
    distortion = -self.likelihood.log_prob(
        self.decode(z, labels, training), images)
    rate, _ = self.rate_terms(params, z, log_q)
    # Non-saturating: -log sigmoid(l) = softplus(-l).
    adversarial = tf.nn.softplus(-self.discriminator(z, training=training))
    loss = distortion + self.config.adversarial_weight * adversarial
    return {"loss": loss, "distortion": distortion, "rate": rate,
            "elbo": objectives.elbo(distortion, rate),
            "adversarial": adversarial}

  def discriminator_loss(self, images, labels, noise, step, seed,
                         training=True):
    """D's binary cross-entropy: z_p ~ p(z) -> 1, z ~ q(z|x) -> 0.

    Args:
      images: `[batch, H, W, C]` or `[batch, D]`.
      labels: unused.
      noise: `[batch, 2, latent_dim]`, the model step's noise: z ~ q(z|x)
        from `noise[:, 0]`, z_p = `noise[:, 1]`.
      step: unused.
      seed: unused.
      training: batch norm / dropout mode.

    Returns:
      Dict of `[batch]` tensors: `loss`, 0.5 (-log D(z_p) - log(1 - D(z))),
      whose batch mean is the BCE over the 2 x batch decisions (log 2 at
      chance), and `accuracy`, the share of the two that are right.
    """
    del step, seed
    params = self.encode(images, labels, training)
    z = tf.stop_gradient(self.latent_sample(params, noise[:, 0])[0])
    batch = tf.shape(z)[0]
    logits = self.discriminator(tf.concat([noise[:, 1], z], 0),
                                training=training)
    prior_logits, posterior_logits = logits[:batch], logits[batch:]
    loss = 0.5 * (tf.nn.softplus(-prior_logits)
                  + tf.nn.softplus(posterior_logits))
    correct = (tf.cast(prior_logits > 0, tf.float32)
               + tf.cast(posterior_logits < 0, tf.float32))
    return {"loss": loss, "accuracy": correct / 2.0}
