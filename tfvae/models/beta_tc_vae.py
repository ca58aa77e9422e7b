"""beta-TCVAE: the KL split into MI, total correlation and dimension-wise KL.

Averaged over the data, KL(q(z|x) || p(z)) decomposes (Chen et al. 2018) as

    E[log q(z|x) - log q(z)]                 index-code mutual information
  + E[log q(z) - sum_j log q(z_j)]           total correlation (TC)
  + E[sum_j log q(z_j) - log p(z)]           dimension-wise KL

and beta-TCVAE penalizes `MI + beta * TC + dimKL` (beta = `--beta`), times
the KL schedule's weight. The aggregate posterior terms are estimated on
the minibatch with minibatch-weighted sampling (MWS, Chen et al. eq. S6):

    log q(z_i) ~= logsumexp_j log q(z_i|x_j) - log(N * M),

and likewise per dimension, for a batch of M examples from a data set of N.
The model does not see N: `dataset_size` (default 60000, set it on the
instance) only shifts log q(z) and log q(z_j) by the constant log N, so it
changes the reported MI and TC split but not the gradients. (Minibatch
stratified sampling needs N too, so it would not remove that choice.)
The batch is the per-replica batch under a distribution strategy.

The reported `rate` is the analytic KL and `elbo` the usual ELBO; with
beta = 1 the penalty equals the one-sample KL, log q(z|x) - log p(z).
Only the N(0, I) prior and no flow (`OPTIONS` rejects the others).

#### References
Chen, Li, Grosse & Duvenaud (2018). Isolating Sources of Disentanglement in
Variational Autoencoders. NeurIPS.
"""

import math

import tensorflow as tf

from tfvae import objectives
from tfvae.models import registry
from tfvae.models.vae import VAE

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _normal_log_density(x, loc, scale):
  return -0.5 * tf.square((x - loc) / scale) - tf.math.log(scale) - (
      _HALF_LOG_2PI)


def tc_decomposition(z, loc, scale, log_prior, dataset_size):
  """Per-example MWS estimates of MI, TC and dimension-wise KL.

  Args:
    z: `[batch, latent_dim]` z_i ~ q(z|x_i).
    loc: `[batch, latent_dim]` means of q(z|x_j).
    scale: `[batch, latent_dim]` standard deviations of q(z|x_j).
    log_prior: `[batch]` log p(z_i).
    dataset_size: N, a Python number.

  Returns:
    Dict of `[batch]` tensors `mi`, `tc`, `dim_kl` whose sum is
    log q(z_i|x_i) - log p(z_i).
  """
  # [i, j, latent_dim]: log q(z_i,d | x_j).
  pairwise = _normal_log_density(z[:, None, :], loc[None, :, :],
                                 scale[None, :, :])
  log_q_zx = tf.reduce_sum(tf.linalg.diag_part(
      tf.transpose(pairwise, [2, 0, 1])), axis=0)
  batch = tf.cast(tf.shape(z)[0], z.dtype)
  log_nm = tf.math.log(batch * tf.cast(dataset_size, z.dtype))
  log_q_z = tf.reduce_logsumexp(tf.reduce_sum(pairwise, axis=2),
                                axis=1) - log_nm
  log_prod_q_zj = tf.reduce_sum(
      tf.reduce_logsumexp(pairwise, axis=1) - log_nm, axis=1)
  return {"mi": log_q_zx - log_q_z,
          "tc": log_q_z - log_prod_q_zj,
          "dim_kl": log_prod_q_zj - log_prior}


@registry.register("beta_tc_vae")
class BetaTCVAE(VAE):
  """A VAE penalizing MI + beta * TC + dimension-wise KL."""

  OPTIONS = frozenset({"beta"})
  # N of the MWS estimator; the model is not told the training set's size.
  dataset_size = 60000

  def compute_loss(self, images, noise, step, kl_weight, labels=None,
                   training=True):
    """Per-example loss terms (see `VAE.compute_loss`).

    Returns:
      Dict of `[batch]` tensors: `loss`, `distortion`, `rate` (analytic
      KL), `elbo`, and the MWS estimates `mi`, `tc`, `dim_kl`.
    """
    del step
    params = self.encode(images, labels, training)
    z, log_q = self.latent_sample(params, noise)
    distortion = -self.likelihood.log_prob(
        self.decode(z, labels, training), images)
    rate, _ = self.rate_terms(params, z, log_q)
    terms = tc_decomposition(z, params["loc"], params["scale"],
                             self.prior().log_prob(z), self.dataset_size)
    penalty = terms["mi"] + self.config.beta * terms["tc"] + terms["dim_kl"]
    return dict(terms, loss=distortion + kl_weight * penalty,
                distortion=distortion, rate=rate,
                elbo=objectives.elbo(distortion, rate))
