"""The Variational Autoencoder (Kingma & Welling 2014) and the model interface.

`VAE` is the base every Gaussian-latent variant extends. The training loop,
evaluation and export use only this interface:

- `encode(images)` -> posterior parameters `{'loc', 'scale'}`
- `decode(z)` -> likelihood parameters plus pixel `'mean'`
- `reconstruct(images)`, `sample(num_samples, seed)` -> images
- `noise_shape()` and `compute_loss(images, noise, step, kl_weight)` ->
  per-example loss terms
- `log_weights(images, noise)` -> importance log-weights for log p(x)

Variants override the smallest hook, usually `penalty` (the regularizer).

#### References
Kingma & Welling (2014). Auto-Encoding Variational Bayes. ICLR.
Rezende, Mohamed & Wierstra (2014). Stochastic Backpropagation and
Approximate Inference in Deep Generative Models. ICML.
"""

import keras
import tensorflow as tf

from tfvae import distributions
from tfvae import likelihoods
from tfvae import objectives
from tfvae.errors import ConfigError
from tfvae.models import registry
from tfvae.networks import factory


@registry.register("vae")
class VAE(keras.Model):
  """Gaussian posterior, standard Normal prior, Bernoulli/Gaussian pixels.

  Args:
    config: a `ModelConfig`.
    image_shape: `(H, W, C)` of the data.
    num_classes: number of labels in the data, or None.
  """

  def __init__(self, config, image_shape, num_classes=None, **kwargs):
    super().__init__(name=config.model, **kwargs)
    self.config = config
    self.image_shape = tuple(image_shape)
    self.latent_dim = config.latent_dim
    self.num_classes = num_classes
    self.encoder = factory.build_encoder(config, self.image_shape)
    self.decoder = factory.build_decoder(config, self.image_shape)
    self.likelihood = likelihoods.build_likelihood(config, self.image_shape)

  @classmethod
  def check_config(cls, config):
    """Rejects options this variant cannot use.

    Raises:
      ConfigError: naming the flag and the variant that uses it.
    """
    if config.beta != 1.0 or config.capacity_max > 0:
      raise ConfigError(
          f"--beta/--capacity_max apply to --model=beta_vae, not "
          f"--model={config.model}; drop them or use --model=beta_vae.")

  def build_from_shape(self):
    """Creates every variable by running the networks once on zeros."""
    self(tf.zeros((1,) + self.image_shape))

  def call(self, images, training=False):
    return self.reconstruct(images, training=training)

  # ---- Distributions -------------------------------------------------------

  def encode(self, images, training=False):
    """Posterior parameters.

    Args:
      images: `[batch, H, W, C]` float32 in [0, 1].
      training: batch norm / dropout mode.

    Returns:
      `{'loc', 'scale'}`, each `[batch, latent_dim]`.
    """
    loc, scale = self.encoder(images, training=training)
    return {"loc": loc, "scale": scale}

  def posterior(self, params):
    """q(z|x) from `encode`'s parameters; event shape `[latent_dim]`."""
    return distributions.diagonal_normal(params["loc"], params["scale"])

  def prior(self):
    """p(z); event shape `[latent_dim]`."""
    return distributions.standard_normal(self.latent_dim)

  def decode(self, z, training=False):
    """Likelihood parameters and pixel means.

    Args:
      z: `[batch, latent_dim]`.
      training: batch norm / dropout mode.

    Returns:
      Dict of `[batch, H, W, C]` tensors: the likelihood's parameters
      (`logits`, or `loc` and `scale`) and `mean`.
    """
    params = self.likelihood(self.decoder(z, training=training))
    return dict(params, mean=self.likelihood.mean(params))

  # ---- Generation ----------------------------------------------------------

  def reconstruct(self, images, training=False):
    """`[batch, H, W, C]` pixel means decoded from the posterior mean."""
    return self.decode(self.encode(images, training)["loc"], training)["mean"]

  def sample(self, num_samples, seed):
    """Draws images from the model.

    Args:
      num_samples: scalar int.
      seed: `[2]` int32 stateless seed.

    Returns:
      `[num_samples, H, W, C]` pixel means of p(x|z), z ~ p(z).
    """
    z = self.prior().sample(num_samples, seed=seed)
    return self.decode(z)["mean"]

  # ---- Objective -----------------------------------------------------------

  def noise_shape(self):
    """Per-example shape of the standard Normal noise `compute_loss` takes."""
    return (self.latent_dim,)

  def penalty(self, rate, kl_per_dim, step, kl_weight):
    """The regularizer added to the distortion; variants override this.

    Args:
      rate: `[batch]` KL(q || p).
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

  def compute_loss(self, images, noise, step, kl_weight, training=True):
    """Per-example loss terms for one batch.

    Args:
      images: `[batch, H, W, C]` float32 in [0, 1].
      noise: `[batch, latent_dim]` standard Normal draws (reparameterization).
      step: scalar int64 optimizer step.
      kl_weight: scalar float32 KL weight.
      training: batch norm / dropout mode.

    Returns:
      Dict of `[batch]` tensors: `loss` (what is minimized), `distortion`
      (-log p(x|z)), `rate` (KL) and `elbo`.
    """
    params = self.encode(images, training)
    posterior = self.posterior(params)
    prior = self.prior()
    z = params["loc"] + params["scale"] * noise
    likelihood = self.likelihood.distribution(self.decode(z, training))
    distortion = -likelihood.log_prob(images)
    rate = distributions.kl_or_monte_carlo(posterior, prior, z)
    kl_per_dim = distributions.kl_per_dimension(posterior, prior)
    loss = distortion + self.penalty(rate, kl_per_dim, step, kl_weight)
    return {"loss": loss, "distortion": distortion, "rate": rate,
            "elbo": objectives.elbo(distortion, rate)}

  def log_weights(self, images, noise):
    """Importance log-weights log p(x, z_i) - log q(z_i|x), z_i ~ q(z|x).

    Args:
      images: `[batch, H, W, C]`.
      noise: `[k, batch, latent_dim]` standard Normal draws.

    Returns:
      `[k, batch]` log-weights.
    """
    params = self.encode(images)
    posterior = self.posterior(params)
    z = params["loc"] + params["scale"] * noise
    k, batch = tf.shape(noise)[0], tf.shape(noise)[1]
    decoded = self.decode(tf.reshape(z, [k * batch, self.latent_dim]))
    decoded = {name: tf.reshape(value, tf.concat([[k, batch],
                                                  tf.shape(value)[1:]], 0))
               for name, value in decoded.items()}
    log_px_z = self.likelihood.distribution(decoded).log_prob(images)
    return log_px_z + self.prior().log_prob(z) - posterior.log_prob(z)
