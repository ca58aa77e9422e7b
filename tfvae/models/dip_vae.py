"""DIP-VAE: the ELBO plus a penalty on the aggregate posterior's covariance.

DIP-VAE (Kumar, Sattigeri & Balakrishnan 2018) pushes the covariance of
the codes towards the identity of the N(0, I) prior with

    dip = lambda_od * sum_{i != j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2

(`--dip_lambda_od`, `--dip_lambda_d`), where C is, on the batch of M
examples (`--dip_type`):

- `i`:  Cov_p(x)[mu(x)], the covariance of the posterior means;
- `ii`: Cov_q(z)[z] = E_p(x)[diag sigma^2(x)] + Cov_p(x)[mu(x)], the
  covariance of the aggregate posterior q(z),

with the biased (1/M) batch covariance, as in disentanglement_lib. The
model minimizes

    loss = distortion + kl_weight * KL(q(z|x) || p(z)) + dip,

so the KL schedule weights the ELBO's KL and not the penalty, as in the
paper (its objective is the ELBO minus the penalty). disentanglement_lib's
sweeps, after the paper, pair lambda_d = 10 lambda_od with type i and
lambda_d = lambda_od with type ii.

The penalty is one number per batch. It is added to every example's loss,
so the loop's sum over the examples divided by the global batch carries it
exactly once for one replica. Under a distribution strategy each replica
computes it from its own batch's covariance, and the step minimizes their
mean. `compute_loss` reports it as `dip` (broadcast to `[batch]`).

The model is a VAE and the penalty a regularizer: `elbo`, `log_weights`
and the test NLL are the plain VAE's, `rate` the analytic KL
(`--free_bits` applies to it). The penalty matches the codes to N(0, I)
through the diagonal posterior's mean and scale, so only that prior and no
posterior flow (`OPTIONS` rejects the others).

#### References
Kumar, Sattigeri & Balakrishnan (2018). Variational Inference of
Disentangled Latent Concepts from Unlabeled Observations. ICLR.
Locatello et al. (2019). Challenging Common Assumptions in the Unsupervised
Learning of Disentangled Representations. ICML (disentanglement_lib).
"""

import tensorflow as tf

from tfvae import objectives
from tfvae.models import registry
from tfvae.models.vae import VAE


def code_covariance(loc, scale, dip_type):
  """The batch covariance C the DIP penalty regularizes.

  Args:
    loc: `[batch, latent_dim]` posterior means mu(x).
    scale: `[batch, latent_dim]` posterior standard deviations sigma(x).
    dip_type: `i` (Cov[mu]) or `ii` (Cov[mu] + E[diag sigma^2]).

  Returns:
    `[latent_dim, latent_dim]` covariance (1/batch normalization).
  """
  batch = tf.cast(tf.shape(loc)[0], loc.dtype)
  centered = loc - tf.reduce_mean(loc, axis=0, keepdims=True)
  covariance = tf.matmul(centered, centered, transpose_a=True) / batch
  if dip_type == "ii":
    covariance += tf.linalg.diag(tf.reduce_mean(tf.square(scale), axis=0))
  elif dip_type != "i":
    raise ValueError(f"dip_type must be 'i' or 'ii', not {dip_type!r}.")
  return covariance


def dip_penalty(loc, scale, dip_type, lambda_od, lambda_d):
  """Scalar lambda_od * sum_{i!=j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2.

  Args:
    loc: `[batch, latent_dim]` posterior means.
    scale: `[batch, latent_dim]` posterior standard deviations.
    dip_type: `i` or `ii` (`code_covariance`).
    lambda_od: weight of the off-diagonal term.
    lambda_d: weight of the diagonal term.
  """
  covariance = code_covariance(loc, scale, dip_type)
  diagonal = tf.linalg.diag_part(covariance)
  off_diagonal = covariance - tf.linalg.diag(diagonal)
  return (lambda_od * tf.reduce_sum(tf.square(off_diagonal))
          + lambda_d * tf.reduce_sum(tf.square(diagonal - 1.0)))


@registry.register("dip_vae")
class DIPVAE(VAE):
  """A VAE plus the DIP covariance penalty of the batch's codes."""

  OPTIONS = frozenset({"dip_type", "dip_lambda_od", "dip_lambda_d",
                       "free_bits"})

  def compute_loss(self, images, noise, step, kl_weight, labels=None,
                   training=True):
    """Per-example loss terms (see `VAE.compute_loss`).

    Returns:
      Dict of `[batch]` tensors: `loss` (distortion + kl_weight * KL +
      dip), `distortion`, `rate` (analytic KL), `elbo` (the plain VAE's)
      and `dip`, the batch's penalty broadcast to every example.
    """
    params = self.encode(images, labels, training)
    z, log_q = self.latent_sample(params, noise)
    distortion = -self.likelihood.log_prob(
        self.decode(z, labels, training), images)
    rate, kl_per_dim = self.rate_terms(params, z, log_q)
    dip = tf.broadcast_to(dip_penalty(
        params["loc"], params["scale"], self.config.dip_type,
        self.config.dip_lambda_od, self.config.dip_lambda_d),
                          tf.shape(distortion))
    loss = distortion + self.penalty(rate, kl_per_dim, step, kl_weight) + dip
    return {"loss": loss, "distortion": distortion, "rate": rate,
            "elbo": objectives.elbo(distortion, rate), "dip": dip}
