"""A tiny SavedModel with tfvae's serving signatures, for client tests.

Images are [N, 4, 3, 1], latents [N, 2]; every signature is a fixed,
deterministic function (no training, no Keras), with the same input and
output names and dtypes as `tfvae.export.signatures`.
"""

import numpy as np
import tensorflow as tf

MODEL_NAME = "tiny_vae"  # The name the fake servers serve it under.
HEIGHT, WIDTH, CHANNELS = 4, 3, 1
LATENT_DIM = 2
PIXELS = HEIGHT * WIDTH * CHANNELS


def build_module():
  """A `tf.Module` whose attributes are the signature functions."""
  weights = tf.constant(
      np.random.default_rng(0).normal(size=[LATENT_DIM, PIXELS]), tf.float32)
  x_spec = tf.TensorSpec([None, HEIGHT, WIDTH, CHANNELS], tf.float32, "x")
  z_spec = tf.TensorSpec([None, LATENT_DIM], tf.float32, "z")
  count_spec = tf.TensorSpec([], tf.int32, "num_samples")
  seed_spec = tf.TensorSpec([], tf.int32, "seed")

  def decode_params(z):
    logits = tf.reshape(tf.matmul(z, weights), [-1, HEIGHT, WIDTH, CHANNELS])
    return {"mean": tf.sigmoid(logits), "logits": logits}

  def encode_params(x):
    mean = tf.matmul(tf.reshape(x, [-1, PIXELS]), weights, transpose_b=True)
    return {"mean": mean, "stddev": tf.nn.softplus(mean) + 0.1}

  module = tf.Module()
  module.decode = tf.function(decode_params, input_signature=[z_spec])
  module.encode = tf.function(encode_params, input_signature=[x_spec])

  @tf.function(input_signature=[x_spec])
  def reconstruct(x):
    return {"images": decode_params(encode_params(x)["mean"])["mean"]}

  @tf.function(input_signature=[count_spec, seed_spec])
  def sample(num_samples, seed):
    z = tf.random.stateless_normal([num_samples, LATENT_DIM],
                                   seed=tf.stack([seed, 0]))
    return {"images": decode_params(z)["mean"]}

  @tf.function(input_signature=[x_spec, count_spec])
  def log_likelihood(x, num_samples):
    error = tf.reduce_sum(tf.square(x - reconstruct(x)["images"]), [1, 2, 3])
    return {"log_prob": -error * tf.cast(num_samples, tf.float32)}

  module.reconstruct = reconstruct
  module.sample = sample
  module.log_likelihood = log_likelihood
  return module


def save(path):
  """Writes the SavedModel to `path` (a version folder); returns `path`."""
  module = build_module()
  signatures = {"serving_default": module.reconstruct,
                "reconstruct": module.reconstruct, "encode": module.encode,
                "decode": module.decode, "sample": module.sample,
                "log_likelihood": module.log_likelihood}
  tf.saved_model.save(module, path, signatures=signatures)
  return path


def example_inputs(batch_size=3):
  """Valid inputs (numpy) for each signature of the fake model."""
  rng = np.random.default_rng(1)
  x = rng.uniform(size=[batch_size, HEIGHT, WIDTH, CHANNELS])
  z = rng.normal(size=[batch_size, LATENT_DIM])
  return {
      "reconstruct": {"x": x.astype(np.float32)},
      "serving_default": {"x": x.astype(np.float32)},
      "encode": {"x": x.astype(np.float32)},
      "decode": {"z": z.astype(np.float32)},
      "sample": {"num_samples": 5, "seed": 7},
      "log_likelihood": {"x": x.astype(np.float32), "num_samples": 3},
  }


def run_signature(loaded, signature, inputs):
  """Runs `signature` of a loaded SavedModel as TF Serving would.

  Args:
    loaded: the result of `tf.saved_model.load`.
    signature: the signature name.
    inputs: input name -> array-like, converted to the signature's dtypes.

  Returns:
    Dict of output name -> np.ndarray.
  """
  function = loaded.signatures[signature]
  specs = function.structured_input_signature[1]
  if set(inputs) != set(specs):
    raise ValueError(f"Signature {signature} takes inputs {sorted(specs)}, "
                     f"got {sorted(inputs)}")
  tensors = {name: tf.constant(value, dtype=specs[name].dtype)
             for name, value in inputs.items()}
  return {name: tensor.numpy() for name, tensor in function(**tensors).items()}
