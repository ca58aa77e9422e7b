"""Writes one export version: SavedModel + warm-up requests + `model.tflite`.

TF Serving watches a base folder of integer version folders. A version is
built completely in a hidden temporary folder beside them (TF Serving ignores
names that are not integers), checked, then renamed into place, so a server
never sees half a model and a failed export leaves nothing behind. Versions
are never overwritten: each export takes the next integer.
"""

import dataclasses
import json
import os
import shutil

import numpy as np
import tensorflow as tf

from tfvae.data import columns as columns_lib
from tfvae.errors import ExportError
from tfvae.export import serving_config
from tfvae.export import signatures
from tfvae.export import tflite
from tfvae.export import warmup

TFLITE_FILE = "model.tflite"
# In assets.extra/, beside TF Serving's warm-up requests.
METADATA_FILE = "tfvae.json"
# Largest |TFLite - SavedModel| accepted on `decode` by the export check.
_TOLERANCE = {"none": 1e-4, "float16": 1e-2, "dynamic_int8": 0.1}


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
    An `ExportResult`.

  Raises:
    ExportError: unwritable folder or a failed conversion/check; no
      version folder is left behind.
  """
  _prepare_export_dir(export_dir)
  if models_config_path:  # A broken config fails before anything is published.
    serving_config.read_models_config(models_config_path)
  version = next_version(export_dir)
  final_dir = os.path.join(export_dir, str(version))
  staging_dir = os.path.join(export_dir, f".staging-{version}-{os.getpid()}")
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
    if os.path.exists(final_dir):
      raise ExportError(f"{final_dir} appeared during the export; run it "
                        "again to write the next version.")
    os.rename(staging_dir, final_dir)
  except (OSError, tf.errors.OpError) as e:
    raise ExportError(f"Export to {export_dir} failed: {e}; nothing was "
                      "published.") from e
  finally:
    shutil.rmtree(staging_dir, ignore_errors=True)
  if models_config_path:
    serving_config.update_models_config(
        models_config_path, model_name,
        serving_base_path or f"/models/{model_name}")
  return ExportResult(version, final_dir,
                      os.path.join(final_dir, TFLITE_FILE),
                      models_config_path)


def export_run(model, config):
  """Exports a run's model where its config says, named after the run.

  The model goes to `export_dir` (default `saved_models/<run name>`) and is
  served under that folder's name; `models.config` beside the folder lists
  it for TF Serving.

  Args:
    model: the trained model.
    config: the run's `RunConfig`.

  Returns:
    An `ExportResult`.
  """
  export_dir = config.export.resolved_export_dir(config.run_name)
  name = os.path.basename(os.path.normpath(export_dir))
  return export(
      model, export_dir, name, config.export.tflite_quantization,
      models_config_path=os.path.join(
          os.path.dirname(os.path.normpath(export_dir)) or os.curdir,
          serving_config.CONFIG_FILE))
