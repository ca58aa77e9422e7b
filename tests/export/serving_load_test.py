"""The key export test: TF Serving's way of loading runs every signature.

A fresh process that imports only TensorFlow and numpy loads each exported
SavedModel with the TF1 graph loader (`tf.compat.v1.Session` +
`saved_model.loader.load`) and runs every SignatureDef by tensor names, as
TF Serving's C++ loader does; its outputs must equal the in-memory model's
on the same fixed inputs.
"""

import json
import os

import numpy as np
import pytest

from tests.export import conftest
from tests.export import export_utils

GRAPH_LOADER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "graph_loader_main.py")
SIGNATURES = ("reconstruct", "serving_default", "encode", "decode", "sample",
              "log_likelihood")
ATOL = 1e-5


class GraphLoaderRun:
  """The child process's report and outputs for every model."""

  def __init__(self, folder, all_trained):
    self.folder = folder
    self.trained = all_trained
    self.inputs = {}
    manifest = {}
    for name, trained in all_trained.items():
      self.inputs[name] = export_utils.fixed_inputs(trained.data_shape)
      inputs_dir = os.path.join(folder, name, "inputs")
      for signature, values in self.inputs[name].items():
        os.makedirs(os.path.join(inputs_dir, signature))
        for key, value in values.items():
          np.save(os.path.join(inputs_dir, signature, f"{key}.npy"), value)
      manifest[name] = {"saved_model": trained.version_dir,
                        "inputs": inputs_dir,
                        "outputs": os.path.join(folder, name, "outputs")}
    manifest_path = os.path.join(folder, "manifest.json")
    with open(manifest_path, "w") as f:
      json.dump(manifest, f)
    self.process = export_utils.run_python(
        [GRAPH_LOADER, manifest_path], cwd=folder, isolated=True)
    assert self.process.returncode == 0, export_utils.describe(self.process)
    with open(os.path.join(folder, "result.json")) as f:
      self.result = json.load(f)

  def outputs(self, model_name, signature):
    folder = os.path.join(self.folder, model_name, "outputs", signature)
    return {name[:-len(".npy")]: np.load(os.path.join(folder, name))
            for name in os.listdir(folder)}


@pytest.fixture(scope="module")
def graph_run(tmp_path_factory, all_trained):
  return GraphLoaderRun(str(tmp_path_factory.mktemp("graph_loader")),
                        all_trained)


def test_child_imported_neither_tfvae_nor_tfp(graph_run):
  modules = graph_run.result["modules"]
  assert "tensorflow" in modules
  assert not [m for m in modules if m == "tfvae" or m.startswith("tfvae.")]
  assert not [m for m in modules if m.startswith("tensorflow_probability")]


@pytest.mark.parametrize("model_name", conftest.MODEL_NAMES)
def test_graph_loader_finds_every_signature(graph_run, model_name):
  report = graph_run.result["models"][model_name]
  assert sorted(report) == sorted(SIGNATURES)
  for entry in report.values():
    assert entry["method_name"] == "tensorflow/serving/predict"


@pytest.mark.parametrize("model_name", conftest.MODEL_NAMES)
def test_signature_inputs(graph_run, model_name):
  report = graph_run.result["models"][model_name]
  height, width, channels = graph_run.trained[model_name].data_shape
  image = {"dtype": "float32", "shape": [-1, height, width, channels]}
  scalar = {"dtype": "int32", "shape": []}

  def spec(entry):
    return {k: {"dtype": v["dtype"], "shape": v["shape"]}
            for k, v in entry["inputs"].items()}

  for name in ("reconstruct", "serving_default", "encode"):
    assert spec(report[name]) == {"x": image}, name
  assert spec(report["decode"]) == {
      "z": {"dtype": "float32", "shape": [-1, export_utils.LATENT_DIM]}}
  assert spec(report["sample"]) == {"num_samples": scalar, "seed": scalar}
  assert spec(report["log_likelihood"]) == {"x": image,
                                            "num_samples": scalar}


@pytest.mark.parametrize("model_name, decode_outputs", [
    ("bernoulli", ["logits", "mean"]),
    ("gaussian", ["loc", "mean", "scale"]),
    ("conv", ["loc", "mean", "scale"])])
def test_signature_outputs(graph_run, model_name, decode_outputs):
  report = graph_run.result["models"][model_name]
  outputs = {name: sorted(entry["outputs"])
             for name, entry in report.items()}
  assert outputs == {
      "reconstruct": ["images"], "serving_default": ["images"],
      "encode": ["mean", "stddev"], "decode": decode_outputs,
      "sample": ["images"], "log_likelihood": ["log_prob"]}
  for entry in report.values():
    assert all(v["dtype"] == "float32" for v in entry["outputs"].values())


@pytest.mark.parametrize("signature", SIGNATURES)
@pytest.mark.parametrize("model_name", conftest.MODEL_NAMES)
def test_graph_loader_equals_in_memory_model(graph_run, model_name,
                                             signature):
  entry = graph_run.result["models"][model_name][signature]
  assert entry["error"] is None, entry["error"]
  got = graph_run.outputs(model_name, signature)
  want = export_utils.in_memory_outputs(
      graph_run.trained[model_name].model, signature,
      graph_run.inputs[model_name][signature])
  assert sorted(got) == sorted(want)
  for key, value in want.items():
    assert got[key].shape == value.shape, key
    assert np.all(np.isfinite(got[key])), key
    np.testing.assert_allclose(got[key], value, rtol=0, atol=ATOL,
                               err_msg=f"{model_name} {signature} {key}")


@pytest.mark.parametrize("model_name", conftest.MODEL_NAMES)
def test_graph_loader_output_shapes(graph_run, model_name):
  shape = graph_run.trained[model_name].data_shape
  assert graph_run.outputs(model_name, "sample")["images"].shape == (
      (5,) + shape)
  assert graph_run.outputs(model_name, "reconstruct")["images"].shape == (
      (3,) + shape)
  encoded = graph_run.outputs(model_name, "encode")
  assert encoded["mean"].shape == (3, export_utils.LATENT_DIM)
  assert np.all(encoded["stddev"] > 0)
  assert graph_run.outputs(model_name, "log_likelihood")["log_prob"].shape == (
      (3,))
  images = graph_run.outputs(model_name, "sample")["images"]
  assert images.min() >= 0 and images.max() <= 1
