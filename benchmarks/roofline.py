"""Rooflines: the fastest plain-TensorFlow step of the same matrix shapes.

A roofline here is the practical limit of this host for a given workload:
the same matmuls (and convolutions), activations and log-likelihood as
tfvae's step, written as directly as TensorFlow allows, with nothing else
(no input pipeline, no TFP objects, no metrics; plain SGD for training).
`benchmarks/throughput.py` and `benchmarks/evaluation_speed.py` time tfvae's own
code next to it, in the same process and alternating rounds, and print
tfvae's fraction of it.

- `mlp_train_rate`: one training step of the 784-400-20 Bernoulli MLP VAE
  (matmuls, ReLU, sigmoid cross-entropy, analytic KL, SGD), `steps_per_call`
  steps per `tf.function` call.
- `mlp_nll_fn`: the k-sample importance-weighted log p(x) of that VAE
  (encoder once per image, decoder k times, sigmoid cross-entropy,
  log-sum-exp, in chunks of samples inside one `tf.while_loop`).
"""

import time

import numpy as np
import tensorflow as tf

INPUT_DIM = 784
HIDDEN_DIMS = (400,)
LATENT_DIM = 20
_LOG_2PI = float(np.log(2.0 * np.pi))


def _dense(rng, fan_in, fan_out):
  """A Glorot-uniform kernel `[fan_in, fan_out]` and a zero bias."""
  limit = np.sqrt(6.0 / (fan_in + fan_out))
  return (tf.Variable(rng.uniform(-limit, limit, (fan_in, fan_out))
                      .astype(np.float32)),
          tf.Variable(np.zeros(fan_out, np.float32)))


def _layer_sizes(input_dim, hidden_dims, latent_dim):
  """`(encoder, decoder)` lists of `(fan_in, fan_out)`, as tfvae's MLPs."""
  widths = [input_dim] + list(hidden_dims)
  encoder = list(zip(widths, widths[1:])) + [(widths[-1], 2 * latent_dim)]
  back = [latent_dim] + list(reversed(hidden_dims)) + [input_dim]
  return encoder, list(zip(back, back[1:]))


def mlp_variables(seed=0, input_dim=INPUT_DIM, hidden_dims=HIDDEN_DIMS,
                  latent_dim=LATENT_DIM):
  """`(encoder, decoder)`: lists of `(kernel, bias)` variables."""
  rng = np.random.default_rng(seed)
  encoder, decoder = _layer_sizes(input_dim, hidden_dims, latent_dim)
  return ([_dense(rng, *shape) for shape in encoder],
          [_dense(rng, *shape) for shape in decoder])


def mlp_forward_flops(batch_size, input_dim=INPUT_DIM,
                      hidden_dims=HIDDEN_DIMS, latent_dim=LATENT_DIM):
  """Matmul FLOPs of one forward pass of a batch (encoder and decoder)."""
  encoder, decoder = _layer_sizes(input_dim, hidden_dims, latent_dim)
  return 2 * batch_size * sum(a * b for a, b in encoder + decoder)


def mlp_decoder_flops(input_dim=INPUT_DIM, hidden_dims=HIDDEN_DIMS,
                      latent_dim=LATENT_DIM):
  """Matmul FLOPs of decoding one latent sample."""
  _, decoder = _layer_sizes(input_dim, hidden_dims, latent_dim)
  return 2 * sum(a * b for a, b in decoder)


def _mlp(layers, h):
  """ReLU between layers, none after the last."""
  for i, (kernel, bias) in enumerate(layers):
    h = tf.matmul(h, kernel) + bias
    if i + 1 < len(layers):
      h = tf.nn.relu(h)
  return h


def time_calls(fn, rounds):
  """Seconds of each of `rounds` calls of `fn` (after one untimed call)."""
  fn()
  seconds = []
  for _ in range(rounds):
    began = time.perf_counter()
    fn()
    seconds.append(time.perf_counter() - began)
  return seconds


def sgd_steps_fn(loss_fn, variables, learning_rate, steps_per_call):
  """`run()`: `steps_per_call` plain-SGD steps of `loss_fn()` per
  `tf.function` call (a `tf.range` loop), blocking; returns the last loss."""

  @tf.function
  def steps(n):
    loss = tf.constant(0.0)
    for _ in tf.range(n):
      with tf.GradientTape() as tape:
        loss = loss_fn()
      for variable, grad in zip(variables, tape.gradient(loss, variables)):
        variable.assign_sub(learning_rate * grad)
    return loss

  count = tf.constant(steps_per_call)
  return lambda: steps(count).numpy()


def train_rate(run, batch_size, steps_per_call, calls, rounds):
  """Images/s of `rounds` rounds of `calls` calls of `run` (one call of
  `steps_per_call` steps), after one untimed call (tracing)."""

  def calls_fn():
    for _ in range(calls):
      run()
  return [calls * steps_per_call * batch_size / s
          for s in time_calls(calls_fn, rounds)]


def mlp_train_step_fn(batch_size=128, steps_per_call=50, learning_rate=1e-3,
                      seed=0, hidden_dims=HIDDEN_DIMS, latent_dim=LATENT_DIM):
  """A callable running `steps_per_call` minimal SGD steps per call.

  Returns:
    `run()`, blocking until its steps are done.
  """
  encoder, decoder = mlp_variables(seed, INPUT_DIM, hidden_dims, latent_dim)
  variables = [v for layer in encoder + decoder for v in layer]
  rng = np.random.default_rng(seed + 1)
  x = tf.constant((rng.uniform(size=(batch_size, INPUT_DIM)) < 0.5)
                  .astype(np.float32))
  eps = tf.constant(rng.standard_normal((batch_size, latent_dim))
                    .astype(np.float32))

  def loss_fn():
    mu, log_var = tf.split(_mlp(encoder, x), 2, axis=-1)
    logits = _mlp(decoder, mu + tf.exp(0.5 * log_var) * eps)
    distortion = tf.reduce_sum(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits))
    kl = -0.5 * tf.reduce_sum(1.0 + log_var - tf.square(mu)
                              - tf.exp(log_var))
    return (distortion + kl) / batch_size

  return sgd_steps_fn(loss_fn, variables, learning_rate, steps_per_call)


def mlp_train_rate(batch_size=128, steps_per_call=50, calls=10, rounds=1,
                   seed=0):
  """Images/s of the minimal training step, one figure per round.

  Each round times `calls` calls of `steps_per_call` steps.
  """
  return train_rate(mlp_train_step_fn(batch_size, steps_per_call, seed=seed),
                    batch_size, steps_per_call, calls, rounds)


def mlp_nll_fn(images, num_samples, chunk, hidden_dims=HIDDEN_DIMS,
               latent_dim=LATENT_DIM, seed=0):
  """A callable computing the minimal k-sample log p(x) of `images`.

  The encoder runs once per image, the decoder on `chunk` samples of every
  image per step of a `tf.while_loop`, the chunks' log-sum-exps combined by
  a running log-add-exp: one graph call per batch, as tfvae's evaluator.

  Args:
    images: `[N, 784]` float32 binary: one evaluation batch.
    num_samples: k.
    chunk: samples per loop step.
    hidden_dims: the MLP's hidden widths (tfvae's `--hidden_dims`).
    latent_dim: the size of z.
    seed: weights and noise seed.

  Returns:
    `run() -> [N] numpy log p(x)`.
  """
  encoder, decoder = mlp_variables(seed, INPUT_DIM, hidden_dims, latent_dim)
  x = tf.constant(images)
  batch = len(images)

  @tf.function
  def log_px():
    mu, log_var = tf.split(_mlp(encoder, x), 2, axis=-1)
    std = tf.exp(0.5 * log_var)

    def body(start, total):
      eps = tf.random.stateless_normal([chunk, batch, latent_dim],
                                       [seed, start])
      z = mu + std * eps
      logits = tf.reshape(_mlp(decoder, tf.reshape(z, [-1, latent_dim])),
                          [chunk, batch, INPUT_DIM])
      log_px_z = -tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(
          labels=tf.broadcast_to(x, tf.shape(logits)), logits=logits), -1)
      log_w = (log_px_z - 0.5 * tf.reduce_sum(tf.square(z), -1)
               + 0.5 * tf.reduce_sum(tf.square(eps) + log_var, -1))
      return start + chunk, tf.reduce_logsumexp(
          tf.stack([total, tf.reduce_logsumexp(log_w, 0)]), 0)

    _, total = tf.while_loop(
        lambda start, total: start < num_samples, body,
        [tf.constant(0), tf.fill([batch], -np.inf)], parallel_iterations=1)
    return total - np.log(num_samples)

  return lambda: log_px().numpy()
