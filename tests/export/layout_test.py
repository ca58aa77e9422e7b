"""Tests of the export folder: versions, models.config, warm-up requests.

Checks what TF Serving relies on: integer version folders written atomically
and never overwritten, a `models.config` listing every exported model, warm-up
requests it can replay, and a SavedModel that `saved_model_cli` reads.
"""

import os

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from tests.export import export_utils
from tfvae.export import exporter
from tfvae.export import serving_config
from tfvae.export import warmup

SIGNATURES = ("reconstruct", "encode", "decode", "sample", "log_likelihood")


class TwoExports:
  """Two exports of one model and one of another, beside each other."""

  def __init__(self, root, first, second):
    self.root = root
    self.export_dir = os.path.join(root, "shapes_bernoulli")
    config = export_utils.with_export_dir(first.config, self.export_dir)
    self.results = [exporter.export_run(first.model, config)]
    self.first_digest = export_utils.tree_digest(self.results[0].version_dir)
    self.config_after_first = _read_models_config(
        self.results[0].models_config)
    self.results.append(exporter.export_run(first.model, config))
    self.other_dir = os.path.join(root, "shapes_gaussian")
    self.other = exporter.export_run(
        second.model, export_utils.with_export_dir(second.config,
                                                   self.other_dir))
    self.models_config = os.path.join(root, serving_config.CONFIG_FILE)


@pytest.fixture(scope="module")
def exports(tmp_path_factory, bernoulli, gaussian):
  return TwoExports(str(tmp_path_factory.mktemp("layout")), bernoulli,
                    gaussian)


def _read_models_config(path):
  config = model_server_config_pb2.ModelServerConfig()
  with open(path) as f:
    text_format.Parse(f.read(), config)
  return config


def _read_warmup(version_dir):
  path = os.path.join(version_dir, warmup.WARMUP_FILE)
  return [prediction_log_pb2.PredictionLog.FromString(record.numpy())
          for record in tf.data.TFRecordDataset(path)]


def test_versions_are_numbered_from_one(exports):
  assert export_utils.version_names(exports.export_dir) == ["1", "2"]
  assert [r.version for r in exports.results] == [1, 2]
  assert exports.results[1].version_dir == os.path.join(exports.export_dir,
                                                        "2")


def test_second_export_leaves_first_byte_identical(exports):
  assert export_utils.tree_digest(exports.results[0].version_dir) == (
      exports.first_digest)


def test_no_staging_folder_left(exports):
  for folder in (exports.export_dir, exports.other_dir):
    assert export_utils.staging_names(folder) == []
    assert sorted(os.listdir(folder)) == export_utils.version_names(folder)


@pytest.mark.parametrize("relative_path", [
    "saved_model.pb", "variables/variables.index", warmup.WARMUP_FILE,
    exporter.TFLITE_FILE])
def test_version_holds_every_file(exports, relative_path):
  for result in exports.results:
    path = os.path.join(result.version_dir, relative_path)
    assert os.path.isfile(path) and os.path.getsize(path) > 0, path
  data_files = [n for n in os.listdir(os.path.join(
      exports.results[0].version_dir, "variables")) if n.startswith(
          "variables.data-")]
  assert data_files


def test_result_paths(exports):
  result = exports.results[1]
  assert result.tflite_path == os.path.join(result.version_dir,
                                            exporter.TFLITE_FILE)
  assert result.models_config == exports.models_config


def test_models_config_lists_first_model(exports):
  config = exports.config_after_first
  entries = config.model_config_list.config
  assert [e.name for e in entries] == ["shapes_bernoulli"]
  assert entries[0].base_path == "/models/shapes_bernoulli"
  assert entries[0].model_platform == "tensorflow"


def test_models_config_keeps_first_model_when_second_added(exports):
  entries = _read_models_config(exports.models_config).model_config_list.config
  assert {e.name: e.base_path for e in entries} == {
      "shapes_bernoulli": "/models/shapes_bernoulli",
      "shapes_gaussian": "/models/shapes_gaussian"}
  assert all(e.model_platform == "tensorflow" for e in entries)


def test_models_config_is_only_file_beside_exports(exports):
  assert sorted(os.listdir(exports.root)) == [
      serving_config.CONFIG_FILE, "shapes_bernoulli", "shapes_gaussian"]


def test_update_models_config_replaces_entry_of_same_name(tmp_path):
  path = str(tmp_path / serving_config.CONFIG_FILE)
  serving_config.update_models_config(path, "a", "/models/a")
  serving_config.update_models_config(path, "b", "/models/b")
  written = serving_config.update_models_config(path, "a", "/elsewhere/a")
  read = _read_models_config(path)
  assert read == written
  assert [(e.name, e.base_path) for e in read.model_config_list.config] == [
      ("a", "/elsewhere/a"), ("b", "/models/b")]
  assert sorted(os.listdir(tmp_path)) == [serving_config.CONFIG_FILE]


def test_warmup_has_one_request_per_signature(exports):
  logs = _read_warmup(exports.results[0].version_dir)
  names = [log.predict_log.request.model_spec.signature_name for log in logs]
  assert sorted(names) == sorted(SIGNATURES)
  for log in logs:
    assert log.predict_log.request.model_spec.name == "shapes_bernoulli"


def test_warmup_inputs_match_signature_inputs(exports):
  version_dir = exports.results[0].version_dir
  logs = _read_warmup(version_dir)
  with tf.compat.v1.Session(graph=tf.Graph()) as session:
    meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"],
                                                      version_dir)
    for log in logs:
      request = log.predict_log.request
      signature = meta_graph.signature_def[request.model_spec.signature_name]
      assert set(request.inputs) == set(signature.inputs)
      for name, proto in request.inputs.items():
        info = signature.inputs[name]
        assert proto.dtype == info.dtype, name
        want = [d.size for d in info.tensor_shape.dim]
        got = [d.size for d in proto.tensor_shape.dim]
        assert len(got) == len(want), name
        assert all(w in (-1, g) for w, g in zip(want, got)), (name, got, want)


def test_warmup_requests_replay_on_graph_loader(exports):
  """Runs each warm-up request as TF Serving does when loading a version."""
  version_dir = exports.results[0].version_dir
  logs = _read_warmup(version_dir)
  with tf.compat.v1.Session(graph=tf.Graph()) as session:
    meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"],
                                                      version_dir)
    for log in logs:
      request = log.predict_log.request
      signature = meta_graph.signature_def[request.model_spec.signature_name]
      feeds = {signature.inputs[name].name: tf.make_ndarray(proto)
               for name, proto in request.inputs.items()}
      fetches = {name: info.name for name, info in signature.outputs.items()}
      outputs = session.run(fetches, feeds)
      assert outputs
      for name, value in outputs.items():
        assert np.all(np.isfinite(value)), (request.model_spec.signature_name,
                                            name)


def test_saved_model_cli_show_lists_signatures(exports, tmp_path):
  version_dir = exports.results[0].version_dir
  result = export_utils.run_tool(
      ["saved_model_cli", "show", "--dir", version_dir, "--all"], tmp_path)
  assert result.returncode == 0, export_utils.describe(result)
  for name in SIGNATURES + ("serving_default",):
    assert f"signature_def['{name}']" in result.stdout, name
  for tensor in ("inputs['x']", "inputs['z']", "inputs['num_samples']",
                 "inputs['seed']", "outputs['images']", "outputs['logits']",
                 "outputs['log_prob']", "outputs['stddev']"):
    assert tensor in result.stdout, tensor


def test_saved_model_cli_runs_sample(exports, tmp_path):
  version_dir = exports.results[0].version_dir
  result = export_utils.run_tool(
      ["saved_model_cli", "run", "--dir", version_dir, "--tag_set", "serve",
       "--signature_def", "sample", "--input_exprs", "num_samples=2;seed=3"],
      tmp_path)
  assert result.returncode == 0, export_utils.describe(result)
  assert "images" in result.stdout, export_utils.describe(result)


def test_next_version_ignores_other_entries(tmp_path):
  for name in ("1", "3", ".staging-9-123", "notes", "10.bak"):
    os.mkdir(tmp_path / name)
  (tmp_path / "7").write_text("a file, not a version")
  assert exporter.next_version(str(tmp_path)) == 4


def test_next_version_of_empty_folder_is_one(tmp_path):
  assert exporter.next_version(str(tmp_path)) == 1
