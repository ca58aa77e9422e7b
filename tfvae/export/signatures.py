"""The serving signatures: plain tensors in, dicts of plain tensors out.

Images are float32 `[N, H, W, C]` in [0, 1]. Every function here closes over
the Keras model and returns only tensors (no TFP types), so the SavedModel
loads without TFP, as TF Serving does.

- `reconstruct` (also `serving_default`): `x` -> `images`
- `encode`: `x` -> `mean`, `stddev` `[N, latent_dim]`
- `decode`: `z` -> `mean` `[N, H, W, C]` and the likelihood's parameters
- `sample`: `num_samples`, `seed` (int32 scalars) -> `images`; the noise comes
  from `tfvae.counter_random`, which TFLite runs with built-in ops
- `log_likelihood`: `x`, `num_samples` -> `log_prob` `[N]`, the importance-
  weighted estimate of log p(x) (an anomaly score)
"""

import keras
import tensorflow as tf

from tfvae import counter_random

# Signatures converted to TFLite (log_likelihood and reconstruct stay
# server-side).
TFLITE_SIGNATURES = ("sample", "decode", "encode")
# A fixed seed for log_likelihood's noise, so equal requests give equal
# answers.
LOG_LIKELIHOOD_SEED = 20240


def signature_functions(model):
  """The signature functions for `model`, as `tf.function`s.

  Args:
    model: a built model with the `tfvae.models.vae.VAE` interface.

  Returns:
    Ordered dict of name -> `tf.function` with an input signature;
    `reconstruct` comes first (it becomes `serving_default`).
  """
  height, width, channels = model.image_shape
  x_spec = tf.TensorSpec([None, height, width, channels], tf.float32, "x")
  z_spec = tf.TensorSpec([None, model.latent_dim], tf.float32, "z")
  count_spec = tf.TensorSpec([], tf.int32, "num_samples")
  seed_spec = tf.TensorSpec([], tf.int32, "seed")

  @tf.function(input_signature=[x_spec])
  def reconstruct(x):
    return {"images": model.reconstruct(x)}

  @tf.function(input_signature=[x_spec])
  def encode(x):
    params = model.encode(x)
    return {"mean": params["loc"], "stddev": params["scale"]}

  @tf.function(input_signature=[z_spec])
  def decode(z):
    return model.decode(z)

  @tf.function(input_signature=[count_spec, seed_spec])
  def sample(num_samples, seed):
    noise = counter_random.normal(
        tf.stack([num_samples, model.latent_dim]), seed)
    return {"images": model.decode(noise)["mean"]}

  @tf.function(input_signature=[x_spec, count_spec])
  def log_likelihood(x, num_samples):
    tf.debugging.assert_positive(
        num_samples, message="log_likelihood: num_samples must be >= 1")
    batch = tf.shape(x)[0]
    noise = counter_random.normal(
        tf.stack([num_samples, batch, model.latent_dim]),
        tf.constant(LOG_LIKELIHOOD_SEED))
    log_weights = model.log_weights(x, noise)
    count = tf.cast(num_samples, tf.float32)
    return {"log_prob": tf.reduce_logsumexp(log_weights, axis=0)
                        - tf.math.log(count)}

  return {"reconstruct": reconstruct, "encode": encode, "decode": decode,
          "sample": sample, "log_likelihood": log_likelihood}


def build_archive(model):
  """A `keras.export.ExportArchive` with every signature as an endpoint.

  `ExportArchive` tracks Keras 3 variables so that TF1-style graph loaders
  (TF Serving's) find them; the first endpoint, `reconstruct`, is also
  `serving_default`.
  """
  archive = keras.export.ExportArchive()
  archive.track(model)
  for name, function in signature_functions(model).items():
    archive.add_endpoint(name, function)
  return archive


def example_inputs(model, batch_size=2):
  """Small valid inputs for each signature (warm-up requests, smoke tests).

  Returns:
    Dict of signature name -> dict of numpy-convertible input tensors.
  """
  height, width, channels = model.image_shape
  x = tf.fill([batch_size, height, width, channels], 0.5)
  z = tf.zeros([batch_size, model.latent_dim])
  return {
      "reconstruct": {"x": x},
      "encode": {"x": x},
      "decode": {"z": z},
      "sample": {"num_samples": tf.constant(batch_size),
                 "seed": tf.constant(0)},
      "log_likelihood": {"x": x, "num_samples": tf.constant(4)},
  }
