"""`tfvae.load`: a trained model for inference, numpy in and numpy out.

```python
import tfvae

model = tfvae.load("saved_models/quickstart")     # or .../1, or runs/quickstart
codes = model.encode(x)                           # {'mean', 'stddev'} [N, 32]
images = model.decode(codes["mean"])["mean"]      # [N, 28, 28, 1]
scores = model.log_likelihood(x, num_samples=100) # [N], an anomaly score
draws = model.sample(16, seed=7)                  # [16, 28, 28, 1]
```

A SavedModel is loaded with `tf.saved_model.load(version_dir)` and called
through its serving signatures, so this needs neither TensorFlow Probability
nor tfvae's model code (what TF Serving would answer, computed in-process).
A run folder without an export is rebuilt from its latest checkpoint and
called through the same signature functions
(`tfvae.export.signatures.signature_functions`), so both behave the same.

Images are float32 `[N, H, W, C]` in [0, 1] (uint8 arrays are divided by
255, as the input pipeline does; grey images may be `[N, H, W]`); vector
data is `[N, D]` raw values. Conditional models take `labels=`: int class
ids `[N]` (or one int for every row).
"""

import json
import os

import numpy as np
import tensorflow as tf

from tfvae.errors import DataError
from tfvae.errors import ExportError

SAVED_MODEL_FILE = "saved_model.pb"
# Written by the exporter beside the SavedModel: model, data_shape,
# conditional, num_classes, has_likelihood_bound, columns.
METADATA_FILE = os.path.join("assets.extra", "tfvae.json")
RUN_CONFIG_FILE = "config.json"  # = tfvae.training.run_state.CONFIG_FILE
CHECKPOINT_DIR = "checkpoints"  # = tfvae.training.run_state.CHECKPOINT_DIR
# Rows per call of encode/decode/reconstruct, so that large arrays do not
# hold every intermediate activation at once.
BATCH_SIZE = 1024

_WHAT_LOADS = ("an export folder (saved_models/<run>), a version folder "
               "(saved_models/<run>/1) or a run's --model_dir (runs/<run>)")


def load(path):
  """Loads the model at `path` for inference.

  Args:
    path: one of
      - an export base folder (TF Serving's base path): its newest integer
        version is loaded;
      - a version folder (it holds `saved_model.pb`);
      - a run's `model_dir` (it holds `config.json`): its latest export (the
        run's `export_dir`, default `saved_models/<run name>` relative to the
        current folder), else the model rebuilt from its latest checkpoint.

  Returns:
    A `LoadedModel`.

  Raises:
    ExportError: nothing at `path`, or nothing loadable there; the message
      names the path and what to pass instead.
  """
  path = os.fspath(path)
  kind, where = resolve(path)
  if kind == "saved_model":
    return LoadedModel.from_saved_model(where)
  return LoadedModel.from_checkpoint(where)


def resolve(path):
  """What `load(path)` would load, without loading it.

  Returns:
    `("saved_model", version_dir)` or `("checkpoint", model_dir)`.

  Raises:
    ExportError: as `load`.
  """
  if not os.path.exists(path):
    raise ExportError(f"Cannot load {path}: it does not exist; pass "
                      f"{_WHAT_LOADS}.")
  if not os.path.isdir(path):
    raise ExportError(f"Cannot load {path}: it is a file, not a folder; pass "
                      f"{_WHAT_LOADS}.")
  if os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
    return "saved_model", path
  if (os.path.basename(os.path.normpath(path)) == CHECKPOINT_DIR
      and os.path.isfile(os.path.join(os.path.dirname(
          os.path.normpath(path)), RUN_CONFIG_FILE))):
    path = os.path.dirname(os.path.normpath(path))  # runs/x/checkpoints
  if os.path.isfile(os.path.join(path, RUN_CONFIG_FILE)):
    return _resolve_run(path)
  version_dir = newest_version(path)
  if version_dir:
    return "saved_model", version_dir
  raise ExportError(
      f"Cannot load {path}: it holds no {SAVED_MODEL_FILE}, no integer "
      f"version folders and no {RUN_CONFIG_FILE}; pass {_WHAT_LOADS}.")


def newest_version(export_dir):
  """The largest integer version folder holding a SavedModel, or None."""
  versions = [int(name) for name in os.listdir(export_dir)
              if name.isdigit() and os.path.isfile(
                  os.path.join(export_dir, name, SAVED_MODEL_FILE))]
  return os.path.join(export_dir, str(max(versions))) if versions else None


def _resolve_run(model_dir):
  """A run folder's latest export, else its checkpoint folder."""
  with open(os.path.join(model_dir, RUN_CONFIG_FILE)) as f:
    saved = json.load(f)
  export_dir = _run_export_dir(saved, model_dir)
  if os.path.isdir(export_dir):
    version_dir = newest_version(export_dir)
    if version_dir:
      return "saved_model", version_dir
  if tf.train.latest_checkpoint(os.path.join(model_dir, CHECKPOINT_DIR)):
    return "checkpoint", model_dir
  raise ExportError(
      f"Cannot load {model_dir}: the run has no export in {export_dir} and no "
      f"checkpoint in {os.path.join(model_dir, CHECKPOINT_DIR)}; train it "
      "first (tfvae.train_and_evaluate or python train.py), or pass the "
      "export folder if it was moved.")


def _run_export_dir(saved, model_dir):
  """`ExportConfig.resolved_export_dir` of a saved run config dict."""
  export_dir = (saved.get("export") or {}).get("export_dir")
  if export_dir:
    return export_dir
  run_model_dir = (saved.get("train") or {}).get("model_dir") or model_dir
  run_name = os.path.basename(os.path.normpath(run_model_dir)) or "model"
  return os.path.join("saved_models", run_name)


class LoadedModel:
  """A trained model's serving signatures, called with numpy arrays.

  Attributes:
    path: the version folder (SavedModel) or run folder (checkpoint) loaded.
    source: `"saved_model"` or `"checkpoint"`.
    metadata: the export's `assets.extra/tfvae.json` (keys `model`,
      `data_shape`, `conditional`, `num_classes`, `has_likelihood_bound`,
      `columns`, ...; see `tfvae.export.exporter.metadata`), the same dict
      when loaded from a checkpoint, or `{}` for an export without it.
    data_shape: one example's shape: `(H, W, C)` images or `(D,)` vectors.
    conditional: whether every method needs `labels=`.
    num_classes: number of labels when known, else None.
    signatures: the names of the signatures (`encode`, `decode`, ...).
    has_likelihood_bound: whether `log_likelihood` is available.
  """

  def __init__(self, functions, path, source, metadata=None, owner=None):
    """Wraps signature callables.

    Args:
      functions: name -> `(callable, input_specs)`: the callable takes the
        signature's inputs as keyword tensors and returns a dict of tensors;
        `input_specs` maps each input name to its `tf.TensorSpec`.
      path: what was loaded (for messages).
      source: `"saved_model"` or `"checkpoint"`.
      metadata: a dict describing the model, or None.
      owner: the object the callables need alive (the loaded SavedModel or
        the Keras model).
    """
    self._functions = functions
    self._owner = owner
    self.path = path
    self.source = source
    self.metadata = dict(metadata or {})
    if "encode" not in functions or "decode" not in functions:
      raise ExportError(
          f"Cannot load {path}: it has no tfvae encode/decode signatures "
          f"(found: {', '.join(sorted(functions)) or 'none'}); pass a tfvae "
          "export.")
    x_spec = functions["encode"][1]["x"]
    if self.metadata.get("data_shape"):
      self.data_shape = tuple(int(d) for d in self.metadata["data_shape"])
    else:
      self.data_shape = tuple(int(d) for d in x_spec.shape[1:])
    self.conditional = "label" in functions["encode"][1]
    self.num_classes = self.metadata.get("num_classes")
    self.signatures = tuple(sorted(functions))
    self.has_likelihood_bound = "log_likelihood" in functions

  @classmethod
  def from_saved_model(cls, version_dir):
    """Loads a version folder through `tf.saved_model.load` (no TFP needed).

    Raises:
      ExportError: the folder is not a readable SavedModel.
    """
    try:
      loaded = tf.saved_model.load(version_dir)
    except (OSError, ValueError, tf.errors.OpError) as e:
      first = str(e).strip().splitlines()[0] if str(e).strip() else type(
          e).__name__
      raise ExportError(f"Cannot load the SavedModel {version_dir}: {first}; "
                        "export the run again (python -m tfvae.export "
                        "--model_dir=...).") from None
    functions = {}
    for name, function in loaded.signatures.items():
      if name == "serving_default":
        continue
      _, specs = function.structured_input_signature
      functions[name] = (function, dict(specs))
    metadata = None
    metadata_path = os.path.join(version_dir, METADATA_FILE)
    if os.path.isfile(metadata_path):
      with open(metadata_path) as f:
        metadata = json.load(f)
    return cls(functions, version_dir, "saved_model", metadata, owner=loaded)

  @classmethod
  def from_checkpoint(cls, model_dir):
    """Rebuilds a run's model from `config.json` and its latest checkpoint.

    Raises:
      ExportError: the folder has no config or no checkpoint.
    """
    # Imported here: the model code pulls in TFP, which SavedModels don't need.
    from tfvae.export import exporter  # pylint: disable=g-import-not-at-top
    from tfvae.export import signatures  # pylint: disable=g-import-not-at-top
    from tfvae.training import run_state  # pylint: disable=g-import-not-at-top
    model, _, _ = run_state.load_trained_model(model_dir)
    functions = {}
    for name, function in signatures.signature_functions(model).items():
      functions[name] = (function, {spec.name: spec
                                    for spec in function.input_signature})
    return cls(functions, model_dir, "checkpoint", exporter.metadata(model),
               owner=model)

  def __repr__(self):
    model = self.metadata.get("model")
    return (f"LoadedModel({model + ', ' if model else ''}data_shape="
            f"{self.data_shape}, conditional={self.conditional}, "
            f"{self.source} {self.path})")

  # ---- The signatures -------------------------------------------------------

  def encode(self, x, labels=None):
    """The posterior parameters (or codes) of `x`.

    Args:
      x: `[N, *data_shape]` data (images float32 in [0, 1]).
      labels: `[N]` int class ids (conditional models only).

    Returns:
      Dict of numpy arrays: `mean`, `stddev` `[N, latent_dim]` for Gaussian
      latents; `indices` `[N, h, w]` for VQ-VAE.
    """
    x = self._data("encode", x)
    return self._batched("encode", {"x": x}, self._labels(labels, len(x)))

  def decode(self, z, labels=None):
    """The likelihood's parameters for latent codes `z`.

    Args:
      z: `[N, latent_dim]` float codes (`[N, h, w]` int indices for VQ-VAE).
      labels: `[N]` int class ids (conditional models only).

    Returns:
      Dict of numpy arrays: `mean` `[N, *data_shape]` and the likelihood's
      parameters (`logits`, or `loc` and `scale`).
    """
    name, spec = self._decode_input()
    z = self._array("decode", name, z, spec)
    return self._batched("decode", {name: z}, self._labels(labels, len(z)))

  def reconstruct(self, x, labels=None):
    """The mean of p(x|z) at the posterior mean of z, `[N, *data_shape]`."""
    x = self._data("reconstruct", x)
    return _only(self._batched("reconstruct", {"x": x},
                               self._labels(labels, len(x))))

  def sample(self, n, seed=0, labels=None):
    """`n` draws from the model (prior sample, then the likelihood's mean).

    Args:
      n: number of samples.
      seed: int seed; equal seeds give equal samples.
      labels: `[n]` int class ids, or one int for all (conditional models).

    Returns:
      `[n, *data_shape]` float32.
    """
    if int(n) < 1:
      raise DataError(f"sample(n={n}): n must be >= 1.")
    inputs = {"num_samples": np.int32(n), "seed": np.int32(seed)}
    inputs.update(self._labels(labels, int(n)))
    return _only(self._call("sample", inputs))

  def log_likelihood(self, x, num_samples=100, labels=None):
    """Importance-weighted estimate of log p(x) per example (an anomaly score).

    Args:
      x: `[N, *data_shape]` data.
      num_samples: importance samples k (more: tighter, slower).
      labels: `[N]` int class ids (conditional models only).

    Returns:
      `[N]` float32 log p(x) in nats.

    Raises:
      ExportError: the model has no likelihood bound (`ae`, `vq_vae`).
    """
    if not self.has_likelihood_bound:
      model = self.metadata.get("model")
      raise ExportError(
          f"The model at {self.path}{f' ({model})' if model else ''} has no "
          "likelihood bound, so it has no log_likelihood signature; use "
          "reconstruct(x) and the reconstruction error instead.")
    if int(num_samples) < 1:
      raise DataError(f"log_likelihood(num_samples={num_samples}): "
                      "num_samples must be >= 1.")
    x = self._data("log_likelihood", x)
    inputs = {"x": x, "num_samples": np.int32(num_samples)}
    inputs.update(self._labels(labels, len(x)))
    return self._call("log_likelihood", inputs)["log_prob"]

  # ---- Inputs and calls -----------------------------------------------------

  def _decode_input(self):
    specs = self._functions["decode"][1]
    name = next(k for k in specs if k != "label")
    return name, specs[name]

  def _data(self, method, x):
    """`x` as float32 `[N, *data_shape]`, or a DataError naming the shape."""
    x = np.asarray(x)
    if len(self.data_shape) == 3:  # Images, as the input pipeline reads them.
      if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
      if self.data_shape[-1] == 1 and x.shape[1:] == self.data_shape[:-1]:
        x = x[..., None]  # Grey images given as [N, H, W].
    return self._array(method, "x", x, self._functions[method][1]["x"])

  def _array(self, method, name, value, spec):
    """`value` with `spec`'s dtype, or a DataError naming shapes and fix."""
    value = np.asarray(value)
    want = self.data_shape if name == "x" else tuple(spec.shape[1:])
    if value.ndim != len(want) + 1 or any(
        w is not None and w != g for w, g in zip(want, value.shape[1:])):
      shape = "[" + ", ".join(
          "N" if w is None else str(w) for w in (None,) + want) + "]"
      if name != "x":
        kind, fix = (f"{name} {shape}",
                     "pass one code per row, as encode(x) returns them")
      elif len(want) == 1:
        columns = [c.get("name") for c in self.metadata.get("columns") or []
                   if isinstance(c, dict)]
        listed = (f"; columns {', '.join(map(str, columns[:8]))}"
                  f"{', ...' if len(columns) > 8 else ''}" if columns else "")
        kind, fix = (f"vectors of length {want[0]} ({shape}{listed})",
                     "pass rows with those columns (one row: x[None])")
      else:
        kind, fix = (f"images {shape} (float32 in [0, 1])",
                     "resize or reshape them (one image: x[None])")
      raise DataError(
          f"{method}: {name} has shape {list(value.shape)}, but the model at "
          f"{self.path} takes {kind}; {fix}.")
    if spec.dtype.is_integer and not np.issubdtype(value.dtype, np.integer):
      raise DataError(f"{method}: {name} must be integers "
                      f"({spec.dtype.name}), not {value.dtype}.")
    return value.astype(spec.dtype.as_numpy_dtype)

  def _labels(self, labels, count):
    """`{'label': int32 [count]}` for conditional models, else `{}`."""
    if not self.conditional:
      if labels is not None:
        raise DataError(f"The model at {self.path} is not conditional; drop "
                        "labels=.")
      return {}
    if labels is None:
      classes = (f" in [0, {self.num_classes})" if self.num_classes else "")
      raise DataError(
          f"The model at {self.path} is conditional: pass labels=, an int "
          f"array [N] of class ids{classes} (or one int for every row).")
    labels = np.asarray(labels)
    if labels.ndim == 0:
      labels = np.full([count], labels)
    if labels.shape != (count,) or not np.issubdtype(labels.dtype,
                                                     np.integer):
      raise DataError(f"labels must be {count} integer class ids [N], got "
                      f"{labels.dtype} of shape {list(labels.shape)}.")
    if self.num_classes and (labels.min(initial=0) < 0 or labels.max(
        initial=0) >= self.num_classes):
      raise DataError(f"labels must be class ids in [0, {self.num_classes}); "
                      f"got {labels.min()}..{labels.max()}.")
    return {"label": labels.astype(np.int32)}

  def _batched(self, name, inputs, labels):
    """Calls `name` on chunks of `BATCH_SIZE` rows and concatenates them."""
    inputs = dict(inputs, **labels)
    count = len(next(iter(inputs.values())))
    if count <= BATCH_SIZE:
      return self._call(name, inputs)
    parts = [self._call(name, {k: v[i:i + BATCH_SIZE]
                               for k, v in inputs.items()})
             for i in range(0, count, BATCH_SIZE)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

  def _call(self, name, inputs):
    function, specs = self._functions[name]
    tensors = {k: tf.constant(np.asarray(v, specs[k].dtype.as_numpy_dtype))
               for k, v in inputs.items()}
    outputs = function(**tensors)
    return {k: v.numpy() for k, v in outputs.items()}


def _only(outputs):
  """The single output of `reconstruct`/`sample` (`images`, or `x` for
  vectors)."""
  if len(outputs) == 1:
    return next(iter(outputs.values()))
  for name in ("images", "x"):
    if name in outputs:
      return outputs[name]
  return outputs
