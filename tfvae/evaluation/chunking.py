"""Sizes the importance sampler's work chunks by what the networks hold.

Estimating log p(x) with k samples decodes k x batch latent samples. Sizing
chunks by output pixels alone ignores the networks' intermediate activations:
a conv decoder on 8x8 images was handed hundreds of thousands of samples in
one call and the process died inside oneDNN (a segfault, not a Python
error). Here the cost of one decoded example is measured instead: the
model's `log_weights` is traced as a concrete function for one image with
one and with two samples, and the bytes of every float tensor its graph
materializes (nested functions, loop and branch bodies included; reshapes,
identities, constants and variable reads excluded, as they allocate nothing
per example) are summed; the difference is the cost of one more decoded
example. The sum over all tensors overstates the peak, since the executor
frees tensors once read, so the budget is an upper bound on live memory.

Used by `tfvae.evaluation.likelihood.Evaluator.log_likelihood` and by the
exported `log_likelihood` signature (`tfvae.export.signatures`).
"""

import math
import weakref

import tensorflow as tf

# Bytes of float tensors one `log_weights` call may materialize.
ACTIVATION_BUDGET_BYTES = 2**30
# Ops whose outputs alias their inputs or hold per-call (not per-example)
# values: not counted.
_NON_ALLOCATING_OPS = frozenset({
    "Const", "ExpandDims", "Identity", "IdentityN", "Placeholder",
    "ReadVariableOp", "Reshape", "Snapshot", "Squeeze", "StopGradient"})
_cache = weakref.WeakKeyDictionary()


def _called_graphs(op, functions):
  """The graphs of the functions `op` calls (call, loop and branch bodies)."""
  graphs = []
  for name, value in op.node_def.attr.items():
    del name
    names = []
    if value.HasField("func"):
      names.append(value.func.name)
    if value.HasField("list"):
      names.extend(f.name for f in value.list.func)
    for function_name in names:
      function = functions.get(function_name)
      if function is not None and getattr(function, "graph", None) is not None:
        graphs.append(function.graph)
  return graphs


def graph_float_bytes(graph, functions=None, _seen=None):
  """Bytes of the statically shaped float tensors `graph`'s ops output.

  Args:
    graph: a `tf.Graph` (e.g. a concrete function's `.graph`).
    functions: dict name -> function of the functions ops may call;
      defaults to the graph's own library.

  Returns:
    int, the sum over ops (and the functions they call, each counted once
    per call site) of the byte sizes of their float outputs with fully
    known shapes.
  """
  functions = dict(functions or {})
  functions.update(getattr(graph, "_functions", {}))
  seen = set() if _seen is None else _seen
  total = 0
  for op in graph.get_operations():
    for called in _called_graphs(op, functions):
      if id(called) not in seen:
        seen.add(id(called))
        total += graph_float_bytes(called, functions, seen)
        seen.discard(id(called))
    if op.type in _NON_ALLOCATING_OPS:
      continue
    for tensor in op.outputs:
      if tensor.dtype.is_floating and tensor.shape.is_fully_defined():
        total += tensor.shape.num_elements() * tensor.dtype.size
  return total


def _log_weights_bytes(model, num_samples):
  """Float bytes of `model.log_weights` traced for 1 example, k samples."""
  data_shape = tuple(model.data_shape)
  specs = [tf.TensorSpec((1,) + data_shape, tf.float32),
           tf.TensorSpec((num_samples, 1) + tuple(model.noise_shape()),
                         tf.float32)]
  if model.conditional:
    specs.append(tf.TensorSpec([1], tf.int32))
    function = tf.function(model.log_weights)
  else:
    function = tf.function(lambda images, noise: model.log_weights(images,
                                                                   noise))
  return graph_float_bytes(function.get_concrete_function(*specs).graph)


def decoded_example_bytes(model):
  """Bytes of float tensors `model.log_weights` materializes per sample.

  Traces (never runs) `model.log_weights` for one example with one and with
  two samples; the difference is the cost of one more decoded example
  (decoder activations, likelihood and prior terms). At least 4 bytes per
  data element, the decoded mean alone. Cached per model.

  Args:
    model: a built model with `has_likelihood_bound`.

  Returns:
    int, bytes per decoded example.
  """
  try:
    return _cache[model]
  except (KeyError, TypeError):
    pass
  with tf.init_scope():  # Traces outside any enclosing tf.function.
    per_example = _log_weights_bytes(model, 2) - _log_weights_bytes(model, 1)
  per_example = max(per_example, 4 * math.prod(model.data_shape))
  try:
    _cache[model] = per_example
  except TypeError:
    pass
  return per_example


def max_decoded_examples(model, budget_bytes=None):
  """Decoded examples (samples x images) one `log_weights` call may hold.

  Args:
    model: a built model with `has_likelihood_bound`.
    budget_bytes: the float bytes one call may materialize; None means
      `ACTIVATION_BUDGET_BYTES`.

  Returns:
    int >= 1.
  """
  if budget_bytes is None:
    budget_bytes = ACTIVATION_BUDGET_BYTES
  return max(1, budget_bytes // decoded_example_bytes(model))


def samples_per_chunk(num_samples, batch, max_decoded):
  """Samples per chunk so that chunk x batch <= max_decoded (>= 1).

  Args:
    num_samples: k.
    batch: images decoded together.
    max_decoded: `max_decoded_examples(model)`.

  Returns:
    int in [1, num_samples].
  """
  return max(1, min(num_samples, max_decoded // max(1, batch)))
