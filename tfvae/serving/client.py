"""What each tfvae serving signature takes and returns, and input checks.

Shared by the REST (`tfvae.serving.rest`) and gRPC (`tfvae.serving.grpc_client`)
clients; needs numpy only. `inputs_for` turns Python values into the arrays a
signature expects (float32 images/latents, int32 counts, seeds and labels) and
rejects wrong names, dtypes and ranks with a one-line `ValueError` that names
the signature and what it expects:

  inputs_for("sample", num_samples=4, seed=1)
  # {"num_samples": array(4, dtype=int32), "seed": array(1, dtype=int32)}
  inputs_for("sample", num_samples=4, seed=1.5)
  # ValueError: sample: seed must be an integer (int32), got float64;
  #   expected inputs: num_samples (int32 scalar), seed (int32 scalar),
  #   label (int32 [N], optional).
"""

import collections.abc
import dataclasses

import numpy as np

from tfvae.errors import TfvaeError

_INT32 = np.iinfo(np.int32)


class ServingError(TfvaeError):
  """A request the server refused or could not be reached for; one line."""


@dataclasses.dataclass(frozen=True)
class InputSpec:
  """One input tensor of a signature.

  Attributes:
    name: the input's name in the signature.
    dtype: `np.float32` or `np.int32`.
    rank: number of dimensions (0 for scalars).
    shape: human-readable shape, e.g. `[N, H, W, C]`.
    required: False for inputs only some models take (`label`).
    minimum: smallest allowed value (int32 inputs), or None.
    other_ranks: rank -> shape of other accepted forms (`x` of vector
      models is `[N, D]`).
  """
  name: str
  dtype: type
  rank: int
  shape: str
  required: bool = True
  minimum: int | None = None
  other_ranks: tuple[tuple[int, str], ...] = ()

  def describe(self):
    """E.g. `x (float32 [N, H, W, C])`, `label (int32 [N], optional)`."""
    optional = ", optional" if not self.required else ""
    return f"{self.name} ({np.dtype(self.dtype).name} {self.shape}{optional})"


@dataclasses.dataclass(frozen=True)
class Signature:
  """One serving signature.

  Attributes:
    name: the signature name sent to TF Serving.
    inputs: the input tensors, in a stable order.
    outputs: output names every model has.
    likelihood_outputs: True if the signature also returns the likelihood's
      parameters (`logits`, or `loc` and `scale`), as `decode` does.
  """
  name: str
  inputs: tuple[InputSpec, ...]
  outputs: tuple[str, ...]
  likelihood_outputs: bool = False

  def describe_inputs(self):
    return ", ".join(spec.describe() for spec in self.inputs)


_X = InputSpec("x", np.float32, 4, "[N, H, W, C] in [0, 1]",
               other_ranks=((2, "[N, D] vectors"),))
_Z = InputSpec("z", np.float32, 2, "[N, latent_dim]")
_NUM_SAMPLES = InputSpec("num_samples", np.int32, 0, "scalar", minimum=1)
_SEED = InputSpec("seed", np.int32, 0, "scalar")
# Conditional models only.
_LABEL = InputSpec("label", np.int32, 1, "[N]", required=False, minimum=0)


def _signature(name, inputs, outputs, likelihood_outputs=False):
  return Signature(name, tuple(inputs) + (_LABEL,), tuple(outputs),
                   likelihood_outputs)


SIGNATURES = {
    signature.name: signature for signature in (
        _signature("reconstruct", [_X], ["images"]),
        _signature("serving_default", [_X], ["images"]),
        _signature("encode", [_X], ["mean", "stddev"]),
        _signature("decode", [_Z], ["mean"], likelihood_outputs=True),
        _signature("sample", [_NUM_SAMPLES, _SEED], ["images"]),
        _signature("log_likelihood", [_X, _NUM_SAMPLES], ["log_prob"]),
    )
}


def get_signature(name):
  """The `Signature` called `name`; ValueError listing the known ones."""
  if name not in SIGNATURES:
    raise ValueError(f"Unknown signature {name!r}; tfvae exports "
                     f"{', '.join(SIGNATURES)}.")
  return SIGNATURES[name]


def single_output_name(signature):
  """The output name of a one-output signature, else None.

  TF Serving's REST API leaves the name out of responses with one output.
  """
  spec = get_signature(signature)
  if len(spec.outputs) == 1 and not spec.likelihood_outputs:
    return spec.outputs[0]
  return None


def name_vector_outputs(outputs):
  """Renames a `[N, D]` `images` output to `x`, as vector models name it.

  TF Serving's REST answer leaves a single output unnamed, and
  `single_output_name` calls it `images`; the `reconstruct` and `sample`
  signatures of vector models (tables) name it `x`.
  """
  images = outputs.get("images")
  if images is not None and np.ndim(images) == 2:
    outputs = dict(outputs)
    outputs["x"] = outputs.pop("images")
  return outputs


def check_version(version):
  """`version` (int or digit string) as an int; ValueError otherwise.

  TF Serving's version folders are non-negative integers.
  """
  text = str(version)
  if isinstance(version, bool) or not text.isdigit():
    raise ValueError(f"Model version must be a non-negative integer, got "
                     f"{version!r}.")
  return int(text)


def one_line(text, limit=500):
  """`text` on one line, shortened to `limit` characters (error messages)."""
  text = " ".join(str(text).split())
  return text if len(text) <= limit else text[:limit - 3] + "..."


def inputs_for(signature, **inputs):
  """Checked numpy inputs for `signature`.

  Args:
    signature: a name in `SIGNATURES`.
    **inputs: input name -> array-like; see `SIGNATURES[signature].inputs`.

  Returns:
    Dict of input name -> np.ndarray of the input's dtype (float32 or int32)
    and rank, in the signature's input order.

  Raises:
    ValueError: (one line) an unknown, missing or malformed input.
  """
  return validate_inputs(signature, inputs)


def validate_inputs(signature, inputs):
  """`inputs_for` taking a dict: input name -> array-like."""
  spec = get_signature(signature)
  if not isinstance(inputs, collections.abc.Mapping):
    _fail(spec, f"inputs must be a dict of name -> value, got "
          f"{type(inputs).__name__}")
  known = {input_spec.name: input_spec for input_spec in spec.inputs}
  unknown = sorted(set(inputs) - set(known))
  if unknown:
    _fail(spec, f"unknown input {', '.join(map(repr, unknown))}")
  missing = [name for name, input_spec in known.items()
             if input_spec.required and name not in inputs]
  if missing:
    _fail(spec, f"missing input {', '.join(map(repr, missing))}")
  return {name: _convert(spec, input_spec, inputs[name])
          for name, input_spec in known.items() if name in inputs}


def _convert(signature, spec, value):
  """`value` as an array of `spec`'s dtype; ValueError if it does not fit."""
  try:
    array = np.asarray(value)
  except (ValueError, TypeError) as err:
    _fail(signature, f"{spec.name} is not an array: {one_line(err, 200)}")
  if array.ndim != spec.rank and array.ndim not in dict(spec.other_ranks):
    others = "".join(f" or {rank} ({shape})"
                     for rank, shape in spec.other_ranks)
    _fail(signature, f"{spec.name} must have rank {spec.rank} ({spec.shape})"
          f"{others}, got shape {list(array.shape)}")
  if spec.dtype == np.int32:
    return _to_int32(signature, spec, array)
  if array.dtype.kind not in "fiu":
    _fail(signature, f"{spec.name} must be numbers (float32), got "
          f"{array.dtype.name}")
  return array.astype(np.float32)


def _to_int32(signature, spec, array):
  """Integer `array` as int32, checking its range (rejects floats, bools)."""
  if array.dtype.kind not in "iu":
    _fail(signature, f"{spec.name} must be an integer (int32), got "
          f"{array.dtype.name}")
  if array.size:
    low = _INT32.min if spec.minimum is None else spec.minimum
    if array.min() < low or array.max() > _INT32.max:
      got = (str(array) if array.ndim == 0
             else f"values in [{array.min()}, {array.max()}]")
      _fail(signature, f"{spec.name} must be in [{low}, {_INT32.max}], got "
            f"{got}")
  return array.astype(np.int32)


def _fail(signature, problem):
  raise ValueError(f"{signature.name}: {problem}; expected inputs: "
                   f"{signature.describe_inputs()}.")
