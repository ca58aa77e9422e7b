"""Bad input to the exporter: missing runs, unwritable folders, failures.

Every failure must raise `ExportError` (the CLI: exit 1 and one line), leave
no new version folder and no staging folder behind, and leave earlier
versions untouched; signatures reject inputs of the wrong shape or dtype.
"""

import os
import shutil
import stat

from ai_edge_litert.interpreter import Interpreter
import numpy as np
import pytest
import tensorflow as tf

from tests.export import export_utils
from tfvae.errors import ExportError
from tfvae.export import exporter
from tfvae.export import serving_config
from tfvae.export import signatures
from tfvae.export import tflite
from tfvae.export import warmup
from tfvae.training import run_state

BAD_SHAPE_OR_DTYPE = (TypeError, ValueError, tf.errors.InvalidArgumentError)


def _run_export_cli(cwd, *args):
  return export_utils.run_python(["-m", "tfvae.export", *args], cwd=cwd)


def _assert_one_line_error(result, *words):
  assert result.returncode == 1, export_utils.describe(result)
  line = export_utils.last_line(result.stderr)
  assert line.startswith("tfvae.export: error: "), export_utils.describe(
      result)
  assert "Traceback" not in result.stderr, export_utils.describe(result)
  for word in words:
    assert word in line, (word, line)


# ---- The command line -------------------------------------------------------


def test_cli_empty_model_dir(tmp_path):
  model_dir = tmp_path / "empty_run"
  model_dir.mkdir()
  result = _run_export_cli(tmp_path, f"--model_dir={model_dir}")
  # An empty folder lacks both; the message names the first missing piece
  # (config.json) and says to train first.
  _assert_one_line_error(result, str(model_dir), "train first")
  line = export_utils.last_line(result.stderr)
  assert "checkpoint" in line or "config.json" in line, line
  assert not os.path.exists(tmp_path / "saved_models")


def test_cli_missing_model_dir_flag(tmp_path):
  result = _run_export_cli(tmp_path)
  assert result.returncode == 1, export_utils.describe(result)
  assert "--model_dir" in result.stderr, export_utils.describe(result)
  assert "Traceback" not in result.stderr
  assert not os.path.exists(tmp_path / "saved_models")


def test_cli_unknown_quantization(tmp_path):
  result = _run_export_cli(tmp_path, f"--model_dir={tmp_path}",
                           "--tflite_quantization=int4")
  assert result.returncode == 1, export_utils.describe(result)
  assert "tflite_quantization" in result.stderr
  assert "Traceback" not in result.stderr


def test_load_trained_model_without_checkpoint(tmp_path, bernoulli):
  """config.json present, checkpoints gone: the error names the checkpoint."""
  model_dir = tmp_path / "run"
  model_dir.mkdir()
  shutil.copy(os.path.join(bernoulli.model_dir, run_state.CONFIG_FILE),
              model_dir)
  with pytest.raises(ExportError, match="no checkpoint"):
    run_state.load_trained_model(str(model_dir))


def test_load_trained_model_of_empty_folder(tmp_path):
  with pytest.raises(ExportError, match="train first"):
    run_state.load_trained_model(str(tmp_path))


# ---- Unwritable destinations ------------------------------------------------


def test_export_dir_under_a_file(tmp_path, bernoulli):
  a_file = tmp_path / "afile"
  a_file.write_text("not a folder")
  with pytest.raises(ExportError, match="Cannot create --export_dir"):
    exporter.export(bernoulli.model, str(a_file / "sub"), "m")
  assert a_file.read_text() == "not a folder"
  assert sorted(os.listdir(tmp_path)) == ["afile"]


def test_export_dir_read_only(tmp_path, bernoulli):
  locked = tmp_path / "locked"
  locked.mkdir()
  locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
  try:
    if os.access(locked, os.W_OK):
      pytest.skip("Running as root: chmod does not stop writes "
                  "(test_export_dir_under_a_file covers this).")
    with pytest.raises(ExportError, match="not writable|Cannot create"):
      exporter.export(bernoulli.model, str(locked / "m"), "m")
    with pytest.raises(ExportError, match="not writable"):
      exporter.export(bernoulli.model, str(locked), "m")
    assert os.listdir(locked) == []
  finally:
    locked.chmod(stat.S_IRWXU)


def test_export_run_to_unwritable_dir_writes_no_models_config(tmp_path,
                                                              bernoulli):
  a_file = tmp_path / "afile"
  a_file.write_text("")
  config = export_utils.with_export_dir(bernoulli.config, a_file / "m")
  with pytest.raises(ExportError):
    exporter.export_run(bernoulli.model, config)
  assert sorted(os.listdir(tmp_path)) == ["afile"]


# ---- Failures in the middle of an export ------------------------------------


@pytest.fixture(scope="module")
def published(tmp_path_factory, bernoulli):
  """An export folder holding version 1 and a models.config."""
  root = tmp_path_factory.mktemp("published")
  exporter.export(bernoulli.model, str(root / "m"), "m",
                  models_config_path=str(root / serving_config.CONFIG_FILE))
  return root


@pytest.fixture
def export_dir(published, tmp_path):
  """A private copy of `published`; returns its export folder."""
  root = tmp_path / "copy"
  shutil.copytree(published, root)
  return root / "m"


def _fail_conversion(*args, **kwargs):
  del args, kwargs
  raise ExportError("TFLite conversion failed: injected")


def _fail_warmup(*args, **kwargs):
  del args, kwargs
  raise OSError(28, "No space left on device")


_build_archive = signatures.build_archive


class _ArchiveFailingAfterWrite:
  """Writes the whole SavedModel into the staging folder, then fails."""

  def __init__(self, model):
    self._archive = _build_archive(model)

  def write_out(self, path, **kwargs):
    self._archive.write_out(path, **kwargs)
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    raise tf.errors.ResourceExhaustedError(None, None, "injected: disk full")


@pytest.mark.parametrize("target, replacement, message", [
    (tflite, ("convert", _fail_conversion), "injected"),
    (warmup, ("write_warmup_requests", _fail_warmup), "No space left"),
    (signatures, ("build_archive", _ArchiveFailingAfterWrite), "disk full"),
], ids=["tflite_convert", "warmup_requests", "saved_model_write"])
def test_failure_mid_export_publishes_nothing(export_dir, bernoulli,
                                              monkeypatch, target,
                                              replacement, message):
  before = export_utils.tree_digest(export_dir.parent)
  monkeypatch.setattr(target, *replacement)
  with pytest.raises(ExportError, match=message) as raised:
    exporter.export(bernoulli.model, str(export_dir), "m",
                    models_config_path=str(export_dir.parent /
                                           serving_config.CONFIG_FILE))
  assert "\n" not in str(raised.value)
  assert export_utils.version_names(export_dir) == ["1"]
  assert export_utils.staging_names(export_dir) == []
  # Version 1 and models.config are byte for byte as before.
  assert export_utils.tree_digest(export_dir.parent) == before
  # The next export takes version 2: no number was used up.
  monkeypatch.undo()
  assert exporter.export(bernoulli.model, str(export_dir), "m").version == 2


def test_failed_tflite_check_publishes_nothing(export_dir, bernoulli,
                                               monkeypatch, tmp_path):
  """A conversion that 'succeeds' with wrong numbers is caught and dropped."""
  nan_model = _clone_with_nan_weights(bernoulli)
  nan_dir = str(tmp_path / "nan_saved_model")
  signatures.build_archive(nan_model).write_out(nan_dir, verbose=False)
  nan_bytes = tflite.convert(nan_dir, signatures.TFLITE_SIGNATURES)
  monkeypatch.setattr(tflite, "convert", lambda *args, **kwargs: nan_bytes)
  before = export_utils.tree_digest(export_dir)
  with pytest.raises(ExportError, match="TFLite decode differs"):
    exporter.export(bernoulli.model, str(export_dir), "m")
  assert export_utils.version_names(export_dir) == ["1"]
  assert export_utils.staging_names(export_dir) == []
  assert export_utils.tree_digest(export_dir) == before


def _clone_with_nan_weights(trained):
  from tfvae import models  # pylint: disable=g-import-not-at-top
  clone = models.build(trained.config.model, trained.data_shape)
  clone.build_from_shape()
  for variable in clone.weights:
    variable.assign(np.full(variable.shape, np.nan, np.float32))
  return clone


def test_check_tflite_accepts_the_real_conversion(bernoulli):
  with open(bernoulli.export.tflite_path, "rb") as f:
    exporter.check_tflite(bernoulli.model, f.read(), "none")


def test_check_tflite_rejects_other_weights(bernoulli, gaussian):
  """The Gaussian model's file is not the Bernoulli model's (same shapes)."""
  with open(gaussian.export.tflite_path, "rb") as f:
    with pytest.raises(ExportError, match="differs from the model"):
      exporter.check_tflite(bernoulli.model, f.read(), "none")


def test_unknown_quantization_raises(bernoulli, tmp_path):
  with pytest.raises(ExportError, match="int4"):
    tflite.convert(bernoulli.version_dir, signatures.TFLITE_SIGNATURES,
                   "int4")
  with pytest.raises(ExportError, match="int4"):
    exporter.export(bernoulli.model, str(tmp_path / "m"), "m",
                    quantization="int4")
  assert export_utils.version_names(tmp_path / "m") == []
  assert export_utils.staging_names(tmp_path / "m") == []


def _corrupt_config(path):
  path.write_text("this is { not a proto")


def _directory_config(path):
  path.mkdir()


@pytest.mark.parametrize("spoil", [_corrupt_config, _directory_config])
def test_bad_models_config_raises_export_error(export_dir, bernoulli, spoil):
  config_path = export_dir.parent / serving_config.CONFIG_FILE
  config_path.unlink()
  spoil(config_path)
  versions_before = sorted(os.listdir(export_dir))
  with pytest.raises(ExportError, match="models.config"):
    exporter.export(bernoulli.model, str(export_dir), "m",
                    models_config_path=str(config_path))
  # Nothing is published when the server config cannot be updated.
  assert sorted(os.listdir(export_dir)) == versions_before


# ---- Inputs of the wrong shape or dtype --------------------------------------


@pytest.fixture(scope="module")
def loaded(bernoulli):
  return tf.saved_model.load(bernoulli.version_dir)


@pytest.mark.parametrize("signature, inputs", [
    ("encode", {"x": tf.zeros([2, 5, 5, 1])}),
    ("reconstruct", {"x": tf.zeros([2, 16, 16, 3])}),
    ("encode", {"x": tf.zeros([16, 16, 1])}),
    ("decode", {"z": tf.zeros([2, 4], tf.int32)}),
    ("decode", {"z": tf.zeros([2, 5])}),
    ("decode", {"z": tf.zeros([2, 4], tf.float64)}),
    ("sample", {"num_samples": tf.constant(2.0), "seed": tf.constant(1)}),
    ("sample", {"num_samples": tf.constant([2]), "seed": tf.constant(1)}),
    ("log_likelihood", {"x": tf.zeros([2, 16, 16, 1], tf.uint8),
                        "num_samples": tf.constant(3)}),
])
def test_loaded_signature_rejects_bad_input(loaded, signature, inputs):
  with pytest.raises(BAD_SHAPE_OR_DTYPE):
    loaded.signatures[signature](**inputs)


@pytest.mark.parametrize("signature, inputs", [
    ("encode", {"x": tf.zeros([2, 5, 5, 1])}),
    ("decode", {"z": tf.zeros([2, 4], tf.int32)}),
    ("decode", {"z": tf.zeros([2, 5])}),
    ("sample", {"num_samples": tf.constant(2.0), "seed": tf.constant(1)}),
])
def test_in_memory_signature_rejects_bad_input(bernoulli, signature, inputs):
  function = signatures.signature_functions(bernoulli.model)[signature]
  with pytest.raises(BAD_SHAPE_OR_DTYPE):
    function(**inputs)


def test_graph_loader_rejects_bad_shape(bernoulli):
  with tf.compat.v1.Session(graph=tf.Graph()) as session:
    meta_graph = tf.compat.v1.saved_model.loader.load(
        session, ["serve"], bernoulli.version_dir)
    encode = meta_graph.signature_def["encode"]
    with pytest.raises(ValueError, match="Cannot feed value of shape"):
      session.run(encode.outputs["mean"].name,
                  {encode.inputs["x"].name: np.zeros((2, 5, 5, 1),
                                                     np.float32)})


def test_tflite_rejects_bad_input(bernoulli):
  interpreter = Interpreter(model_path=bernoulli.export.tflite_path)
  encode = interpreter.get_signature_runner("encode")
  with pytest.raises((RuntimeError, ValueError)):
    encode(x=np.zeros((1, 5, 5, 1), np.float32))
  with pytest.raises(ValueError):
    encode(x=np.zeros((1, 16, 16, 1), np.int32))
  with pytest.raises(ValueError):
    interpreter.get_signature_runner("decode")(
        z=np.zeros((1, 4), np.float32), extra=np.zeros(1))


@pytest.mark.parametrize("signature, inputs", [
    ("sample", {"num_samples": tf.constant(-1), "seed": tf.constant(1)}),
    ("log_likelihood", {"x": tf.fill([2, 16, 16, 1], 0.5),
                        "num_samples": tf.constant(-1)}),
])
def test_negative_num_samples_rejected(loaded, signature, inputs):
  with pytest.raises(tf.errors.InvalidArgumentError):
    loaded.signatures[signature](**inputs)


def test_zero_samples_gives_empty_images(loaded, bernoulli):
  images = loaded.signatures["sample"](num_samples=tf.constant(0),
                                       seed=tf.constant(1))["images"]
  assert images.shape == (0, 16, 16, 1)
  runner = Interpreter(model_path=bernoulli.export.tflite_path
                       ).get_signature_runner("sample")
  assert runner(num_samples=np.int32(0), seed=np.int32(1))["images"].shape == (
      0, 16, 16, 1)


def test_log_likelihood_zero_samples_rejected(loaded):
  x = tf.fill([2, 16, 16, 1], 0.5)
  try:
    log_prob = loaded.signatures["log_likelihood"](
        x=x, num_samples=tf.constant(0))["log_prob"].numpy()
  except BAD_SHAPE_OR_DTYPE:
    return
  pytest.fail(f"num_samples=0 returned {log_prob} instead of an error")
