"""Conv roofline: the fastest plain-TensorFlow step of the conv VAE's shapes.

The conv counterpart of `benchmarks/roofline.py`: one training step of the
conv VAE that `benchmarks/throughput.py` measures (`SETUPS["conv"]`: the
PyTorch-VAE VanillaVAE shape of `tfvae.networks.conv`, 64x64x3 images,
channels 32-64-128-256, latent 128, Gaussian likelihood of scale 0.1, batch
64), written as directly as TensorFlow allows and with nothing else:

  encoder  4 x [`tf.nn.conv2d` 3x3 stride 2 `SAME` (no bias), batch norm,
           leaky ReLU 0.01], flatten, one matmul to `[batch, 2 * latent]`
           (mean and log-variance);
  decoder  matmul to 4x4x256, 4 x [`tf.nn.conv2d_transpose` 3x3 stride 2
           `SAME` (no bias), batch norm, leaky ReLU 0.01] (256, 128, 64, 32
           channels), `tf.nn.conv2d` 3x3 to 3 channels plus bias, sigmoid
           mean;
  loss     Gaussian -log p(x|z) with the fixed scale written out
           (sum of squared errors / (2 scale^2) plus the constant) plus the
           analytic KL to N(0, I), averaged over the batch; plain SGD.

Batch norm is in-line and in training mode (batch statistics, epsilon
1e-3 as Keras), in one of two ways (`batch_norm`): `fused`, the default,
TF's one-op kernel (`tf.compat.v1.nn.fused_batch_norm`, `FusedBatchNormV3`
and its one gradient op), what `tfvae.networks.conv.BatchNormalization`
runs; or `moments`, `tf.nn.moments` then `tf.nn.batch_normalization`, what
Keras 3's own `BatchNormalization` runs (on one CPU thread this step is
~20% slower: its batch norm takes ~3x the time of the fused kernel). The
moving averages are *not* kept or updated (tfvae's layers update theirs,
8 layers x 2 small assignments per step). The
variables have exactly the shapes of tfvae's trainable variables
(`conv_num_parameters()` equals their count, 2,944,835 for 64x64x3). The
step runs `steps_per_call` times per `tf.function` call on one fixed batch
and fixed noise: no input pipeline, no TFP objects, no metrics.

- `conv_train_step_fn(batch_size, steps_per_call, seed, batch_norm)
  -> run()`;
- `conv_train_rate(...)`: images/s, one figure per round;
- `conv_forward_flops(batch_size)`: 2 x the multiply-adds of the
  convolutions and matmuls of one forward pass (the convention of
  `benchmarks/pytorch_baseline.py`; batch norm, activations and the loss
  are not counted; a step is 3x this).
"""


import numpy as np
import tensorflow as tf

import roofline  # pylint: disable=g-bad-import-order; benchmarks/roofline.py

IMAGE_SHAPE = (64, 64, 3)
CHANNELS = (32, 64, 128, 256)
LATENT_DIM = 128
GAUSSIAN_SCALE = 0.1
BN_EPSILON = 1e-3
LEAKY_RELU_SLOPE = 0.01
KERNEL_SIZE = 3
# SGD on a summed 12288-pixel Gaussian log-likelihood of scale 0.1: a rate
# small enough that the loss stays finite over many steps.
LEARNING_RATE = 1e-6
_LOG_2PI = float(np.log(2.0 * np.pi))


def _glorot(rng, shape, fan_in, fan_out):
  limit = np.sqrt(6.0 / (fan_in + fan_out))
  return tf.Variable(rng.uniform(-limit, limit, shape).astype(np.float32))


def _zeros(n):
  return tf.Variable(np.zeros(n, np.float32))


def _ones(n):
  return tf.Variable(np.ones(n, np.float32))


def _feature_size(image_size, channels):
  """Height of the smallest feature map: `image_size` halved (rounded up)
  once per block."""
  size = image_size
  for _ in channels:
    size = -(-size // 2)
  return size


def conv_variables(seed=0, image_shape=IMAGE_SHAPE, channels=CHANNELS,
                   latent_dim=LATENT_DIM):
  """The trainable variables, in the shapes of tfvae's conv VAE.

  Returns:
    Dict: `encoder` a list of `(kernel [3, 3, in, out], gamma, beta)`;
    `head` `(w [F, 2 latent], b)`; `project` `(w [latent, F], b)`, F being
    the flattened 4x4x256 map; `decoder` a list of `(kernel [3, 3, out,
    in], gamma, beta)` (the `tf.nn.conv2d_transpose` layout); `to_pixels`
    `(kernel [3, 3, 32, C], b)`.
  """
  rng = np.random.default_rng(seed)
  k = KERNEL_SIZE
  height, _, image_channels = image_shape
  size = _feature_size(height, channels)
  flat = size * size * channels[-1]
  encoder, fan = [], image_channels
  for width in channels:
    encoder.append((_glorot(rng, (k, k, fan, width), k * k * fan,
                            k * k * width), _ones(width), _zeros(width)))
    fan = width
  decoder = []
  for width in reversed(channels):
    decoder.append((_glorot(rng, (k, k, width, fan), k * k * fan,
                            k * k * width), _ones(width), _zeros(width)))
    fan = width
  return {
      "encoder": encoder,
      "head": (_glorot(rng, (flat, 2 * latent_dim), flat, 2 * latent_dim),
               _zeros(2 * latent_dim)),
      "project": (_glorot(rng, (latent_dim, flat), latent_dim, flat),
                  _zeros(flat)),
      "decoder": decoder,
      "to_pixels": (_glorot(rng, (k, k, fan, image_channels), k * k * fan,
                            k * k * image_channels),
                    _zeros(image_channels)),
  }


def flat_variables(variables):
  """`conv_variables()`'s variables as one flat list."""
  return ([v for block in variables["encoder"] for v in block]
          + list(variables["head"]) + list(variables["project"])
          + [v for block in variables["decoder"] for v in block]
          + list(variables["to_pixels"]))


def conv_num_parameters(image_shape=IMAGE_SHAPE, channels=CHANNELS,
                        latent_dim=LATENT_DIM):
  """Trainable parameters of the conv VAE (batch-norm gamma and beta
  included, moving statistics not)."""
  k = KERNEL_SIZE
  height, _, image_channels = image_shape
  size = _feature_size(height, channels)
  flat = size * size * channels[-1]
  count, fan = 0, image_channels
  for width in channels:  # Encoder: kernel, gamma, beta.
    count += k * k * fan * width + 2 * width
    fan = width
  count += flat * 2 * latent_dim + 2 * latent_dim  # Head.
  count += latent_dim * flat + flat  # Projection.
  for width in reversed(channels):  # Decoder: kernel, gamma, beta.
    count += k * k * fan * width + 2 * width
    fan = width
  return count + k * k * fan * image_channels + image_channels


def conv_forward_flops(batch_size, image_shape=IMAGE_SHAPE, channels=CHANNELS,
                       latent_dim=LATENT_DIM):
  """2 x the multiply-adds of the convolutions and matmuls of one forward
  pass of `batch_size` images.

  A stride-2 convolution costs (output pixels) x 9 x in x out; a stride-2
  transposed convolution (input pixels) x 9 x in x out, the cost of the
  convolution it is the gradient of.
  """
  k2 = KERNEL_SIZE * KERNEL_SIZE
  height, width, image_channels = image_shape
  macs, fan = 0, image_channels
  for out in channels:
    height, width = -(-height // 2), -(-width // 2)
    macs += height * width * k2 * fan * out
    fan = out
  flat = height * width * channels[-1]
  macs += flat * 2 * latent_dim + latent_dim * flat
  for out in reversed(channels):
    macs += height * width * k2 * fan * out
    height, width, fan = 2 * height, 2 * width, out
  macs += height * width * k2 * fan * image_channels
  return 2 * batch_size * macs


BATCH_NORMS = ("fused", "moments")


def _batch_norm(h, gamma, beta, batch_norm):
  """Training-mode batch norm over `[batch, H, W]` (no moving averages)."""
  if batch_norm == "fused":
    return tf.compat.v1.nn.fused_batch_norm(h, gamma, beta,
                                            epsilon=BN_EPSILON,
                                            is_training=True)[0]
  mean, variance = tf.nn.moments(h, axes=[0, 1, 2])
  return tf.nn.batch_normalization(h, mean, variance, beta, gamma,
                                   BN_EPSILON)


def conv_loss(variables, x, eps, scale=GAUSSIAN_SCALE, batch_norm="fused"):
  """The batch-mean negative ELBO of images `x` `[B, 64, 64, 3]` with noise
  `eps` `[B, latent]`; `batch_norm` is `fused` or `moments`."""
  if batch_norm not in BATCH_NORMS:
    raise ValueError(f"batch_norm={batch_norm!r} is not one of "
                     f"{', '.join(BATCH_NORMS)}.")
  batch = tf.shape(x)[0]
  h = x
  for kernel, gamma, beta in variables["encoder"]:
    h = tf.nn.conv2d(h, kernel, strides=2, padding="SAME")
    h = tf.nn.leaky_relu(_batch_norm(h, gamma, beta, batch_norm),
                         LEAKY_RELU_SLOPE)
  feature_shape = h.shape[1:]
  w, b = variables["head"]
  mu, log_var = tf.split(tf.matmul(tf.reshape(h, [batch, -1]), w) + b, 2,
                         axis=-1)
  z = mu + tf.exp(0.5 * log_var) * eps
  w, b = variables["project"]
  h = tf.reshape(tf.matmul(z, w) + b, [batch] + feature_shape.as_list())
  for kernel, gamma, beta in variables["decoder"]:
    height, width = h.shape[1], h.shape[2]
    h = tf.nn.conv2d_transpose(
        h, kernel, [batch, 2 * height, 2 * width, kernel.shape[2]],
        strides=2, padding="SAME")
    h = tf.nn.leaky_relu(_batch_norm(h, gamma, beta, batch_norm),
                         LEAKY_RELU_SLOPE)
  kernel, b = variables["to_pixels"]
  loc = tf.sigmoid(tf.nn.conv2d(h, kernel, strides=1, padding="SAME") + b)
  pixels = float(np.prod(x.shape[1:]))
  distortion = (tf.reduce_sum(tf.square(x - loc)) / (2.0 * scale * scale)
                + tf.cast(batch, tf.float32) * pixels
                * (float(np.log(scale)) + 0.5 * _LOG_2PI))
  kl = -0.5 * tf.reduce_sum(1.0 + log_var - tf.square(mu) - tf.exp(log_var))
  return (distortion + kl) / tf.cast(batch, tf.float32)


def conv_train_step_fn(batch_size=64, steps_per_call=50,
                       learning_rate=LEARNING_RATE, seed=0,
                       batch_norm="fused"):
  """A callable running `steps_per_call` minimal SGD steps per call.

  `batch_norm`: `fused` (TF's kernel) or `moments` (Keras 3's ops).

  Returns:
    `run()`, blocking until its steps are done; it returns the last loss.
  """
  variables = conv_variables(seed)
  trainable = flat_variables(variables)
  rng = np.random.default_rng(seed + 1)
  x = tf.constant(rng.uniform(size=(batch_size,) + IMAGE_SHAPE)
                  .astype(np.float32))
  eps = tf.constant(rng.standard_normal((batch_size, LATENT_DIM))
                    .astype(np.float32))

  return roofline.sgd_steps_fn(
      lambda: conv_loss(variables, x, eps, batch_norm=batch_norm), trainable,
      learning_rate, steps_per_call)


def conv_train_rate(batch_size=64, steps_per_call=50, calls=1, rounds=1,
                    seed=0, batch_norm="fused"):
  """Images/s of the minimal training step, one figure per round.

  Each round times `calls` calls of `steps_per_call` steps, after one
  untimed call (tracing).
  """
  run = conv_train_step_fn(batch_size, steps_per_call, seed=seed,
                           batch_norm=batch_norm)
  return roofline.train_rate(run, batch_size, steps_per_call, calls, rounds)
