"""`tfvae.load`: export base folder, version folder, run folder (export or
checkpoint) give the same answers; SavedModels load without TFP; bad paths
and shapes are one-line errors."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfvae
from tests.conftest import REPO_ROOT
from tests.models import zoo_harness
from tfvae import loading
from tfvae.errors import DataError
from tfvae.errors import ExportError
from tfvae.export import signatures

QUICKSTART = os.path.join(REPO_ROOT, "configs", "quickstart.flags")
SIZE = zoo_harness.SIZE


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """A tiny VAE on 16x16 shapes, exported, plus a copy with no export."""
  root = tmp_path_factory.mktemp("loading")
  images, labels = zoo_harness.make_shapes(300)
  config = tfvae.config_from_flagfile(
      QUICKSTART, train_steps=20, epochs=0, hidden_dims=(16,), latent_dim=2,
      batch_size=32, steps_per_loop=10, eval_iw_samples=5, progress=False,
      images=False, model_dir=str(root / "run"),
      export_dir=str(root / "export"))
  result = tfvae.train_and_evaluate(
      config, data=tfvae.data.from_arrays(images, labels))
  # The same run as if it had never been exported.
  shutil.copytree(root / "run", root / "run_no_export")
  config_path = root / "run_no_export" / "config.json"
  saved = json.loads(config_path.read_text())
  saved["export"]["export_dir"] = str(root / "never_exported")
  config_path.write_text(json.dumps(saved))
  return result, root, images


def _inputs(model):
  return {name: {k: v.numpy() for k, v in inputs.items()}
          for name, inputs in signatures.example_inputs(model).items()}


def _outputs(loaded, inputs):
  """Every method of `loaded` on the example inputs, as numpy dicts."""
  return {
      "reconstruct": loaded.reconstruct(inputs["reconstruct"]["x"]),
      "encode": loaded.encode(inputs["encode"]["x"]),
      "decode": loaded.decode(inputs["decode"]["z"]),
      "sample": loaded.sample(int(inputs["sample"]["num_samples"]),
                              seed=int(inputs["sample"]["seed"])),
      "log_likelihood": loaded.log_likelihood(
          inputs["log_likelihood"]["x"],
          int(inputs["log_likelihood"]["num_samples"])),
  }


def _assert_equal(got, want):
  for name, value in want.items():
    if isinstance(value, dict):
      assert set(got[name]) == set(value), name
      for key in value:
        np.testing.assert_allclose(got[name][key], value[key], atol=1e-5,
                                   rtol=0, err_msg=f"{name}/{key}")
    else:
      np.testing.assert_allclose(got[name], value, atol=1e-5, rtol=0,
                                 err_msg=name)


def test_resolves_every_kind_of_path(run):
  result, root, _ = run
  version_dir = result.export.version_dir
  assert loading.resolve(str(root / "export")) == ("saved_model",
                                                   version_dir)
  assert loading.resolve(version_dir) == ("saved_model", version_dir)
  assert loading.resolve(str(root / "run")) == ("saved_model", version_dir)
  no_export = str(root / "run_no_export")
  assert loading.resolve(no_export) == ("checkpoint", no_export)
  assert loading.resolve(os.path.join(no_export, "checkpoints")) == (
      "checkpoint", no_export)


def test_every_path_gives_the_in_memory_outputs(run):
  result, root, _ = run
  model = result.model
  inputs = _inputs(model)
  functions = signatures.signature_functions(model)
  want = {name: {k: v.numpy() for k, v in functions[name](**{
      k: tf.constant(v) for k, v in inputs[name].items()}).items()}
          for name in functions}
  want["reconstruct"] = want["reconstruct"]["images"]
  want["sample"] = want["sample"]["images"]
  want["log_likelihood"] = want["log_likelihood"]["log_prob"]
  sources = {}
  for path in (root / "export", result.export.version_dir, root / "run",
               root / "run_no_export"):
    loaded = tfvae.load(path)
    sources[str(path)] = loaded.source
    assert loaded.data_shape == (SIZE, SIZE, 1)
    assert loaded.conditional is False
    assert loaded.has_likelihood_bound
    assert set(loaded.signatures) == {"reconstruct", "encode", "decode",
                                      "sample", "log_likelihood"}
    assert loaded.metadata["model"] == "vae"
    assert loaded.metadata["data_shape"] == [SIZE, SIZE, 1]
    _assert_equal(_outputs(loaded, inputs), want)
  assert sorted(sources.values()) == ["checkpoint"] + ["saved_model"] * 3
  assert tfvae.load(root / "run_no_export").metadata == tfvae.load(
      result.export.version_dir).metadata


def test_inputs_as_users_hold_them(run):
  result, _, images = run
  loaded = tfvae.load(result.export.version_dir)
  as_float = images[:3].astype(np.float32) / 255.0
  want = loaded.reconstruct(as_float)
  assert want.shape == (3, SIZE, SIZE, 1) and want.dtype == np.float32
  # uint8 images are scaled as the pipeline does; grey images may omit C.
  np.testing.assert_allclose(loaded.reconstruct(images[:3]), want, atol=1e-6)
  np.testing.assert_allclose(loaded.reconstruct(as_float[..., 0]), want,
                             atol=1e-6)
  codes = loaded.encode(as_float)
  assert codes["mean"].shape == (3, 2) and codes["stddev"].shape == (3, 2)
  decoded = loaded.decode(codes["mean"])
  assert decoded["mean"].shape == (3, SIZE, SIZE, 1)
  assert loaded.log_likelihood(as_float, num_samples=8).shape == (3,)
  draws = loaded.sample(5, seed=1)
  assert draws.shape == (5, SIZE, SIZE, 1)
  np.testing.assert_array_equal(draws, loaded.sample(5, seed=1))
  assert not np.array_equal(draws, loaded.sample(5, seed=2))


def test_large_inputs_are_chunked(run, monkeypatch):
  result, _, images = run
  loaded = tfvae.load(result.export.version_dir)
  x = np.tile(images[:5], (3, 1, 1, 1))
  want = loaded.encode(x)
  monkeypatch.setattr(loading, "BATCH_SIZE", 4)
  _assert_equal({"encode": loaded.encode(x)}, {"encode": want})


def test_newest_version_of_a_base_folder(run, tmp_path):
  result, _, _ = run
  base = tmp_path / "base"
  shutil.copytree(result.export.version_dir, base / "2")
  shutil.copytree(result.export.version_dir, base / "10")
  (base / "11").mkdir()  # No saved_model.pb: not a version.
  (base / ".staging-12-1").mkdir()
  assert loading.resolve(str(base)) == ("saved_model", str(base / "10"))


def test_run_folder_default_export_dir_is_relative_to_cwd(run, tmp_path,
                                                          monkeypatch):
  result, root, _ = run
  monkeypatch.chdir(tmp_path)
  os.makedirs("runs/foo")
  saved = json.loads((root / "run" / "config.json").read_text())
  saved["export"]["export_dir"] = None
  saved["train"]["model_dir"] = "runs/foo"
  with open("runs/foo/config.json", "w") as f:
    json.dump(saved, f)
  shutil.copytree(result.export.version_dir, "saved_models/foo/1")
  assert loading.resolve("runs/foo") == ("saved_model",
                                         os.path.join("saved_models", "foo",
                                                      "1"))


def test_metadata_file_gives_data_shape(run, tmp_path):
  result, _, _ = run
  version = tmp_path / "1"
  shutil.copytree(result.export.version_dir, version)
  metadata_path = version / "assets.extra" / "tfvae.json"
  metadata_path.parent.mkdir(exist_ok=True)
  metadata_path.write_text(json.dumps({"model": "custom", "columns": None,
                                       "data_shape": [SIZE, SIZE, 1]}))
  loaded = tfvae.load(version)
  assert loaded.metadata == {"model": "custom", "columns": None,
                             "data_shape": [SIZE, SIZE, 1]}
  assert "custom" in repr(loaded)
  # Without the file: the shape comes from the encode signature.
  metadata_path.unlink()
  loaded = tfvae.load(version)
  assert loaded.metadata == {}
  assert loaded.data_shape == (SIZE, SIZE, 1)


def test_saved_model_needs_neither_tfp_nor_model_code(run):
  result, _, _ = run
  script = f"""
import json, sys
import numpy as np
import tfvae
model = tfvae.load({result.export.version_dir!r})
x = np.full((2, {SIZE}, {SIZE}, 1), 0.5, np.float32)
codes = model.encode(x)
model.decode(codes["mean"])
model.reconstruct(x)
model.sample(3, seed=0)
model.log_likelihood(x, num_samples=4)
print(json.dumps([m for m in ("tensorflow_probability", "tfvae.models",
                              "tfvae.training", "tfvae.export.signatures")
                  if m in sys.modules]))
"""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  done = subprocess.run([sys.executable, "-c", script], capture_output=True,
                        text=True, cwd=REPO_ROOT, env=env, timeout=300,
                        check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  assert json.loads(done.stdout.strip().splitlines()[-1]) == []


# ---- Bad paths and inputs -----------------------------------------------------


def _one_line_error(kind, function, *args, **kwargs):
  with pytest.raises(kind) as error:
    function(*args, **kwargs)
  message = str(error.value)
  assert "\n" not in message, message
  return message


def test_missing_path(tmp_path):
  path = str(tmp_path / "nothing_here")
  message = _one_line_error(ExportError, tfvae.load, path)
  assert path in message and "does not exist" in message


def test_a_file(tmp_path):
  path = tmp_path / "model.tflite"
  path.write_bytes(b"x")
  assert str(path) in _one_line_error(ExportError, tfvae.load, path)


def test_folder_without_export_or_checkpoint(tmp_path):
  message = _one_line_error(ExportError, tfvae.load, tmp_path)
  assert str(tmp_path) in message and "--model_dir" in message


def test_run_folder_without_export_or_checkpoint(run, tmp_path):
  _, root, _ = run
  saved = json.loads((root / "run" / "config.json").read_text())
  saved["export"]["export_dir"] = str(tmp_path / "none")
  (tmp_path / "config.json").write_text(json.dumps(saved))
  message = _one_line_error(ExportError, tfvae.load, tmp_path)
  assert str(tmp_path / "none") in message and "checkpoint" in message
  assert "train" in message


def test_broken_saved_model(tmp_path):
  (tmp_path / "saved_model.pb").write_bytes(b"not a protobuf")
  assert str(tmp_path) in _one_line_error(ExportError, tfvae.load, tmp_path)


@pytest.mark.parametrize("method, value, match", [
    ("encode", np.zeros((2, 28, 28, 1), np.float32),
     r"encode: x has shape \[2, 28, 28, 1\].*takes images \[N, 16, 16, 1\]"),
    ("reconstruct", np.zeros((16, 16, 1), np.float32),
     r"x has shape \[16, 16, 1\].*one image: x\[None\]"),
    ("log_likelihood", np.zeros((2, 256), np.float32), r"\[2, 256\]"),
    ("decode", np.zeros((2, 3), np.float32),
     r"decode: z has shape \[2, 3\].*takes z \[N, 2\]"),
])
def test_wrong_shapes_name_both_shapes(run, method, value, match):
  result, _, _ = run
  loaded = tfvae.load(result.export.version_dir)
  message = _one_line_error(DataError, getattr(loaded, method), value)
  assert result.export.version_dir in message
  assert re.search(match, message), message


def test_labels_for_an_unconditional_model(run):
  result, _, images = run
  loaded = tfvae.load(result.export.version_dir)
  assert "not conditional" in _one_line_error(
      DataError, loaded.encode, images[:2], labels=[0, 1])


def test_model_without_likelihood_bound_refuses_log_likelihood(run):
  result, _, images = run
  loaded = tfvae.load(result.export.version_dir)
  functions = {k: v for k, v in loaded._functions.items()  # pylint: disable=protected-access
               if k != "log_likelihood"}
  bare = loading.LoadedModel(functions, "somewhere/1", "saved_model",
                             {"model": "ae"})
  assert not bare.has_likelihood_bound
  message = _one_line_error(ExportError, bare.log_likelihood, images[:2])
  assert "somewhere/1 (ae)" in message and "log_likelihood" in message


# ---- Labels of conditional models (fake signatures, no training) -------------


def _conditional(num_classes=3):
  """A LoadedModel over fake conditional signatures that echo the labels."""
  x_spec = tf.TensorSpec([None, 4], tf.float32, "x")
  label_spec = tf.TensorSpec([None], tf.int32, "label")

  def encode(x, label):
    return {"mean": x[:, :1] * 0 + tf.cast(label[:, None], tf.float32),
            "stddev": tf.ones_like(x[:, :1])}

  def decode(z, label):
    del label
    return {"mean": tf.tile(z, [1, 4])}

  def sample(num_samples, seed, label):
    del seed
    return {"x": tf.cast(tf.tile(label[:, None], [1, 4]), tf.float32)
                 + 0 * tf.cast(num_samples, tf.float32)}

  functions = {
      "encode": (encode, {"x": x_spec, "label": label_spec}),
      "decode": (decode, {"z": tf.TensorSpec([None, 1], tf.float32, "z"),
                          "label": label_spec}),
      "sample": (sample, {"num_samples": tf.TensorSpec([], tf.int32),
                          "seed": tf.TensorSpec([], tf.int32),
                          "label": label_spec}),
  }
  return loading.LoadedModel(functions, "fake/1", "saved_model",
                             {"num_classes": num_classes, "columns": [
                                 {"name": f"c{i}"} for i in range(4)]})


def test_conditional_labels():
  loaded = _conditional()
  assert loaded.conditional and loaded.data_shape == (4,)
  x = np.zeros((3, 4), np.float32)
  np.testing.assert_array_equal(
      loaded.encode(x, labels=np.array([0, 2, 1]))["mean"][:, 0], [0, 2, 1])
  # One int labels every row.
  np.testing.assert_array_equal(loaded.encode(x, labels=2)["mean"][:, 0],
                                [2, 2, 2])
  np.testing.assert_array_equal(loaded.sample(2, seed=0, labels=1),
                                np.ones((2, 4)))
  assert "pass labels=" in _one_line_error(DataError, loaded.encode, x)
  assert "in [0, 3)" in _one_line_error(DataError, loaded.encode, x,
                                        labels=[0, 1, 3])
  assert "3 integer class ids" in _one_line_error(
      DataError, loaded.encode, x, labels=[0, 1])
  assert "3 integer class ids" in _one_line_error(
      DataError, loaded.encode, x, labels=[0.5, 1, 1])


def test_vector_length_mismatch_names_the_columns():
  loaded = _conditional()
  message = _one_line_error(DataError, loaded.encode,
                            np.zeros((2, 5), np.float32), labels=0)
  assert "x has shape [2, 5]" in message
  assert "vectors of length 4 ([N, 4]; columns c0, c1, c2, c3)" in message
