"""Categorical codes: Gumbel noise, the Gumbel-softmax relaxation, KL terms.

Pure functions of tensors for `N` categorical variables of `K` classes each;
logits and codes are `[..., N, K]`. The noise is stateless: standard Normal
draws (what the training loop and the evaluator hand every model) become
uniforms by the probability integral transform u = Phi(n) and then standard
Gumbels g = -log(-log u), so a run that resumes draws exactly the noise it
would have drawn.

- `gumbel_from_normal(n)`: g = -log(-log Phi(n)), computed without forming
  u (stable in both tails of n).
- `gumbel_softmax(logits, g, tau)`: the Concrete / Gumbel-softmax sample
  softmax((logits + g) / tau), a point of the simplex that tends to the
  one-hot of argmax(logits + g) as tau -> 0 and to the uniform 1/K as
  tau -> inf.
- `gumbel_max(logits, g)`: one_hot(argmax(logits + g)), an exact draw from
  Categorical(softmax(logits)) (the Gumbel-max trick).
- `kl_to_uniform(logits)`: KL(q || Uniform(K)) per variable,
  sum_k q_k log q_k + log K.
- `log_prob(logits, codes)`: log q(z) of one-hot codes, summed over the
  variables.
- `enumerate_codes(indices, N, K)`: the one-hot codes of code numbers (mixed
  radix K, variable 0 the least significant digit), for exact sums over all
  K^N codes.

#### References
Gumbel (1954). Statistical Theory of Extreme Values and Some Practical
Applications. National Bureau of Standards.
Jang, Gu & Poole (2017). Categorical Reparameterization with Gumbel-Softmax.
ICLR.
Maddison, Mnih & Teh (2017). The Concrete Distribution: A Continuous
Relaxation of Discrete Random Variables. ICLR.
"""

import math

import tensorflow as tf
import tensorflow_probability as tfp

# Above this Normal draw, -log Phi(n) = -log1p(-Phi(-n)) is Phi(-n) to within
# a relative Phi(-n) / 2 < 1.5e-7, so g = -log Phi(-n) to float32 precision.
_UPPER_TAIL = 5.0


def gumbel_from_normal(normal):
  """Standard Gumbel draws from standard Normal draws.

  g = -log(-log u) with u = Phi(n) the Normal CDF (the probability integral
  transform), computed in three ranges so that neither tail rounds u to 0
  or 1: -log Phi(n) is -log Phi(n) itself for n <= 0 (TFP's asymptotic
  log-CDF), -log1p(-Phi(-n)) for 0 < n <= 5, and Phi(-n) above, where
  g = -log Phi(-n).

  Args:
    normal: float32 tensor of standard Normal draws, any shape.

  Returns:
    float32 tensor of standard Gumbel draws, the same shape (finite for
    every finite input).
  """
  normal = tf.convert_to_tensor(normal, tf.float32)
  standard = tfp.distributions.Normal(0.0, 1.0)
  lower = -tf.math.log(-standard.log_cdf(tf.minimum(normal, 0.0)))
  middle = -tf.math.log(-tf.math.log1p(-standard.cdf(
      -tf.clip_by_value(normal, 0.0, _UPPER_TAIL))))
  upper = -standard.log_cdf(-tf.maximum(normal, _UPPER_TAIL))
  return tf.where(normal <= 0.0, lower,
                  tf.where(normal <= _UPPER_TAIL, middle, upper))


def gumbel_softmax(logits, gumbel, temperature):
  """The Gumbel-softmax (Concrete) relaxation of a categorical draw.

  Args:
    logits: `[..., N, K]` unnormalized log-probabilities.
    gumbel: standard Gumbel draws, broadcastable to `logits`.
    temperature: positive float32 scalar tau.

  Returns:
    `[..., N, K]` softmax((logits + gumbel) / tau) over the last axis.
  """
  return tf.nn.softmax((logits + gumbel) / temperature, axis=-1)


def gumbel_max(logits, gumbel):
  """One-hot categorical draws by the Gumbel-max trick.

  Args:
    logits: `[..., N, K]` unnormalized log-probabilities.
    gumbel: standard Gumbel draws, broadcastable to `logits`.

  Returns:
    `[..., N, K]` float32 one_hot(argmax(logits + gumbel)): each variable's
    class is distributed as Categorical(softmax(logits)).
  """
  shifted = logits + gumbel
  return tf.one_hot(tf.argmax(shifted, axis=-1), tf.shape(shifted)[-1],
                    dtype=tf.float32)


def kl_to_uniform(logits):
  """KL(q || Uniform(K)) of each categorical variable, analytic.

  Args:
    logits: `[..., N, K]` the posterior's logits.

  Returns:
    `[..., N]` sum_k q_k log q_k + log K, in nats (0 for a uniform q, at
    most log K for a one-hot q).
  """
  log_q = tf.nn.log_softmax(logits, axis=-1)
  num_classes = logits.shape[-1]
  return (tf.reduce_sum(tf.exp(log_q) * log_q, axis=-1)
          + math.log(num_classes))


def log_prob(logits, codes):
  """log q(z) of one-hot codes under independent categoricals.

  Args:
    logits: `[..., N, K]`.
    codes: `[..., N, K]` one-hot (broadcastable to `logits`).

  Returns:
    `[...]` sum over the N variables of log softmax(logits)[z_j].
  """
  return tf.reduce_sum(tf.nn.log_softmax(logits, axis=-1) * codes,
                       axis=[-2, -1])


def enumerate_codes(indices, num_variables, num_classes):
  """The one-hot codes of code numbers, for sums over all K^N codes.

  Code number c has class (c // K^j) mod K in variable j.

  Args:
    indices: `[n]` int32 code numbers in [0, K^N).
    num_variables: N.
    num_classes: K.

  Returns:
    `[n, N, K]` float32 one-hot codes.
  """
  indices = tf.convert_to_tensor(indices, tf.int32)
  radix = tf.constant([num_classes**j for j in range(num_variables)],
                      tf.int32)
  digits = tf.math.floormod(indices[:, None] // radix[None, :], num_classes)
  return tf.one_hot(digits, num_classes, dtype=tf.float32)
