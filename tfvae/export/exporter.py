"""Writes one export version: SavedModel + warm-up requests + `model.tflite`.

TF Serving watches a base folder of integer version folders. A version is
built completely in a hidden staging folder beside them (TF Serving ignores
names that are not integers), checked, then renamed into place, so a server
never sees half a model and a failed export leaves nothing behind. Versions
are never overwritten: each export takes the next integer.

The version number is chosen when the export is published, not when it
starts: exports that run at the same time (two `python -m tfvae.export`
calls, or one beside a training run's) each build in their own staging
folder, then, one at a time under an exclusive `flock` on the hidden
`<export_dir>/.export.lock`, take the next free integer and rename their
folder to it. `models.config` is updated under the same lock (and under one
beside it, shared by the models listed there), so concurrent exports never
interleave their writes to it. Lock files are removed once released.
"""

import contextlib
import dataclasses
import errno
import fcntl
import functools
import json
import os
import shutil
import uuid

import numpy as np
import tensorflow as tf

from tfvae.data import columns as columns_lib
from tfvae.errors import ExportError
from tfvae.export import serving_config
from tfvae.export import signatures
from tfvae.export import tflite
from tfvae.export import warmup
from tfvae.training import precision
from tfvae.training import run_lock

TFLITE_FILE = "model.tflite"
# In assets.extra/, beside TF Serving's warm-up requests.
METADATA_FILE = "tfvae.json"
# Largest |TFLite - SavedModel| accepted on `decode` by the export check.
_TOLERANCE = {"none": 1e-4, "float16": 1e-2, "dynamic_int8": 0.1}
# Hidden (not an integer), so TF Serving ignores it.
LOCK_FILE = ".export.lock"
# errno values of a filesystem that does not support flock.
_NO_FLOCK = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP})
# Versions tried when folders keep appearing (writers that take no lock).
_PUBLISH_ATTEMPTS = 100


@dataclasses.dataclass(frozen=True)
class ExportResult:
  """Where an export went.

  Attributes:
    version: the integer version written.
    version_dir: the SavedModel folder `<export_dir>/<version>`.
    tflite_path: `<version_dir>/model.tflite`.
    models_config: the TF Serving `models.config` updated, or None.
  """
  version: int
  version_dir: str
  tflite_path: str
  models_config: str


def next_version(export_dir):
  """1 + the largest integer version folder in `export_dir` (1 if none)."""
  versions = [int(name) for name in os.listdir(export_dir)
              if name.isdigit() and os.path.isdir(os.path.join(export_dir,
                                                               name))]
  return max(versions, default=0) + 1


@contextlib.contextmanager
def _exclusive(lock_path):
  """Holds an exclusive `flock` on `lock_path`, waiting for it if need be.

  The file is created if missing and removed on release while still locked;
  a process that was waiting on the removed file finds that the path no
  longer names it and locks the path's new file instead. On a filesystem
  without flock this holds nothing (publishing then relies on `os.rename`
  refusing to replace a non-empty folder).

  Args:
    lock_path: the lock file.

  Yields:
    None, with the lock held.
  """
  fd = None
  while fd is None:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as e:
      os.close(fd)
      fd = None
      if e.errno not in _NO_FLOCK:
        raise
      break
    if not run_lock.is_current(fd, lock_path):  # The holder removed it.
      os.close(fd)
      fd = None
  try:
    yield
  finally:
    if fd is not None:
      try:
        os.remove(lock_path)
      except OSError:
        pass
      os.close(fd)
    elif os.path.exists(lock_path):
      try:
        os.remove(lock_path)  # The file made while trying to flock it.
      except OSError:
        pass


def _publish(staging_dir, export_dir, then=None):
  """Renames `staging_dir` to the next free version of `export_dir`.

  Runs under the export folder's lock, so concurrent exports publish one
  at a time and never take the same number.

  Args:
    staging_dir: the complete, checked version, inside `export_dir`.
    export_dir: the folder of integer versions.
    then: called (no arguments) after the rename, still under the lock:
      the `models.config` update; or None.

  Returns:
    The integer version published.

  Raises:
    OSError: when the rename fails.
  """
  with _exclusive(os.path.join(export_dir, LOCK_FILE)):
    for _ in range(_PUBLISH_ATTEMPTS):
      version = next_version(export_dir)
      try:
        os.rename(staging_dir, os.path.join(export_dir, str(version)))
        break
      except OSError as e:
        # A folder made meanwhile by a writer that took no lock.
        if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
          raise
    else:
      raise OSError(errno.EEXIST, "version folders kept appearing",
                    export_dir)
    if then:
      then()
  return version


def _update_models_config(models_config_path, model_name, base_path):
  """`serving_config.update_models_config` under a lock beside the file.

  Several models (export folders) can be listed in one `models.config`, so
  its read-modify-write is serialized by a lock of its own.
  """
  folder, name = os.path.split(models_config_path)
  with contextlib.ExitStack() as stack:
    try:
      stack.enter_context(_exclusive(
          os.path.join(folder or os.curdir, f".{name}.lock")))
    except OSError as e:
      raise ExportError(f"Cannot write {models_config_path}: {e}; fix its "
                        "folder, then export again.") from e
    serving_config.update_models_config(models_config_path, model_name,
                                        base_path)


def _prepare_export_dir(export_dir):
  try:
    os.makedirs(export_dir, exist_ok=True)
  except OSError as e:
    raise ExportError(f"Cannot create --export_dir={export_dir}: "
                      f"{e.strerror}; choose a writable folder.") from e
  if not os.access(export_dir, os.W_OK | os.X_OK):
    raise ExportError(f"--export_dir={export_dir} is not writable; choose a "
                      "writable folder.")


def check_tflite(model, tflite_bytes, quantization):
  """Runs the TFLite `decode` and `sample` and compares them with the model.

  Conversion can succeed and still produce NaN or lose weights, so the
  numbers are checked before a version is published.

  Raises:
    ExportError: when the TFLite outputs are not finite or differ.
  """
  from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top
  interpreter = Interpreter(model_content=tflite_bytes)
  examples = signatures.example_inputs(model, batch_size=3)
  inputs = {name: value.numpy() for name, value in examples["decode"].items()}
  got = interpreter.get_signature_runner("decode")(**inputs)["mean"]
  want = signatures.signature_functions(model)["decode"](
      **examples["decode"])["mean"].numpy()
  error = float(np.max(np.abs(got - want))) if np.all(
      np.isfinite(got)) else float("inf")
  if error > _TOLERANCE[quantization]:
    raise ExportError(
        f"The TFLite decode differs from the model by {error:.3g} "
        f"(tolerance {_TOLERANCE[quantization]}) with "
        f"--tflite_quantization={quantization}; the file was not published.")
  sample_inputs = {name: value.numpy()
                   for name, value in examples["sample"].items()}
  images = interpreter.get_signature_runner("sample")(**sample_inputs)[
      signatures.output_name(model)]
  if not np.all(np.isfinite(images)):
    raise ExportError("The TFLite sample signature returns non-finite "
                      "values; the file was not published.")


def metadata(model):
  """What a reader of the export needs beyond its signatures (JSON-ready).

  Returns:
    Dict: `model` (variant), `data_shape`, `conditional`, `num_classes`,
    `has_likelihood_bound`, `latent_dim`, and `columns` (the vector data's
    column kinds, vocabularies and statistics, or None).
  """
  return {
      "model": model.config.model,
      "likelihood": model.config.likelihood,
      "data_shape": list(model.data_shape),
      "conditional": bool(model.conditional),
      "num_classes": model.num_classes,
      "has_likelihood_bound": bool(model.has_likelihood_bound),
      "latent_dim": int(model.latent_dim),
      "columns": columns_lib.to_dicts(getattr(model, "columns", None)),
  }


def write_metadata(model, version_dir):
  """Writes `metadata(model)` to `<version_dir>/assets.extra/tfvae.json`."""
  folder = os.path.join(version_dir, "assets.extra")
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, METADATA_FILE), "w") as f:
    json.dump(metadata(model), f, indent=2)


def export(model, export_dir, model_name, quantization="none",
           models_config_path=None, serving_base_path=None):
  """Exports `model` as the next version under `export_dir`.

  Args:
    model: a built, trained model.
    export_dir: TF Serving base path (folder of integer versions).
    model_name: the name TF Serving serves it under.
    quantization: TFLite quantization, see `tfvae.export.tflite`.
    models_config_path: TF Serving `models.config` to add the model to;
      None skips it.
    serving_base_path: the base path as the server sees it; default
      `/models/<model_name>` (the `tensorflow/serving` image's layout).

  Returns:
    An `ExportResult` with the version actually published (exports that
    run at the same time take distinct versions, in the order they finish).

  Raises:
    ExportError: unwritable folder or a failed conversion/check; no
      version folder is left behind.
  """
  _prepare_export_dir(export_dir)
  if models_config_path:  # A broken config fails before anything is published.
    serving_config.read_models_config(models_config_path)
  staging_dir = os.path.join(
      export_dir, f".staging-{os.getpid()}-{uuid.uuid4().hex[:8]}")
  update_config = None
  if models_config_path:
    update_config = functools.partial(
        _update_models_config, models_config_path, model_name,
        serving_base_path or f"/models/{model_name}")
  try:
    signatures.build_archive(model).write_out(staging_dir, verbose=False)
    warmup.write_warmup_requests(staging_dir, model_name,
                                 signatures.example_inputs(model))
    write_metadata(model, staging_dir)
    tflite_bytes = tflite.convert(staging_dir, signatures.TFLITE_SIGNATURES,
                                  quantization)
    check_tflite(model, tflite_bytes, quantization)
    with open(os.path.join(staging_dir, TFLITE_FILE), "wb") as f:
      f.write(tflite_bytes)
    version = _publish(staging_dir, export_dir, then=update_config)
  except (OSError, tf.errors.OpError) as e:
    raise ExportError(f"Export to {export_dir} failed: {e}; nothing was "
                      "published.") from e
  finally:
    shutil.rmtree(staging_dir, ignore_errors=True)
  final_dir = os.path.join(export_dir, str(version))
  return ExportResult(version, final_dir,
                      os.path.join(final_dir, TFLITE_FILE),
                      models_config_path)


def export_run(model, config):
  """Exports a run's model where its config says, named after the run.

  The model goes to `export_dir` (default `saved_models/<run name>`) and is
  served under that folder's name; `models.config` beside the folder lists
  it for TF Serving.

  Args:
    model: the trained model (mixed-precision models are exported as their
      float32 copy).
    config: the run's `RunConfig`.

  Returns:
    An `ExportResult`.
  """
  export_dir = config.export.resolved_export_dir(config.run_name)
  name = os.path.basename(os.path.normpath(export_dir))
  # A mixed-precision model is exported as its float32 copy (TFLite cannot
  # convert bfloat16/float16 MatMuls); a float32 model as it is.
  return export(
      precision.float32_model(model), export_dir, name, config.export.tflite_quantization,
      models_config_path=os.path.join(
          os.path.dirname(os.path.normpath(export_dir)) or os.curdir,
          serving_config.CONFIG_FILE))
