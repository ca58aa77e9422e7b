"""Your own Keras networks as encoder and decoder bodies.

A body is any `keras.Model` / `keras.Sequential`; tfvae adds what turns it
into an encoder or decoder, so every model trains, evaluates and exports the
same way with built-in or custom networks. The contract:

- encoder body: `[batch] + input_shape` -> features `[batch, ...]` (any
  shape; flattened). `input_shape` is the data's shape (`[H, W, C]` images
  in [0, 1], `[D]` vectors; tables arrive standardized with one-hot
  categories, `[F]`). tfvae adds the posterior head: a Dense layer to the
  `loc` and softplus `scale` of q(z|x).
- decoder body: z `[batch, latent_dim]` -> features `[batch, F]`, or (for
  images) a feature map `[batch, H, W, F]` of the data's height and width.
  tfvae adds the likelihood's parameter projection: a Dense layer to every
  parameter, or a 1x1 convolution of the feature map to the channels.

A body that breaks the contract is rejected when the model is built, with
a one-line `ConfigError` naming the shapes it got and the ones expected.

With `--mixed_precision`, the heads tfvae adds follow the policy; a body
computes in the dtype policy it was created under (create it after
`keras.config.set_dtype_policy("mixed_bfloat16")`, or inside
`tfvae.training.precision.policy_scope`, to run it in mixed precision too).
Encoder and decoder outputs are float32 either way.
"""

import math

import keras
from keras import ops
import tensorflow as tf

from tfvae.errors import ConfigError
from tfvae.networks.mlp import MIN_SCALE


def fresh_copy(body):
  """An unbuilt Sequential/functional body, cloned; anything else as is.

  Keras draws an initializer's seed when a layer is created, so layers made
  before the run seeds Keras (`keras.utils.set_random_seed(seed)`) would
  start from different weights in every process. A clone made after seeding
  starts from weights fixed by the run's seed, which exact resumption in a
  new process needs. A body that already has weights (built, e.g.
  pretrained) keeps them; a subclassed body is kept as it is (seed Keras
  before creating it for repeatable runs).

  Args:
    body: a `keras.Model`, or None.

  Returns:
    The body to use.
  """
  if (body is None or body.weights
      or not isinstance(body, keras.Sequential)
      and not getattr(body, "_is_graph_network", False)):
    return body
  return keras.models.clone_model(body)


def _probe(body, input_shape, side):
  """Calls `body` on zeros `[1] + input_shape`; returns the output shape."""
  if not isinstance(body, keras.Model):
    raise ConfigError(
        f"The {side} body is a {type(body).__name__}, not a keras.Model; pass "
        "a keras.Model or keras.Sequential.")
  try:
    output = body(tf.zeros((1,) + tuple(input_shape)), training=False)
  except Exception as e:  # A user's network can raise anything here.
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    raise ConfigError(
        f"The {side} body fails on inputs [batch, "
        f"{', '.join(map(str, input_shape))}] ({type(e).__name__}: {first}); "
        f"it must accept that shape.") from e
  if not tf.is_tensor(output) and not hasattr(output, "shape"):
    raise ConfigError(
        f"The {side} body returns a {type(output).__name__}; it must return "
        "one tensor.")
  return tuple(int(d) for d in output.shape[1:])


class CustomEncoder(keras.Model):
  """A user's encoder body followed by the diagonal Normal head.

  Args:
    body: the Keras network.
    input_shape: per-example shape of what the encoder reads.
    latent_dim: size of z.
  """

  def __init__(self, body, input_shape, latent_dim, **kwargs):
    super().__init__(**kwargs)
    features = _probe(body, input_shape, "encoder")
    if not features or 0 in features:
      raise ConfigError(
          f"The encoder body maps [batch, {', '.join(map(str, input_shape))}]"
          f" to [batch{''.join(', ' + str(d) for d in features)}]; it must "
          "return features [batch, F] (or any [batch, ...] shape, "
          "flattened).")
    self.body = body
    self.latent_dim = latent_dim
    self.flatten = keras.layers.Flatten()
    self.head = keras.layers.Dense(2 * latent_dim, name="posterior_head")

  def call(self, x, training=False):
    """`[batch, ...]` -> `(loc, scale)`, each `[batch, latent_dim]` float32."""
    h = self.flatten(self.body(x, training=training))
    loc, raw_scale = ops.split(ops.cast(self.head(h), "float32"), 2, axis=-1)
    return loc, ops.softplus(raw_scale) + MIN_SCALE


class CustomDecoder(keras.Model):
  """A user's decoder body followed by the likelihood parameter projection.

  Args:
    body: the Keras network.
    latent_dim: size of what the decoder reads.
    output_shape: per-example shape of the likelihood parameters,
      `(H, W, C)` or `(P,)`.
  """

  def __init__(self, body, latent_dim, output_shape, **kwargs):
    super().__init__(**kwargs)
    output_shape = tuple(output_shape)
    features = _probe(body, (latent_dim,), "decoder")
    self.body = body
    self.output_dims = output_shape
    if len(features) == 1:
      self.project = keras.layers.Dense(math.prod(output_shape),
                                        name="likelihood_projection")
      self.reshape = keras.layers.Reshape(output_shape)
    elif (len(features) == 3 and len(output_shape) == 3
          and features[:2] == output_shape[:2]):
      self.project = keras.layers.Conv2D(output_shape[-1], 1,
                                         name="likelihood_projection")
      self.reshape = None
    else:
      feature_map = (f" or a feature map [batch, {output_shape[0]}, "
                     f"{output_shape[1]}, F]" if len(output_shape) == 3
                     else "")
      raise ConfigError(
          f"The decoder body maps z [batch, {latent_dim}] to "
          f"[batch, {', '.join(map(str, features))}]; it must return "
          f"features [batch, F]{feature_map}.")

  def call(self, z, training=False):
    """`[batch, latent_dim]` -> `[batch] + output_shape` float32 parameters."""
    h = self.project(self.body(z, training=training))
    return ops.cast(h if self.reshape is None else self.reshape(h), "float32")
