"""The serving signatures: plain tensors in, dicts of plain tensors out.

Images are float32 `[N, H, W, C]` in [0, 1]; vectors are float32 `[N, D]`
raw values (for tables, categorical columns hold category ids), and the
outputs named `images` below are then named `x`. Every function here closes over
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
from tfvae.evaluation import chunking

# Signatures converted to TFLite (log_likelihood and reconstruct stay
# server-side).
TFLITE_SIGNATURES = ("sample", "decode", "encode")
# Fixed seeds for noise the caller does not choose, so equal requests give
# equal answers.
LOG_LIKELIHOOD_SEED = 20240
_UNIFORM_SEED_OFFSET = 7919

# Limits of one `log_likelihood` request (larger ones fail with
# InvalidArgument): k = num_samples at most LOG_LIKELIHOOD_MAX_SAMPLES, and
# k x N draws at most LOG_LIKELIHOOD_MAX_DRAWS (fewer when k x N x the noise
# size per draw would pass the counter generator's PRIME**2 distinct values).
LOG_LIKELIHOOD_MAX_SAMPLES = 10_000
LOG_LIKELIHOOD_MAX_DRAWS = 2**22
# Bytes the counter-based noise generator holds per noise element (int32
# words and float temporaries), added to the per-sample activation cost.
_NOISE_BYTES_PER_ELEMENT = 64


def _counter_normal_at(counter, seed):
  """`counter_random.normal`'s draws at the flat positions `counter`.

  Element i of `counter_random.normal(shape, seed)` is a function of (i,
  seed) alone; this computes it for any int32 tensor of positions, so a
  chunk of a large draw gets the same values as the full draw would.

  Args:
    counter: int32 tensor of flat positions in [0, PRIME**2).
    seed: int32 scalar.

  Returns:
    float32 tensor shaped like `counter`.
  """
  # pylint: disable=protected-access
  prime = counter_random.PRIME
  seed = tf.cast(seed, tf.int32)
  ones = tf.ones_like(counter)
  words = [counter % prime, counter // prime % prime,
           tf.math.floormod(seed, prime) * ones,
           tf.math.floormod(tf.math.floordiv(seed, prime), prime) * ones]
  keys = counter_random._KEYS
  radius = tf.sqrt(-2.0 * tf.math.log(
      counter_random._uniform_from(words, *keys[:2])))
  angle = counter_random._TWO_PI * counter_random._uniform_from(words,
                                                                *keys[2:])
  return radius * tf.cos(angle)


def _chunked_log_likelihood(model, x, num_samples, label):
  """The `log_likelihood` signature's estimate, computed in bounded chunks.

  Equal to `logsumexp_i log_weights(x, noise)[i] - log k` with noise
  `counter_random.normal([k, N] + noise_shape(), LOG_LIKELIHOOD_SEED)`, but
  each `model.log_weights` call decodes at most
  `chunking.max_decoded_examples` samples (a Python constant fixed at
  export time): a `tf.while_loop` over blocks of examples, and within each
  a `tf.while_loop` over chunks of samples with a running log-sum-exp.
  Every chunk draws exactly its slice of the full noise tensor, so results
  differ from one single batch only by float rounding. Loops run one
  iteration at a time, so one chunk's activations are live.

  Args:
    model: a built model with a likelihood bound.
    x: `[N] + data_shape` float32.
    num_samples: int32 scalar k, in [1, LOG_LIKELIHOOD_MAX_SAMPLES], with
      k x N at most LOG_LIKELIHOOD_MAX_DRAWS; else InvalidArgument.
    label: `[N]` int32 class ids (conditional models), or None.

  Returns:
    `[N]` float32 estimates of log p(x).
  """
  noise_shape = [int(d) for d in model.noise_shape()]
  noise_size = 1
  for d in noise_shape:
    noise_size *= d
  max_draws = min(LOG_LIKELIHOOD_MAX_DRAWS,
                  (counter_random.PRIME**2 - 1) // noise_size)
  max_decoded = max(1, chunking.ACTIVATION_BUDGET_BYTES // (
      chunking.decoded_example_bytes(model)
      + _NOISE_BYTES_PER_ELEMENT * noise_size))
  batch = tf.shape(x)[0]
  draws = tf.cast(num_samples, tf.int64) * tf.cast(batch, tf.int64)
  checks = [
      tf.debugging.assert_positive(
          num_samples, message="log_likelihood: num_samples must be >= 1"),
      tf.debugging.assert_less_equal(
          num_samples, tf.constant(LOG_LIKELIHOOD_MAX_SAMPLES),
          message=("log_likelihood: num_samples must be <= "
                   f"{LOG_LIKELIHOOD_MAX_SAMPLES}")),
      tf.debugging.assert_less_equal(
          draws, tf.constant(max_draws, tf.int64),
          message=("log_likelihood: num_samples x N (images) must be <= "
                   f"{max_draws}; split the request")),
  ]
  with tf.control_dependencies(checks):
    num_samples = tf.identity(num_samples)
  seed = tf.constant(LOG_LIKELIHOOD_SEED)
  # Samples per call, and examples per block (more than one only when all
  # k samples of several examples fit in one call).
  chunk = tf.minimum(num_samples, max_decoded)
  block = tf.maximum(1, tf.minimum(batch, max_decoded // chunk))

  def block_log_prob(first):
    size_n = tf.minimum(block, batch - first)
    x_block = x[first:first + size_n]
    label_block = None if label is None else label[first:first + size_n]
    examples = first + tf.range(size_n)

    def body(start, total):
      size = tf.minimum(chunk, num_samples - start)
      draw = (start + tf.range(size))[:, None] * batch + examples[None, :]
      counter = (draw[:, :, None] * noise_size
                 + tf.range(noise_size)[None, None, :])
      noise = tf.reshape(_counter_normal_at(counter, seed),
                         tf.concat([[size, size_n], noise_shape], 0))
      log_w = model.log_weights(x_block, noise, label_block)
      partial = tf.reduce_logsumexp(log_w, axis=0)
      return start + chunk, tf.reduce_logsumexp(tf.stack([total, partial]),
                                                axis=0)

    _, total = tf.while_loop(
        lambda start, total: start < num_samples, body,
        [tf.constant(0), tf.fill([size_n], tf.constant(-float("inf")))],
        parallel_iterations=1)
    return total

  def outer_body(first, results):
    return first + block, results.write(first // block,
                                        block_log_prob(first))

  _, results = tf.while_loop(
      lambda first, results: first < batch, outer_body,
      [tf.constant(0), tf.TensorArray(tf.float32, size=0, dynamic_size=True,
                                      infer_shape=False,
                                      element_shape=tf.TensorShape([None]))],
      parallel_iterations=1)
  log_prob = tf.reshape(results.concat(), [batch])
  return log_prob - tf.math.log(tf.cast(num_samples, tf.float32))


def output_name(model):
  """The output of `reconstruct` and `sample`: `images`, or `x` for vectors."""
  return "images" if len(model.data_shape) == 3 else "x"


def signature_functions(model):
  """The signature functions for `model`, as `tf.function`s.

  Args:
    model: a built model with the `tfvae.models.vae.VAE` interface.

  Returns:
    Dict of name -> `tf.function` with an input signature; `reconstruct`
    comes first (it becomes `serving_default`).
  """
  x_spec = tf.TensorSpec([None] + list(model.data_shape), tf.float32, "x")
  out = output_name(model)
  count_spec = tf.TensorSpec([], tf.int32, "num_samples")
  seed_spec = tf.TensorSpec([], tf.int32, "seed")
  label_spec = tf.TensorSpec([None], tf.int32, "label")

  def reconstruct(x, label):
    return {out: model.reconstruct(x, label)}

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
    return {out: model.sample_from_noise(normal, uniform, label)}

  def log_likelihood(x, num_samples, label):
    # Bounded chunks in one graph (see `_chunked_log_likelihood`): a request
    # never decodes more than the activation budget allows at once.
    return {"log_prob": _chunked_log_likelihood(model, x, num_samples,
                                                label)}

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
  # Mid-grey images; vectors of zeros (valid for every column kind).
  x = tf.fill([batch_size] + list(model.data_shape),
              0.5 if len(model.data_shape) == 3 else 0.0)
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
