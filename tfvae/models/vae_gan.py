"""VAE-GAN: a VAE whose reconstructions are also judged by a GAN discriminator.

Larsen et al. (2016) measure reconstructions in the feature space of a GAN
discriminator Dis instead of pixel space, with a Gaussian
p(Dis_l(x) | z) = N(Dis_l(x) | Dis_l(x~), I) where x~ is the decoder's mean
of z ~ q(z|x) and Dis_l the features of Dis's last hidden layer
(`tfvae.networks.image_discriminator`). This variant minimizes, per example,

    loss = kl_weight * KL(q(z|x) || p(z))                    (rate)
         + 0.5 * ||Dis_l(x) - Dis_l(x~)||^2         (feature_distortion)
         + pixel_weight * -log p(x | z)                      (distortion)
         + gan_weight * [-log D(Dec(sg(z))) - log D(Dec(z_p))]     (gan)

with D = sigmoid(Dis), sg the stop-gradient and z_p ~ p(z) = N(0, I): the
decoder's non-saturating GAN loss on a reconstruction and on a prior sample.
The feature term is the Gaussian's -log density without its constant
(F/2 log 2 pi).

The gradients follow the paper's split where it is cheap: the encoder gets
the rate, the feature and the pixel terms but not the GAN term (its fakes
decode sg(z), a second decoder pass); the decoder gets the feature, pixel
and GAN terms (Larsen weight the decoder's feature term by gamma against
the GAN term; `--gan_weight` plays 1/gamma). Dis is left out of the
model's step (`auxiliary_objectives`) and trained by its own Adam
(`--discriminator_learning_rate`, beta_1 = 0.5) on the binary cross-entropy
of real x -> 1 and of the reconstruction and the prior sample (gradients
stopped) -> 0 (Larsen's L_GAN with its two fake terms, divided by 3),
reported per decision as `discriminator_loss` (log 2 at chance) and
`discriminator_accuracy`. Dis is held in `tfvae.auxiliary.Unexported`: the
checkpoint has it, the export neither contains nor needs it.

`--pixel_weight=0` is Larsen's loss. The default 1 keeps the likelihood
head's -log p(x|z) in the loss, which keeps training stable: Dis's features
start as random projections and follow a moving discriminator, and on
binarized data Dis tells binary real images from grey means easily, so the
feature term alone is a weak, shifting target; the pixel term anchors the
decoder and keeps p(x|z) a fitted likelihood, and the feature and GAN terms
act on top of it. (One epoch on binarized Fashion-MNIST, MLP 512-256:
`--pixel_weight=0` reached a reconstruction MSE of 0.23 and a sample
Frechet distance of 105, against 0.11 and 29 with 1.)

The model is still p(z) p(x|z) with the pixel likelihood and q(z|x) as
proposal: `elbo`, `log_weights` and the test NLL are that model's, so they
compare honestly with `vae`'s (the decoder is trained on more than the
likelihood, so expect them somewhat worse). `noise_shape()` is
`(2, latent_dim)`: per example `noise[:, 0]` draws z ~ q(z|x) and
`noise[:, 1]` is z_p; `log_weights` uses the first slice. Images only
(`--encoder=conv` gives a conv Dis, otherwise an MLP); not
`--likelihood=discretized_logistic`, whose 8-bit rounded mean passes no
gradient to the decoder.

#### References
Larsen, Sønderby, Larochelle & Winther (2016). Autoencoding beyond pixels
using a learned similarity metric. ICML.
Goodfellow et al. (2014). Generative Adversarial Nets. NeurIPS.
"""

import tensorflow as tf

from tfvae import objectives
from tfvae.errors import ConfigError
from tfvae.models import registry
from tfvae.models.adversarial import PriorNoiseVAE
from tfvae.networks import image_discriminator


@registry.register("vae_gan")
class VAEGAN(PriorNoiseVAE):
  """A VAE plus a feature-matching and GAN loss from an image discriminator.

  Only the N(0, I) prior (its samples are the step's noise) and a plain
  diagonal posterior.
  """

  accepts_vectors = False
  OPTIONS = frozenset({"gan_weight", "pixel_weight",
                       "discriminator_hidden_dims",
                       "discriminator_learning_rate"})

  def __init__(self, config, data_shape, **kwargs):
    super().__init__(config, data_shape, **kwargs)
    # The `ImageDiscriminator`: images -> (logits `[batch]`, features
    # `[batch, F]`).
    self.add_discriminator(image_discriminator.build_image_discriminator(
        config, self.data_shape))

  @classmethod
  def check_config(cls, config):
    super().check_config(config)
    if config.likelihood == "discretized_logistic":
      raise ConfigError(
          "--model=vae_gan needs a differentiable decoder mean; "
          "--likelihood=discretized_logistic rounds it to 8-bit values. Use "
          "--likelihood=bernoulli or gaussian.")

  def fakes(self, z, prior_z, labels=None, training=False):
    """`[2 * batch, H, W, C]`: decoder means of sg(z), then of z_p.

    Args:
      z: `[batch, latent_dim]` posterior samples (their gradient is stopped).
      prior_z: `[batch, latent_dim]` prior samples.
      labels: unused (unconditional).
      training: batch norm / dropout mode.
    """
    codes = tf.concat([tf.stop_gradient(z), prior_z], 0)
    return self.decode(codes, labels, training)["mean"]

  def compute_loss(self, images, noise, step, kl_weight, labels=None,
                   training=True):
    """Per-example loss terms; `noise` is `[batch, 2, latent_dim]`.

    Returns:
      Dict of `[batch]` tensors: `loss`, `distortion` (the pixel
      -log p(x|z)), `rate` (KL), `elbo` (of the pixel likelihood),
      `feature_distortion` (0.5 ||Dis_l(x) - Dis_l(x~)||^2) and `gan` (the
      decoder's -log D(fake) summed over its two fakes).
    """
    params = self.encode(images, labels, training)
    z, log_q = self.latent_sample(params, noise[:, 0])
    decoded = self.decode(z, labels, training)
    distortion = -self.likelihood.log_prob(decoded, images)
    rate, kl_per_dim = self.rate_terms(params, z, log_q)
    batch = tf.shape(images)[0]
    logits, features = self.discriminator(
        tf.concat([images, decoded["mean"],
                   self.fakes(z, noise[:, 1], labels, training)], 0),
        training=training)
    feature_distortion = 0.5 * tf.reduce_sum(
        tf.square(features[:batch] - features[batch:2 * batch]), axis=-1)
    fake_logits = tf.reshape(logits[2 * batch:], [2, batch])
    # Non-saturating: -log sigmoid(l) = softplus(-l), summed over both fakes.
    gan = tf.reduce_sum(tf.nn.softplus(-fake_logits), axis=0)
    loss = (self.penalty(rate, kl_per_dim, step, kl_weight)
            + feature_distortion + self.config.pixel_weight * distortion
            + self.config.gan_weight * gan)
    return {"loss": loss, "distortion": distortion, "rate": rate,
            "elbo": objectives.elbo(distortion, rate),
            "feature_distortion": feature_distortion, "gan": gan}

  def discriminator_loss(self, images, labels, noise, step, seed,
                         training=True):
    """Dis's binary cross-entropy: real x -> 1, both fakes -> 0.

    Args:
      images: `[batch, H, W, C]`.
      labels: unused.
      noise: `[batch, 2, latent_dim]`, the model step's noise.
      step: unused.
      seed: unused (the fakes come from `noise`).
      training: batch norm / dropout mode.

    Returns:
      Dict of `[batch]` tensors: `loss`, (-log D(x) - log(1 - D(x~)) -
      log(1 - D(Dec(z_p)))) / 3, whose batch mean is the BCE over the
      3 x batch decisions (log 2 at chance), and `accuracy`, the share of
      the three that are right.
    """
    del step, seed
    params = self.encode(images, labels, training)
    z, _ = self.latent_sample(params, noise[:, 0])
    fakes = tf.stop_gradient(self.fakes(z, noise[:, 1], labels, training))
    batch = tf.shape(images)[0]
    logits, _ = self.discriminator(tf.concat([images, fakes], 0),
                                   training=training)
    real = logits[:batch]
    fake = tf.reshape(logits[batch:], [2, batch])
    loss = (tf.nn.softplus(-real)
            + tf.reduce_sum(tf.nn.softplus(fake), 0)) / 3.0
    correct = (tf.cast(real > 0, tf.float32)
               + tf.reduce_sum(tf.cast(fake < 0, tf.float32), 0))
    return {"loss": loss, "accuracy": correct / 3.0}
