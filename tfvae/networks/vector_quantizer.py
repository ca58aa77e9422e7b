"""The vector quantizer of the VQ-VAE: nearest codebook vector, straight through.

Each `embedding_dim`-vector z_e of the encoder's output grid is replaced by
its nearest codebook vector e_k (squared Euclidean distance). Gradients pass
from z_q to z_e unchanged (the straight-through estimator,
z_q = z_e + sg[e_k - z_e]). The codebook learns either by gradient, from the
codebook loss ||sg[z_e] - e_k||^2, or (with `ema_decay` > 0) by exponential
moving averages of the vectors assigned to each code (van den Oord et al.
2017, Appendix A.1); the encoder is held near its codes by the commitment
loss beta * ||z_e - sg[e_k]||^2.

#### References
van den Oord, Vinyals & Kavukcuoglu (2017). Neural Discrete Representation
Learning. NeurIPS.
"""

import math

import keras
import tensorflow as tf

from tfvae.errors import ConfigError

# Laplace smoothing of the EMA cluster sizes, so unused codes never divide by 0.
EMA_EPSILON = 1e-5


class VectorQuantizer(keras.layers.Layer):
  """Quantizes `[..., embedding_dim]` vectors to a learned codebook.

  Distances, codes and the VQ losses are loss terms, so the layer computes
  in float32 under any global mixed-precision policy (`dtype` defaults to
  `float32`, not to the global policy).

  Args:
    num_embeddings: K, the codebook size.
    embedding_dim: D, the size of each code vector.
    commitment_cost: beta, the weight of the commitment loss.
    ema_decay: when > 0, the codebook is not trainable and follows EMAs of
      the assigned vectors (updated in `call(..., training=True)`) with this
      decay; 0 learns the codebook by gradient from the codebook loss.
    epsilon: Laplace smoothing of the EMA cluster sizes.
  """

  def __init__(self, num_embeddings, embedding_dim, commitment_cost=0.25,
               ema_decay=0.0, epsilon=EMA_EPSILON, **kwargs):
    kwargs.setdefault("dtype", "float32")
    super().__init__(**kwargs)
    self.num_embeddings = num_embeddings
    self.embedding_dim = embedding_dim
    self.commitment_cost = commitment_cost
    self.ema_decay = ema_decay
    self.epsilon = epsilon
    self.use_ema = ema_decay > 0
    limit = math.sqrt(3.0 / embedding_dim)  # Unit variance per vector.
    self.codebook = self.add_weight(
        name="codebook", shape=(num_embeddings, embedding_dim),
        initializer=keras.initializers.RandomUniform(-limit, limit),
        trainable=not self.use_ema,
        aggregation="mean" if self.use_ema else "none")
    if self.use_ema:
      # Cluster sizes start at 1 and sums at the codebook, so sum / size is
      # the initial codebook and a code never assigned keeps its vector.
      self.ema_cluster_size = self.add_weight(
          name="ema_cluster_size", shape=(num_embeddings,),
          initializer="ones", trainable=False, aggregation="mean")
      self.ema_sum = self.add_weight(
          name="ema_sum", shape=(num_embeddings, embedding_dim),
          initializer="zeros", trainable=False, aggregation="mean")
      self.ema_sum.assign(self.codebook)

  def build(self, input_shape):
    del input_shape  # The codebook's shape does not depend on the input's.

  def nearest(self, inputs):
    """Indices of the nearest codebook vectors.

    Args:
      inputs: `[..., D]` float32 vectors z_e.

    Returns:
      `[...]` int32 indices in [0, K).
    """
    flat = tf.reshape(tf.cast(inputs, tf.float32), [-1, self.embedding_dim])
    codebook = tf.convert_to_tensor(self.codebook)
    distances = (tf.reduce_sum(tf.square(flat), axis=1, keepdims=True)
                 - 2.0 * tf.matmul(flat, codebook, transpose_b=True)
                 + tf.reduce_sum(tf.square(codebook), axis=1)[None, :])
    indices = tf.argmin(distances, axis=1, output_type=tf.int32)
    return tf.reshape(indices, tf.shape(inputs)[:-1])

  def lookup(self, indices):
    """`[..., D]` codebook vectors of `[...]` int32 `indices`."""
    return tf.gather(tf.convert_to_tensor(self.codebook), indices)

  def call(self, inputs, training=False):
    """Quantizes z_e and computes the VQ losses (and EMA updates).

    Args:
      inputs: `[..., D]` float32 encoder outputs z_e.
      training: when True and `ema_decay` > 0, update the codebook EMAs.

    Returns:
      Dict with `quantized` `[..., D]` (z_e + sg[e - z_e]: the value of e,
      the gradient of z_e), `indices` `[...]` int32, and per-vector
      `commitment_loss` (beta * ||z_e - sg[e]||^2) and `codebook_loss`
      (||sg[z_e] - e||^2; zeros with EMA updates), each `[...]`.
    """
    inputs = tf.cast(inputs, tf.float32)
    indices = self.nearest(inputs)
    codes = self.lookup(indices)
    commitment = self.commitment_cost * tf.reduce_sum(
        tf.square(inputs - tf.stop_gradient(codes)), axis=-1)
    if self.use_ema:
      codebook_loss = tf.zeros_like(commitment)
      if training:
        self._update_ema(inputs, indices)
    else:
      codebook_loss = tf.reduce_sum(
          tf.square(tf.stop_gradient(inputs) - codes), axis=-1)
    quantized = inputs + tf.stop_gradient(codes - inputs)
    return {"quantized": quantized, "indices": indices,
            "commitment_loss": commitment, "codebook_loss": codebook_loss}

  def _update_ema(self, inputs, indices):
    """One EMA step of cluster sizes and sums; codebook = smoothed means.

    N_k <- d N_k + (1 - d) n_k and m_k <- d m_k + (1 - d) sum_{i: k_i = k} z_i,
    then e_k = m_k / N~_k with N~_k = (N_k + eps) / (N + K eps) * N.
    """
    if tf.distribute.get_strategy().num_replicas_in_sync > 1:
      # The training step's loss runs in a tf.function nested in
      # strategy.run, where replicas cannot synchronize variable updates.
      raise ConfigError(
          f"--vq_ema_decay={self.ema_decay} is not supported with more than "
          "one replica (--strategy=mirrored); use --vq_ema_decay=0 (codebook "
          "learned by gradient) or --strategy=default.")
    flat = tf.stop_gradient(tf.reshape(inputs, [-1, self.embedding_dim]))
    one_hot = tf.one_hot(tf.reshape(indices, [-1]), self.num_embeddings,
                         dtype=tf.float32)
    counts = tf.reduce_sum(one_hot, axis=0)
    sums = tf.matmul(one_hot, flat, transpose_a=True)
    decay = self.ema_decay
    cluster_size = (decay * tf.convert_to_tensor(self.ema_cluster_size)
                    + (1.0 - decay) * counts)
    ema_sum = decay * tf.convert_to_tensor(self.ema_sum) + (1.0 - decay) * sums
    total = tf.reduce_sum(cluster_size)
    smoothed = ((cluster_size + self.epsilon)
                / (total + self.num_embeddings * self.epsilon) * total)
    self.ema_cluster_size.assign(cluster_size)
    self.ema_sum.assign(ema_sum)
    self.codebook.assign(ema_sum / smoothed[:, None])
