"""Tests of custom Keras networks (`tfvae.networks.custom`) end to end.

Contract checks build models alone; the training tests run
`train_and_evaluate(config, data=..., encoder=body, decoder=body)` on small
arrays: resume equals a straight run, and the run exports a SavedModel that
TF Serving's graph loader runs and a `model.tflite` LiteRT runs.
"""

import json
import os
import random

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfvae.data
from tests.export import export_utils
from tests.integration import cli
from tfvae import config as config_lib
from tfvae import models
from tfvae.errors import ConfigError, ExportError
from tfvae.export import exporter
from tfvae.networks import custom
from tfvae.training import experiment
from tfvae.training import run_state

GRAPH_LOADER = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "export", "graph_loader_main.py")
LATENT_DIM = 2
NUM_COLUMNS = 5
_SAVE_COUNTER = "save_counter/.ATTRIBUTES/VARIABLE_VALUE"


def _vector_bodies(seed=11):
  """A fresh custom encoder and decoder body for vectors.

  Keras fixes an initializer's seed when the layer is made, from Python's
  `random`, so the bodies are made after seeding.
  """
  keras.utils.set_random_seed(seed)
  encoder = keras.Sequential([keras.layers.Dense(16, activation="tanh"),
                              keras.layers.Dense(8, activation="relu")])
  decoder = keras.Sequential([keras.layers.Dense(16, activation="tanh")])
  return encoder, decoder


def _vector_data():
  """200 rows of 5 columns: 4 driven by a 2-d latent, 1 of noise."""
  rng = np.random.default_rng(0)
  z = rng.normal(size=(200, 2))
  x = np.concatenate([z @ rng.normal(size=(2, 4)) * 2.0 + 5.0,
                      rng.normal(size=(200, 1))], axis=1)
  return tfvae.data.from_arrays(x.astype(np.float32))


def _config(model_dir, steps, export_dir=None, likelihood="gaussian",
            seed=3):
  return config_lib.RunConfig(
      data=config_lib.DataConfig(download=False),
      model=config_lib.ModelConfig(latent_dim=LATENT_DIM,
                                   likelihood=likelihood,
                                   learn_gaussian_scale=True),
      train=config_lib.TrainConfig(model_dir=str(model_dir),
                                   train_steps=steps, batch_size=32,
                                   steps_per_loop=20, progress=False,
                                   seed=seed),
      eval=config_lib.EvalConfig(eval_iw_samples=10, eval_batch_size=100,
                                 images=False, frechet_samples=0),
      export=config_lib.ExportConfig(
          export_dir=None if export_dir is None else str(export_dir)),
  ).validate()


# ---- The contract, checked when the model is built --------------------------


def test_decoder_feature_map_of_wrong_size_is_rejected():
  body = keras.Sequential([keras.layers.Dense(7 * 7 * 8),
                           keras.layers.Reshape((7, 7, 8))])
  with pytest.raises(ConfigError) as info:
    models.build(config_lib.ModelConfig(latent_dim=LATENT_DIM), (28, 28, 1),
                 decoder_body=body)
  message = str(info.value)
  assert "\n" not in message
  assert f"z [batch, {LATENT_DIM}]" in message
  assert "[batch, 7, 7, 8]" in message
  assert "[batch, 28, 28, F]" in message


def test_decoder_body_of_rank_two_features_on_vectors_only():
  body = keras.Sequential([keras.layers.Dense(12),
                           keras.layers.Reshape((3, 4))])
  with pytest.raises(ConfigError, match=r"\[batch, 3, 4\]"):
    models.build(config_lib.ModelConfig(latent_dim=LATENT_DIM,
                                        likelihood="gaussian"), (6,),
                 decoder_body=body)


def test_encoder_body_that_fails_on_the_input_shape():
  body = keras.Sequential([keras.Input((7,)), keras.layers.Dense(4)])
  with pytest.raises(ConfigError) as info:
    models.build(config_lib.ModelConfig(latent_dim=LATENT_DIM,
                                        likelihood="gaussian"), (3,),
                 encoder_body=body)
  message = str(info.value)
  assert "\n" not in message
  assert message.startswith("The encoder body fails on inputs [batch, 3]")


def test_decoder_body_that_fails_on_z():
  body = keras.Sequential([keras.layers.Reshape((3, 3))])
  with pytest.raises(ConfigError, match=r"The decoder body fails on inputs "
                     rf"\[batch, {LATENT_DIM}\]"):
    models.build(config_lib.ModelConfig(latent_dim=LATENT_DIM), (4, 4, 1),
                 decoder_body=body)


def test_body_that_is_not_a_keras_model():
  with pytest.raises(ConfigError, match="not a keras.Model"):
    models.build(config_lib.ModelConfig(latent_dim=LATENT_DIM), (4, 4, 1),
                 encoder_body=lambda x: x)


def test_encoder_body_without_features():
  body = keras.Sequential([keras.layers.Lambda(
      lambda x: keras.ops.sum(x, axis=-1))])
  with pytest.raises(ConfigError, match="must return features"):
    models.build(config_lib.ModelConfig(latent_dim=LATENT_DIM,
                                        likelihood="gaussian"), (3,),
                 encoder_body=body)


def test_custom_networks_refused_by_vq_vae():
  body = keras.Sequential([keras.layers.Flatten()])
  with pytest.raises(ConfigError, match="--model=vq_vae"):
    models.build(config_lib.ModelConfig(model="vq_vae"), (8, 8, 1),
                 encoder_body=body)


def test_image_bodies_any_feature_shape_and_a_feature_map():
  encoder = keras.Sequential([keras.layers.Conv2D(4, 3, strides=2,
                                                  padding="same")])
  decoder = keras.Sequential([keras.layers.Dense(8 * 8 * 3),
                              keras.layers.Reshape((8, 8, 3))])
  model = models.build(config_lib.ModelConfig(latent_dim=LATENT_DIM),
                       (8, 8, 1), encoder_body=encoder, decoder_body=decoder)
  model.build_from_shape()
  assert isinstance(model.encoder, custom.CustomEncoder)
  assert isinstance(model.decoder, custom.CustomDecoder)
  params = model.encode(tf.zeros((3, 8, 8, 1)))
  assert params["loc"].shape == (3, LATENT_DIM)
  assert np.all(params["scale"].numpy() > 0)
  decoded = model.decode(tf.zeros((3, LATENT_DIM)))
  assert decoded["logits"].shape == (3, 8, 8, 1)
  assert decoded["mean"].shape == (3, 8, 8, 1)
  # The feature map is projected by a 1x1 convolution to the channels.
  assert isinstance(model.decoder.project, keras.layers.Conv2D)


def test_vector_decoder_projection_is_dense():
  encoder, decoder = _vector_bodies()
  model = models.build(config_lib.ModelConfig(latent_dim=LATENT_DIM,
                                              likelihood="gaussian"),
                       (NUM_COLUMNS,), encoder_body=encoder,
                       decoder_body=decoder)
  model.build_from_shape()
  assert isinstance(model.decoder.project, keras.layers.Dense)
  decoded = model.decode(tf.zeros((4, LATENT_DIM)))
  assert decoded["mean"].shape == (4, NUM_COLUMNS)


# ---- Training, resuming and exporting ---------------------------------------


class Runs:
  """40 steps resumed to 80, a straight 80-step run, and its export."""

  def __init__(self, root):
    data = _vector_data()
    self.data = data
    self.resumed_dir = os.path.join(root, "resumed")
    self.straight_dir = os.path.join(root, "straight")
    self.export_dir = os.path.join(root, "saved_models", "custom")
    encoder, decoder = _vector_bodies()
    self.first = experiment.train_and_evaluate(
        _config(self.resumed_dir, 40), data=data, encoder=encoder,
        decoder=decoder)
    encoder, decoder = _vector_bodies()
    self.resumed = experiment.train_and_evaluate(
        _config(self.resumed_dir, 80), data=data, encoder=encoder,
        decoder=decoder)
    encoder, decoder = _vector_bodies()
    config = _config(self.straight_dir, 80, export_dir=self.export_dir)
    self.straight = experiment.train_and_evaluate(
        config, data=data, encoder=encoder, decoder=decoder)
    self.export = exporter.export_run(self.straight.trainer.model, config)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  return Runs(str(tmp_path_factory.mktemp("custom_runs")))


def test_runs_train(runs):
  assert runs.first.resumed_from is None
  assert runs.first.metrics["step"] == 40
  assert runs.resumed.resumed_from.endswith("ckpt-40")
  assert runs.straight.metrics["step"] == 80
  assert runs.straight.metrics["dataset"] == experiment.ARRAYS_DATASET
  assert runs.straight.metrics["data_shape"] == [NUM_COLUMNS]
  assert runs.straight.metrics["test_nll"] < runs.first.metrics["test_nll"]
  assert np.isfinite(runs.straight.metrics["test_nll"])
  with open(os.path.join(runs.straight_dir, "config.json")) as f:
    assert json.load(f)["custom_networks"] == ["encoder", "decoder"]


def test_resumed_run_equals_straight_run_exactly(runs):
  resumed = cli.checkpoint_arrays(os.path.join(runs.resumed_dir,
                                               "checkpoints", "ckpt-80"))
  straight = cli.checkpoint_arrays(os.path.join(runs.straight_dir,
                                                "checkpoints", "ckpt-80"))
  assert set(resumed) == set(straight)
  names = sorted(set(resumed) - {_SAVE_COUNTER})
  # 3 Dense layers in the bodies, the posterior head and the projection
  # (10 weights), the learned scale, 2 Adam moments of each, and counters.
  assert len(names) >= 3 * 11 + 3, names
  mismatched = [n for n in names if not np.array_equal(resumed[n],
                                                       straight[n])]
  assert not mismatched, mismatched
  for key in ("test_neg_elbo", "test_nll", "test_distortion", "test_rate",
              "test_reconstruction_mse"):
    assert runs.resumed.metrics[key] == runs.straight.metrics[key], key


def test_export_files(runs):
  version_dir = runs.export.version_dir
  assert os.path.basename(version_dir) == "1"
  assert os.path.isfile(os.path.join(version_dir, "saved_model.pb"))
  assert os.path.isfile(os.path.join(version_dir, "model.tflite"))
  with open(os.path.join(version_dir, "assets.extra", "tfvae.json")) as f:
    metadata = json.load(f)
  assert metadata["data_shape"] == [NUM_COLUMNS]
  assert metadata["likelihood"] == "gaussian"
  assert [c["kind"] for c in metadata["columns"]] == ["continuous"] * 5


def test_serve_tag_graph_loader_runs_the_export(runs, tmp_path):
  rng = np.random.default_rng(5)
  x = runs.data.test_x[:4]
  inputs = {
      "encode": {"x": x},
      "reconstruct": {"x": x},
      "decode": {"z": rng.normal(size=(4, LATENT_DIM)).astype(np.float32)},
      "sample": {"num_samples": np.int32(3), "seed": np.int32(1)},
      "log_likelihood": {"x": x, "num_samples": np.int32(5)},
  }
  inputs["serving_default"] = inputs["reconstruct"]
  manifest = {"custom": {"saved_model": runs.export.version_dir,
                         "inputs": str(tmp_path / "inputs"),
                         "outputs": str(tmp_path / "outputs")}}
  for signature, values in inputs.items():
    os.makedirs(tmp_path / "inputs" / signature)
    for key, value in values.items():
      np.save(tmp_path / "inputs" / signature / f"{key}.npy", value)
  with open(tmp_path / "manifest.json", "w") as f:
    json.dump(manifest, f)
  process = export_utils.run_python(
      [GRAPH_LOADER, str(tmp_path / "manifest.json")], cwd=tmp_path,
      isolated=True)
  assert process.returncode == 0, export_utils.describe(process)
  with open(tmp_path / "result.json") as f:
    report = json.load(f)["models"]["custom"]
  assert sorted(report) == sorted(inputs)
  assert all(entry["error"] is None for entry in report.values()), report
  assert report["encode"]["inputs"]["x"]["shape"] == [-1, NUM_COLUMNS]
  model = runs.straight.trainer.model
  for signature in ("encode", "decode", "reconstruct"):
    folder = tmp_path / "outputs" / signature
    got = {n[:-4]: np.load(folder / n) for n in os.listdir(folder)}
    want = export_utils.in_memory_outputs(model, signature,
                                          inputs[signature])
    assert sorted(got) == sorted(want)
    for key in want:
      np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-4,
                                 err_msg=f"{signature}/{key}")
  log_prob = np.load(tmp_path / "outputs" / "log_likelihood" / "log_prob.npy")
  assert log_prob.shape == (4,) and np.all(np.isfinite(log_prob))


def test_tflite_runs_with_litert(runs):
  from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top
  interpreter = Interpreter(model_path=runs.export.tflite_path)
  assert set(interpreter.get_signature_list()) == {"sample", "decode",
                                                   "encode"}
  x = runs.data.test_x[:3]
  got = interpreter.get_signature_runner("encode")(x=x)
  want = export_utils.in_memory_outputs(runs.straight.trainer.model,
                                        "encode", {"x": x})
  np.testing.assert_allclose(got["mean"], want["mean"], rtol=1e-4,
                             atol=1e-4)
  sample = interpreter.get_signature_runner("sample")(
      num_samples=np.int32(4), seed=np.int32(2))["x"]
  assert sample.shape == (4, NUM_COLUMNS) and np.all(np.isfinite(sample))


def test_rebuild_from_checkpoint_needs_the_bodies(runs):
  with pytest.raises(ExportError, match="custom encoder and decoder"):
    run_state.load_trained_model(runs.straight_dir)
  encoder, decoder = _vector_bodies(seed=99)
  model, _, step = run_state.load_trained_model(
      runs.straight_dir, encoder=encoder, decoder=decoder)
  assert step == 80
  x = tf.constant(runs.data.test_x[:5])
  np.testing.assert_array_equal(
      model.reconstruct(x).numpy(),
      runs.straight.trainer.model.reconstruct(x).numpy())


def test_custom_image_bodies_train(tmp_path):
  rng = np.random.default_rng(0)
  images = np.zeros((120, 8, 8), np.uint8)
  for image in images:
    top, left = rng.integers(0, 5, 2)
    image[top:top + 4, left:left + 4] = 255
  keras.utils.set_random_seed(0)
  encoder = keras.Sequential([
      keras.layers.Conv2D(4, 3, strides=2, padding="same",
                          activation="relu"),
      keras.layers.Conv2D(8, 3, strides=2, padding="same",
                          activation="relu")])
  decoder = keras.Sequential([
      keras.layers.Dense(8 * 8 * 4, activation="relu"),
      keras.layers.Reshape((8, 8, 4)),
      keras.layers.Conv2D(4, 3, padding="same", activation="relu")])
  config = _config(tmp_path / "run", 30, likelihood="bernoulli")
  result = experiment.train_and_evaluate(
      config, data=tfvae.data.from_arrays(images), encoder=encoder,
      decoder=decoder)
  assert result.metrics["step"] == 30
  assert result.metrics["data_shape"] == [8, 8, 1]
  assert np.isfinite(result.metrics["test_nll"])
  model = result.trainer.model
  assert model.reconstruct(tf.zeros((2, 8, 8, 1))).shape == (2, 8, 8, 1)


def test_seed_fixes_custom_body_initialization(tmp_path):
  """`--seed` seeds initialization, custom bodies included.

  The same body code and config, run in two fresh processes (whose Python
  `random` differs), must give the same model. Keras draws an unseeded
  initializer's seed from Python's `random` when the layer is made, before
  `train_and_evaluate` seeds anything.
  """
  data = _vector_data()
  weights = []
  for name, python_seed in (("a", 1), ("b", 2)):
    random.seed(python_seed)  # Stands for a fresh process's random state.
    encoder = keras.Sequential([keras.layers.Dense(8, activation="tanh")])
    decoder = keras.Sequential([keras.layers.Dense(8, activation="tanh")])
    result = experiment.train_and_evaluate(
        _config(tmp_path / name, 20), data=data, encoder=encoder,
        decoder=decoder)
    weights.append([v.numpy() for v in result.trainer.model.weights])
  assert len(weights[0]) == len(weights[1])
  differing = [i for i, (a, b) in enumerate(zip(*weights))
               if not np.array_equal(a, b)]
  assert not differing, (
      f"{len(differing)} of {len(weights[0])} weights differ between two "
      "runs with equal config.train.seed")
