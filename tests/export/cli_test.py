"""End to end: `train.py` exports, then `python -m tfvae.export` re-exports.

Also checks that the model the export command rebuilds from the run's
checkpoint (`run_state.load_trained_model`) is the trained model.
"""

import os

from ai_edge_litert.interpreter import Interpreter
import numpy as np
import pytest
import tensorflow as tf

from tests.export import export_utils
from tfvae.training import run_state

RUN_NAME = "tiny_run"
EXPORT_NAME = "served_tiny"


class CliRun:
  """`train.py` then two `python -m tfvae.export` calls, run once."""

  def __init__(self, folder, data_path):
    self.folder = folder
    self.model_dir = os.path.join(folder, RUN_NAME)
    self.export_dir = os.path.join(folder, "exports", EXPORT_NAME)
    self.train = export_utils.run_python([
        export_utils.TRAIN_PY, "--dataset=npz", f"--data_dir={data_path}",
        "--hidden_dims=32", f"--latent_dim={export_utils.LATENT_DIM}",
        f"--train_steps={export_utils.TRAIN_STEPS}", "--batch_size=32",
        "--steps_per_loop=25", "--eval_iw_samples=5", "--eval_batch_size=64",
        "--noimages", "--noprogress", f"--model_dir={self.model_dir}",
        f"--export_dir={self.export_dir}"], cwd=folder)
    self.versions_after_train = self._versions()
    self.export_again = self._export()
    self.versions_after_export = self._versions()
    self.export_float16 = self._export("--tflite_quantization=float16")
    self.versions_after_float16 = self._versions()

  def _export(self, *args):
    return export_utils.run_python(
        ["-m", "tfvae.export", f"--model_dir={self.model_dir}",
         f"--export_dir={self.export_dir}", *args], cwd=self.folder)

  def _versions(self):
    if not os.path.isdir(self.export_dir):
      return []
    return export_utils.version_names(self.export_dir)

  def version_dir(self, version):
    return os.path.join(self.export_dir, str(version))


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, grey_npz):
  return CliRun(str(tmp_path_factory.mktemp("cli")), grey_npz)


def test_train_exits_zero(cli_run):
  assert cli_run.train.returncode == 0, export_utils.describe(cli_run.train)


def test_train_prints_export_locations(cli_run):
  lines = cli_run.train.stdout.splitlines()
  saved_model = [l for l in lines if l.startswith("SavedModel v1")]
  assert saved_model, export_utils.describe(cli_run.train)
  assert saved_model[0].split()[-1] == cli_run.version_dir(1)
  tflite_line = [l for l in lines if l.startswith("TFLite")]
  assert tflite_line and tflite_line[0].split()[-1] == os.path.join(
      cli_run.version_dir(1), "model.tflite")
  serving = [l for l in lines if l.startswith("TF Serving config")]
  assert serving and serving[0].split()[-1] == os.path.join(
      cli_run.folder, "exports", "models.config")


def test_train_writes_version_one(cli_run):
  assert cli_run.versions_after_train == ["1"]
  for name in ("saved_model.pb", "model.tflite"):
    assert os.path.isfile(os.path.join(cli_run.version_dir(1), name))
  # Nothing was written to the default saved_models/ of the working folder.
  assert not os.path.exists(os.path.join(cli_run.folder, "saved_models"))


def test_export_command_writes_version_two(cli_run):
  result = cli_run.export_again
  assert result.returncode == 0, export_utils.describe(result)
  assert cli_run.versions_after_export == ["1", "2"]
  assert (f"Exported step {export_utils.TRAIN_STEPS} as version 2: "
          f"{cli_run.version_dir(2)}") in result.stdout, result.stdout
  assert export_utils.staging_names(cli_run.export_dir) == []


def test_float16_export_is_smaller(cli_run):
  result = cli_run.export_float16
  assert result.returncode == 0, export_utils.describe(result)
  assert cli_run.versions_after_float16 == ["1", "2", "3"]
  none_size = os.path.getsize(os.path.join(cli_run.version_dir(2),
                                           "model.tflite"))
  float16_size = os.path.getsize(os.path.join(cli_run.version_dir(3),
                                              "model.tflite"))
  assert float16_size < 0.8 * none_size, (float16_size, none_size)
  z = np.zeros((2, export_utils.LATENT_DIM), np.float32)
  means = Interpreter(model_path=os.path.join(
      cli_run.version_dir(3), "model.tflite")).get_signature_runner(
          "decode")(z=z)["mean"]
  assert np.all(np.isfinite(means))


def _saved_decode(version_dir, z):
  loaded = tf.saved_model.load(version_dir)
  return loaded.signatures["decode"](z=tf.constant(z))["mean"].numpy()


def test_export_command_exports_the_trained_model(cli_run):
  """Version 2 (rebuilt from the checkpoint) equals version 1 (in memory).

  Regression test: list-held hidden layers used to be untracked by
  tf.train.Checkpoint, so the export command exported them untrained.
  """
  assert cli_run.export_again.returncode == 0
  z = np.random.default_rng(0).standard_normal(
      (4, export_utils.LATENT_DIM)).astype(np.float32)
  np.testing.assert_allclose(_saved_decode(cli_run.version_dir(2), z),
                             _saved_decode(cli_run.version_dir(1), z),
                             rtol=0, atol=1e-5)


def test_load_trained_model_restores_every_weight(trained):
  """Every variable, batch-norm statistics and learned scales included."""
  model, config, step = run_state.load_trained_model(trained.model_dir)
  assert step == export_utils.TRAIN_STEPS
  assert config == trained.config
  assert len(model.weights) == len(trained.model.weights)
  differing = [
      want.path for got, want in zip(model.weights, trained.model.weights)
      if not np.array_equal(got.numpy(), want.numpy())]
  assert not differing, differing


def test_export_command_defaults_to_the_runs_export_dir(cli_run, tmp_path):
  before = len(export_utils.version_names(cli_run.export_dir))
  result = export_utils.run_python(
      ["-m", "tfvae.export", f"--model_dir={cli_run.model_dir}"],
      cwd=tmp_path)
  assert result.returncode == 0, export_utils.describe(result)
  assert len(export_utils.version_names(cli_run.export_dir)) == before + 1
  assert not os.path.exists(tmp_path / "saved_models")
