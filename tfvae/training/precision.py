"""Mixed precision (`--mixed_precision`): a Keras dtype policy on the networks.

`none` is float32 throughout. `mixed_bfloat16` and `mixed_float16` set the
Keras policy of that name while the model is constructed: Keras layers
capture the global policy when they are created (`Layer.__init__` reads
`dtype_policies.get(None)`), so the encoder, decoder, MADE and PixelCNN
layers compute in bfloat16/float16 while their variables stay float32. The
networks return float32 (a cast at the end of their `call`), and the model,
likelihood head, prior, flow and vector quantizer are float32 layers, so
distributions, log-probabilities, KL terms and the loss stay float32.

`mixed_float16` also scales the loss: the optimizer is a
`keras.optimizers.LossScaleOptimizer`, the loop differentiates
`optimizer.scale_loss(loss)` (identity for other optimizers), and
`clip_by_global_norm` unscales the gradients before clipping and rescales
them after, so the LossScaleOptimizer's own unscaling (and its skip of steps
with non-finite gradients) sees what it expects.

Exports keep float32 inputs and outputs; `float32_model` rebuilds a trained
model with float32 networks and the same weights, which is what gets
exported: the TFLite converter turns neither bfloat16 nor float16 MatMuls
into built-in ops, so a mixed model's conversion fails.
"""

import contextlib

import keras
import tensorflow as tf

from tfvae.errors import ConfigError
from tfvae.errors import ExportError

# `--mixed_precision` value -> Keras dtype policy name.
POLICIES = {"none": "float32", "mixed_float16": "mixed_float16",
            "mixed_bfloat16": "mixed_bfloat16"}


def policy_name(mixed_precision):
  """The Keras policy name of a `--mixed_precision` value.

  Args:
    mixed_precision: `none`, `mixed_float16` or `mixed_bfloat16`.

  Returns:
    `float32`, `mixed_float16` or `mixed_bfloat16`.

  Raises:
    ConfigError: for another value.
  """
  if mixed_precision not in POLICIES:
    raise ConfigError(f"--mixed_precision={mixed_precision!r} is not one of: "
                      f"{', '.join(POLICIES)}.")
  return POLICIES[mixed_precision]


@contextlib.contextmanager
def policy_scope(mixed_precision):
  """Sets Keras' global dtype policy inside the block, restores it after.

  Layers created inside the block keep the policy for their lifetime; build
  the model (and its variables) inside it. Keras' global policy is
  per-thread.

  Args:
    mixed_precision: `none` (float32), `mixed_float16` or `mixed_bfloat16`.

  Yields:
    The policy set, a `keras.DTypePolicy`.
  """
  name = policy_name(mixed_precision)
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(name)
  try:
    yield keras.config.dtype_policy()
  finally:
    keras.config.set_dtype_policy(previous)


def uses_loss_scaling(mixed_precision):
  """Whether `mixed_precision` needs loss scaling (float16 only)."""
  return policy_name(mixed_precision) == "mixed_float16"


def wrap_optimizer(optimizer, mixed_precision):
  """The optimizer to train with under `mixed_precision`.

  Args:
    optimizer: a `keras.optimizers.Optimizer`.
    mixed_precision: `none`, `mixed_float16` or `mixed_bfloat16`.

  Returns:
    `keras.optimizers.LossScaleOptimizer(optimizer)` (dynamic loss scale,
    starting at 2^15) for `mixed_float16`; `optimizer` itself otherwise
    (bfloat16 has float32's exponent range and needs no scaling).
  """
  if uses_loss_scaling(mixed_precision):
    return keras.optimizers.LossScaleOptimizer(optimizer)
  return optimizer


def is_loss_scaled(optimizer):
  """Whether `optimizer` expects gradients of a scaled loss."""
  return isinstance(optimizer, keras.optimizers.LossScaleOptimizer)


def loss_scale(optimizer):
  """The current loss scale: a float32 scalar tensor (1 without scaling)."""
  if is_loss_scaled(optimizer):
    return tf.convert_to_tensor(optimizer.scale_loss(tf.constant(1.0)))
  return tf.constant(1.0)


def unscaled_gradients(optimizer, grads):
  """Gradients of the scaled loss divided by the loss scale.

  Args:
    optimizer: the training optimizer.
    grads: list of gradient tensors (or None) of `optimizer.scale_loss(loss)`.

  Returns:
    The gradients of the loss itself; `grads` unchanged without scaling.
  """
  if not is_loss_scaled(optimizer):
    return grads
  scale = loss_scale(optimizer)
  return [None if g is None else g / scale for g in grads]


def clip_by_global_norm(optimizer, grads, clip_norm):
  """`tf.clip_by_global_norm` of the true gradients, in the scale `grads` use.

  With loss scaling the gradients are divided by the loss scale S, clipped
  to global norm `clip_norm`, and multiplied by S again for the
  LossScaleOptimizer, which divides by S before its inner optimizer's step.
  S is a power of two, so both scalings are exact (barring overflow). A
  non-finite gradient makes every clipped gradient NaN, so the
  LossScaleOptimizer still skips the step and lowers S.

  Args:
    optimizer: the training optimizer.
    grads: list of gradient tensors (or None) of `optimizer.scale_loss(loss)`.
    clip_norm: the largest global norm of the (unscaled) gradients.

  Returns:
    The clipped gradients, scaled as `grads` were. Without loss scaling,
    exactly `tf.clip_by_global_norm(grads, clip_norm)[0]`.
  """
  if not is_loss_scaled(optimizer):
    return tf.clip_by_global_norm(grads, clip_norm)[0]
  scale = loss_scale(optimizer)
  clipped, _ = tf.clip_by_global_norm(unscaled_gradients(optimizer, grads),
                                      clip_norm)
  return [None if g is None else g * scale for g in clipped]


def is_mixed(model):
  """Whether any layer of `model` computes in a dtype other than float32."""
  return any(layer.compute_dtype != "float32"
             for layer in model._flatten_layers(include_self=True))  # pylint: disable=protected-access


def _float32_layer(layer):
  """A new layer from `layer`'s config with the float32 policy."""
  return layer.__class__.from_config(dict(layer.get_config(),
                                          dtype="float32"))


def _float32_body(body):
  """A custom network body that computes in float32.

  Returns:
    `body` itself when it already is float32 (the copy then shares it), or
    a float32 clone of a Sequential/functional body (weights copied later).

  Raises:
    ExportError: for a subclassed body built under a mixed policy.
  """
  if not is_mixed(body):
    return body
  if isinstance(body, keras.Sequential) or getattr(
      body, "_is_graph_network", False):
    return keras.models.clone_model(body, clone_function=_float32_layer,
                                    recursive=True)
  raise ExportError(
      f"The custom body {body.name} ({type(body).__name__}) computes in "
      f"{body.compute_dtype} and cannot be rebuilt in float32; build the "
      "body as keras.Sequential or a functional model, or create it under "
      "the float32 policy.")


def float32_model(model):
  """`model` rebuilt with float32 networks and the same weights.

  The variant is rebuilt from `model.config` and its data description under
  the float32 policy, its variables created (`build_from_shape`), then every
  weight copied in order (the same construction gives the same order; the
  count, shapes and variable names are checked). A custom body that is
  float32 is shared with the copy; a mixed Sequential/functional body is
  cloned in float32.

  Args:
    model: a built model (any policy).

  Returns:
    A float32 model computing what `model` does up to the networks'
    rounding, or `model` itself when it already is float32 throughout.

  Raises:
    ExportError: when the rebuilt model's weights do not line up, or for a
      mixed subclassed custom body.
  """
  from tfvae import models  # pylint: disable=g-import-not-at-top
  from tfvae.networks import custom  # pylint: disable=g-import-not-at-top
  if not is_mixed(model):
    return model
  bodies = {}
  for side in ("encoder", "decoder"):
    network = getattr(model, side, None)
    if isinstance(network, (custom.CustomEncoder, custom.CustomDecoder)):
      bodies[f"{side}_body"] = _float32_body(network.body)
  with policy_scope("none"):
    copy = models.build(model.config, model.data_shape, model.num_classes,
                        columns=getattr(model, "columns", None), **bodies)
    copy.build_from_shape()
  source, target = model.weights, copy.weights
  mismatched = [(a.path, b.path) for a, b in zip(source, target)
                if tuple(a.shape) != tuple(b.shape)
                or a.name != b.name]
  if len(source) != len(target) or mismatched:
    raise ExportError(
        f"The float32 copy of {model.name} has {len(target)} weights, the "
        f"model {len(source)}; first mismatches: {mismatched[:3]}.")
  copy.set_weights(model.get_weights())
  return copy
