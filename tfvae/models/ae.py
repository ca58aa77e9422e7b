"""A plain (deterministic) autoencoder: the baseline without a KL term.

The code is the encoder's `loc` (its `scale` is ignored) and the loss is the
reconstruction term alone, -log p(x|z) of the configured likelihood (a
Bernoulli cross-entropy, or for `--likelihood=gaussian` the squared error
scaled by 1 / (2 sigma^2) plus a constant). There is no ELBO or log p(x)
(`has_likelihood_bound = False`): evaluation reports the distortion and
reconstruction error, and the export has no `log_likelihood` signature.

Sampling follows the "fit a density to the codes" recipe (Ghosh et al.
2020): `after_training` fits one Gaussian N(mu, L L^T), with the mean and
full covariance of the training codes, and `sample_from_noise` decodes
mu + L eps, eps ~ N(0, I). mu and L are non-trainable variables, so
checkpoints and exports carry them; until fitted they are 0 and I.

The exported `encode` returns `mean` (the code) and `stddev` (zeros), the
same outputs as Gaussian-latent models, so serving clients need no special
case.

#### References
Hinton & Salakhutdinov (2006). Reducing the Dimensionality of Data with
Neural Networks. Science.
Ghosh et al. (2020). From Variational to Deterministic Autoencoders. ICLR.
"""

import numpy as np
import tensorflow as tf

from tfvae.models import registry
from tfvae.models.vae import VAE

# Added to the covariance's diagonal so its Cholesky factor exists when some
# code dimensions are (nearly) constant.
COVARIANCE_JITTER = 1e-6


def fit_gaussian(codes, jitter=COVARIANCE_JITTER):
  """Mean and Cholesky factor of the sample covariance of `codes`.

  Args:
    codes: `[num_examples, code_dim]` array, num_examples >= 2.
    jitter: added to the covariance's diagonal.

  Returns:
    `(mean [code_dim], scale_tril [code_dim, code_dim])` float64 numpy
    arrays with scale_tril @ scale_tril.T = np.cov(codes) + jitter * I.
  """
  codes = np.asarray(codes, np.float64)
  mean = codes.mean(axis=0)
  covariance = np.atleast_2d(np.cov(codes, rowvar=False))
  covariance += jitter * np.eye(codes.shape[1])
  return mean, np.linalg.cholesky(covariance)


@registry.register("ae")
class AE(VAE):
  """Deterministic encoder and decoder; a Gaussian fitted to codes samples."""

  has_likelihood_bound = False
  OPTIONS = frozenset()

  def __init__(self, config, data_shape, num_classes=None, **kwargs):
    super().__init__(config, data_shape, num_classes, **kwargs)
    self.code_mean = self.add_weight(
        name="code_mean", shape=(self.latent_dim,), initializer="zeros",
        trainable=False)
    self.code_scale_tril = self.add_weight(
        name="code_scale_tril", shape=(self.latent_dim, self.latent_dim),
        initializer="identity", trainable=False)

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
    likelihood = self.likelihood.distribution(
        self.decode(code, labels, training))
    distortion = -likelihood.log_prob(images)
    return {"loss": distortion, "distortion": distortion}

  def log_weights(self, images, noise, labels=None):
    raise NotImplementedError(
        "An autoencoder has no likelihood bound (has_likelihood_bound is "
        "False), so no importance weights.")

  def sample_from_noise(self, normal, uniform, labels=None):
    """Images decoded from the fitted Gaussian: mu + L eps.

    Args:
      normal: `[n, latent_dim]` standard Normal draws eps.
      uniform: unused.
      labels: `[n]` int32 class ids (conditional models only).

    Returns:
      `[n, H, W, C]` pixel means.
    """
    del uniform
    z = self.code_mean + tf.matmul(normal, self.code_scale_tril,
                                   transpose_b=True)
    return self.decode(z, labels)["mean"]

  def after_training(self, dataset):
    """Fits N(mu, L L^T) to the codes of `dataset`.

    Args:
      dataset: finite batches of `{'image', 'label'?}` training examples.

    Returns:
      True (the fitted Gaussian's variables changed).
    """
    encode = tf.function(self.encode_code)
    codes = []
    for batch in dataset:
      labels = batch.get("label") if self.conditional else None
      codes.append(encode(batch["image"], labels).numpy())
    codes = np.concatenate(codes)
    if len(codes) < 2:
      raise ValueError("Fitting the code distribution needs at least two "
                       f"training examples, got {len(codes)}.")
    mean, scale_tril = fit_gaussian(codes)
    self.code_mean.assign(mean.astype(np.float32))
    self.code_scale_tril.assign(scale_tril.astype(np.float32))
    return True
