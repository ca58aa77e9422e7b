"""The serving signatures: plain tensors in, dicts of plain tensors out.

Images are float32 `[N, H, W, C]` in [0, 1]. Every function here closes over
the Keras model and returns only tensors (no TFP types), so the SavedModel
loads without TFP, as TF Serving does. Conditional models (`model.conditional`)
take an int32 `label` `[N]` in every signature.

- `reconstruct` (also `serving_default`): `x` -> `images`
- `encode`: `x` -> the model's `export_encode` (`mean`, `stddev`
  `[N, latent_dim]` for Gaussian latents; code indices for VQ-VAE)
- `decode`: `z` (the model's `decode_input_spec`) -> `mean` `[N, H, W, C]`
  and the likelihood's parameters
- `sample`: `num_samples`, `seed` (int32 scalars) -> `images`; the noise comes
  from `tfvae.counter_random`, which TFLite runs with built-in ops
- `log_likelihood` (models with a likelihood bound): `x`, `num_samples` ->
  `log_prob` `[N]`, the importance-weighted estimate of log p(x) (an anomaly
  score)
"""

import keras
import tensorflow as tf

from tfvae import counter_random

# Signatures converted to TFLite (log_likelihood and reconstruct stay
# server-side).
TFLITE_SIGNATURES = ("sample", "decode", "encode")
# Fixed seeds for noise the caller does not choose, so equal requests give
# equal answers.
LOG_LIKELIHOOD_SEED = 20240
_UNIFORM_SEED_OFFSET = 7919


def signature_functions(model):
  """The signature functions for `model`, as `tf.function`s.

  Args:
    model: a built model with the `tfvae.models.vae.VAE` interface.

  Returns:
    Dict of name -> `tf.function` with an input signature; `reconstruct`
    comes first (it becomes `serving_default`).
  """
  height, width, channels = model.data_shape
  x_spec = tf.TensorSpec([None, height, width, channels], tf.float32, "x")
  count_spec = tf.TensorSpec([], tf.int32, "num_samples")
  seed_spec = tf.TensorSpec([], tf.int32, "seed")
  label_spec = tf.TensorSpec([None], tf.int32, "label")

  def reconstruct(x, label):
    return {"images": model.reconstruct(x, label)}

  def encode(x, label):
    return model.export_encode(x, label)

  def decode(z, label):
    return model.decode(z, label)

  def sample(num_samples, seed, label):
    normal_shape, uniform_shape = model.sample_noise_shapes()
    normal = counter_random.normal(
        tf.concat([[num_samples], normal_shape], 0), seed)
    uniform = counter_random.uniform(
        tf.concat([[num_samples], uniform_shape], 0),
        seed + _UNIFORM_SEED_OFFSET)
    return {"images": model.sample_from_noise(normal, uniform, label)}

  def log_likelihood(x, num_samples, label):
    tf.debugging.assert_positive(
        num_samples, message="log_likelihood: num_samples must be >= 1")
    batch = tf.shape(x)[0]
    noise = counter_random.normal(
        tf.concat([[num_samples, batch], model.noise_shape()], 0),
        tf.constant(LOG_LIKELIHOOD_SEED))
    log_weights = model.log_weights(x, noise, label)
    count = tf.cast(num_samples, tf.float32)
    return {"log_prob": tf.reduce_logsumexp(log_weights, axis=0)
                        - tf.math.log(count)}

  z_spec = model.decode_input_spec()
  # Named parameters name the signature inputs, with or without `label`.
  if model.conditional:
    functions = {
        "reconstruct": tf.function(
            lambda x, label: reconstruct(x, label), [x_spec, label_spec]),
        "encode": tf.function(
            lambda x, label: encode(x, label), [x_spec, label_spec]),
        "decode": tf.function(
            lambda z, label: decode(z, label), [z_spec, label_spec]),
        "sample": tf.function(
            lambda num_samples, seed, label: sample(num_samples, seed, label),
            [count_spec, seed_spec, label_spec]),
        "log_likelihood": tf.function(
            lambda x, num_samples, label: log_likelihood(x, num_samples,
                                                         label),
            [x_spec, count_spec, label_spec]),
    }
  else:
    functions = {
        "reconstruct": tf.function(lambda x: reconstruct(x, None), [x_spec]),
        "encode": tf.function(lambda x: encode(x, None), [x_spec]),
        "decode": tf.function(lambda z: decode(z, None), [z_spec]),
        "sample": tf.function(
            lambda num_samples, seed: sample(num_samples, seed, None),
            [count_spec, seed_spec]),
        "log_likelihood": tf.function(
            lambda x, num_samples: log_likelihood(x, num_samples, None),
            [x_spec, count_spec]),
    }
  if not model.has_likelihood_bound:
    del functions["log_likelihood"]
  return functions


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
  """Small valid inputs for each signature (warm-up requests, checks).

  Returns:
    Dict of signature name -> dict of input name -> tensor.
  """
  height, width, channels = model.data_shape
  x = tf.fill([batch_size, height, width, channels], 0.5)
  spec = model.decode_input_spec()
  z = tf.zeros([batch_size] + spec.shape.as_list()[1:], spec.dtype)
  if spec.dtype.is_floating:
    z = tf.random.stateless_normal(tf.shape(z), seed=[0, 1], dtype=spec.dtype)
  inputs = {
      "reconstruct": {"x": x},
      "encode": {"x": x},
      "decode": {spec.name: z},
      "sample": {"num_samples": tf.constant(batch_size),
                 "seed": tf.constant(0)},
  }
  if model.has_likelihood_bound:
    inputs["log_likelihood"] = {"x": x, "num_samples": tf.constant(4)}
  if model.conditional:
    labels = tf.range(batch_size, dtype=tf.int32) % max(
        1, model.num_classes or 1)
    for name in inputs:
      inputs[name]["label"] = labels
  return inputs
