"""FactorVAE: a VAE whose total correlation is estimated by a discriminator.

FactorVAE (Kim & Mnih 2018) minimizes, per example,

    loss = distortion + kl_weight * KL(q(z|x) || p(z)) + gamma * TC

with gamma = `--tc_weight`. The total correlation
TC = KL(q(z) || prod_j q(z_j)) of the aggregate posterior is estimated by
the density-ratio trick: a discriminator D (`tfvae.networks.discriminator
.CodeDiscriminator`, `--discriminator_hidden_dims`) returns the logit
log D(z) / (1 - D(z)) of "z came from q(z)" against "z came from
prod_j q(z_j)", so that

    TC ~= E_q(z)[log D(z) / (1 - D(z))],

and the `tc` term of example i is D's logit at its own z_i ~ q(z|x_i) (the
batch mean is the estimate). The gradient of that term reaches the encoder
through z; D's own variables are not trained by the model's step.

D is an `tfvae.auxiliary.AuxiliaryObjective` named `discriminator`, trained
by its own Adam (`--discriminator_learning_rate`, beta_1 = 0.5,
beta_2 = 0.9, as in the paper) on the binary cross-entropy

    0.5 * (-log D(z_i) - log(1 - D(perm(z)_i)))

of the batch's codes z ~ q(z|x) (label 1; the step's reparameterization
noise, gradient stopped) against `permute_dims(z)`, every latent dimension
shuffled independently across the batch (label 0), which samples the
product of the batch's marginals. The permutations come from the
objective's stateless seed, so runs resume exactly. The paper draws the
permuted codes from a second batch; here they come from the same batch, as
in disentanglement_lib's FactorVAE: one batch per step keeps the input
order a pure function of (seed, step), and the permuted batch still draws
every dimension from its marginal, but the two sides share their examples.
The loop runs D's step after the model's, so D's codes are recomputed on
the same batch and noise with the just-updated encoder, in training mode
(a batch-normalized encoder's moving statistics are then updated twice per
step). Under a distribution strategy each replica permutes its own batch.
The discriminator reports `discriminator_loss`, `discriminator_accuracy`
(of its 2 x batch decisions) and `discriminator_tc` (its TC estimate on
the step's codes).

The model is a VAE and the TC term a regularizer: `elbo`, `log_weights`
and the test NLL are the plain VAE's, `rate` the analytic KL
(`--free_bits` applies to it). TC regularizes towards a factorized q(z),
which is meant to match the N(0, I) prior, so only that prior and no
posterior flow (`OPTIONS` rejects the others). Under mixed precision D
computes in the policy's dtype and returns float32 logits.

D is held outside the model's Keras layer tracking
(`tfvae.models.adversarial.AdversarialVAE`, `tfvae.auxiliary.Unexported`):
the model's checkpoint still holds it and its optimizer (resume is exact),
but it is none of `model.variables`, so exports (which track the model's
Keras variables) neither contain nor need it.

#### References
Kim & Mnih (2018). Disentangling by Factorising. ICML.
Locatello et al. (2019). Challenging Common Assumptions in the Unsupervised
Learning of Disentangled Representations. ICML (disentanglement_lib).
"""

import tensorflow as tf

from tfvae import objectives
from tfvae.models import registry
from tfvae.models.adversarial import AdversarialVAE
from tfvae.networks import discriminator as discriminator_lib


def permute_dims(z, seed):
  """Each latent dimension shuffled independently across the batch.

  Args:
    z: `[batch, latent_dim]` codes.
    seed: `[2]` int32/int64 stateless seed.

  Returns:
    `[batch, latent_dim]`: column j holds `z[:, j]` in the order of its own
    permutation (argsort of `[latent_dim, batch]` stateless uniforms), so
    every column keeps its values and the rows' joint is broken.
  """
  shape = tf.shape(z)
  keys = tf.random.stateless_uniform(tf.stack([shape[1], shape[0]]), seed)
  order = tf.argsort(keys, axis=1)
  return tf.transpose(tf.gather(tf.transpose(z), order, batch_dims=1))


def discriminator_terms(real_logits, permuted_logits):
  """Per-example binary cross-entropy and accuracy of the discriminator.

  Args:
    real_logits: `[batch]` logits of codes z ~ q(z|x) (label 1).
    permuted_logits: `[batch]` logits of `permute_dims(z)` (label 0).

  Returns:
    Dict of `[batch]` float32 tensors: `loss`,
    0.5 * (-log sigmoid(real) - log(1 - sigmoid(permuted))), whose batch
    mean is the BCE over the 2 x batch samples, and `accuracy`, the mean
    of the two decisions (logit > 0 means "from q(z)").
  """
  loss = 0.5 * (tf.nn.softplus(-real_logits)
                + tf.nn.softplus(permuted_logits))
  accuracy = 0.5 * (tf.cast(real_logits > 0, tf.float32)
                    + tf.cast(permuted_logits < 0, tf.float32))
  return {"loss": loss, "accuracy": accuracy}


@registry.register("factor_vae")
class FactorVAE(AdversarialVAE):
  """A VAE plus gamma times a discriminator's total-correlation estimate."""

  OPTIONS = frozenset({"tc_weight", "discriminator_hidden_dims",
                       "discriminator_learning_rate", "free_bits"})
  # Kim & Mnih (2018): Adam(1e-4, beta_1 = 0.5, beta_2 = 0.9) for D.
  DISCRIMINATOR_LEARNING_RATE = 1e-4
  DISCRIMINATOR_BETAS = (0.5, 0.9)
  DISCRIMINATOR_TERMS = ("loss", "accuracy", "tc")

  def __init__(self, config, data_shape, **kwargs):
    super().__init__(config, data_shape, **kwargs)
    # Built under the caller's dtype policy (mixed precision computes D in
    # bf16/f16); its variables are made by `build_from_shape`, after the
    # encoder's and decoder's, which then initialize as a plain `vae`'s.
    # The `CodeDiscriminator`: codes `[batch, latent_dim]` -> `[batch]`.
    self.add_discriminator(discriminator_lib.build_code_discriminator(config))

  def compute_loss(self, images, noise, step, kl_weight, labels=None,
                   training=True):
    """Per-example loss terms (see `VAE.compute_loss`).

    Returns:
      Dict of `[batch]` tensors: `loss` (distortion + kl_weight * KL +
      tc_weight * tc), `distortion`, `rate` (analytic KL), `elbo` (the
      plain VAE's) and `tc`, D's logit at each example's z.
    """
    params = self.encode(images, labels, training)
    z, log_q = self.latent_sample(params, noise)
    distortion = -self.likelihood.log_prob(
        self.decode(z, labels, training), images)
    rate, kl_per_dim = self.rate_terms(params, z, log_q)
    tc = self.discriminator(z, training=training)
    loss = (distortion + self.penalty(rate, kl_per_dim, step, kl_weight)
            + self.config.tc_weight * tc)
    return {"loss": loss, "distortion": distortion, "rate": rate,
            "elbo": objectives.elbo(distortion, rate), "tc": tc}

  def discriminator_loss(self, images, labels, noise, step, seed,
                         training=True):
    """The discriminator's objective (`AuxiliaryObjective.loss_fn`).

    Args:
      images: `[batch, H, W, C]` the step's batch.
      labels: `[batch]` class ids, or None.
      noise: `[batch, latent_dim]` the step's reparameterization noise.
      step: scalar int64 step (unused).
      seed: `[2]` int64 stateless seed of the permutations.
      training: batch norm / dropout mode.

    Returns:
      Dict of `[batch]` float32 tensors: `loss` and `accuracy`
      (`discriminator_terms`) and `tc`, the logit of the real codes.
    """
    del step
    params = self.encode(images, labels, training)
    z = tf.stop_gradient(self.latent_sample(params, noise)[0])
    real = self.discriminator(z, training=training)
    permuted = self.discriminator(permute_dims(z, seed), training=training)
    return dict(discriminator_terms(real, permuted), tc=real)
