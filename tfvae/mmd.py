"""Maximum Mean Discrepancy (MMD) between two samples: pure functions.

MMD^2(P, Q) = E k(x, x') + E k(y, y') - 2 E k(x, y), x, x' ~ P, y, y' ~ Q.
`mmd` returns the unbiased U-statistic estimate of MMD^2 from one batch of
each sample (Gretton et al. 2012, Lemma 6), which can be slightly negative
when P = Q. Kernels follow the WAE paper (Tolstikhin et al. 2018) with the
bandwidth tied to the dimension d of the samples, scale sigma = 1 (the
variance of each coordinate of a standard Normal prior):

- `rbf`: k(x, y) = exp(-||x - y||^2 / (2 d sigma^2));
- `imq`: k(x, y) = C / (C + ||x - y||^2), C = 2 d sigma^2.

#### References
Gretton et al. (2012). A Kernel Two-Sample Test. JMLR.
Tolstikhin et al. (2018). Wasserstein Auto-Encoders. ICLR.
Zhao, Song & Ermon (2019). InfoVAE: Balancing Learning and Inference in
Variational Autoencoders. AAAI.
"""

import tensorflow as tf


def squared_distances(x, y):
  """Pairwise squared Euclidean distances.

  Args:
    x: `[n, d]` samples.
    y: `[m, d]` samples.

  Returns:
    `[n, m]` ||x_i - y_j||^2 (non-negative).
  """
  diff = x[:, None, :] - y[None, :, :]
  return tf.reduce_sum(tf.square(diff), axis=-1)


def _bandwidth(x, sigma):
  dim = tf.cast(tf.shape(x)[-1], x.dtype)
  return 2.0 * dim * tf.cast(sigma, x.dtype)**2


def rbf_kernel(x, y, sigma=1.0):
  """Gaussian kernel exp(-||x - y||^2 / (2 d sigma^2)).

  Args:
    x: `[n, d]` samples.
    y: `[m, d]` samples.
    sigma: scale of each coordinate.

  Returns:
    `[n, m]` kernel values in (0, 1].
  """
  return tf.exp(-squared_distances(x, y) / _bandwidth(x, sigma))


def imq_kernel(x, y, sigma=1.0):
  """Inverse multiquadratic kernel C / (C + ||x - y||^2), C = 2 d sigma^2.

  Args:
    x: `[n, d]` samples.
    y: `[m, d]` samples.
    sigma: scale of each coordinate.

  Returns:
    `[n, m]` kernel values in (0, 1].
  """
  c = _bandwidth(x, sigma)
  return c / (c + squared_distances(x, y))


KERNELS = {"rbf": rbf_kernel, "imq": imq_kernel}


def _off_diagonal_mean(gram):
  n = tf.cast(tf.shape(gram)[0], gram.dtype)
  # max(., 1): a one-example batch has no pairs and gives 0, not NaN.
  return ((tf.reduce_sum(gram) - tf.reduce_sum(tf.linalg.diag_part(gram)))
          / tf.maximum(n * (n - 1.0), 1.0))


def mmd(x, y, kernel="imq", sigma=1.0):
  """Unbiased estimate of MMD^2 between the samples `x` and `y`.

  Args:
    x: `[n, d]` samples of P (n >= 2 for a meaningful estimate).
    y: `[m, d]` samples of Q (m >= 2).
    kernel: a name in `KERNELS`.
    sigma: the kernel's scale.

  Returns:
    Scalar: mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j)
    - 2 mean_{i, j} k(x_i, y_j).

  Raises:
    ValueError: for an unknown kernel.
  """
  if kernel not in KERNELS:
    raise ValueError(f"Unknown MMD kernel {kernel!r}; choose one of: "
                     f"{', '.join(sorted(KERNELS))}.")
  k = KERNELS[kernel]
  return (_off_diagonal_mean(k(x, x, sigma)) + _off_diagonal_mean(
      k(y, y, sigma)) - 2.0 * tf.reduce_mean(k(x, y, sigma)))
