"""The exported `log_likelihood` runs in bounded chunks and rejects oversized
requests with InvalidArgument instead of crashing the serving process.

The big request (359 8x8 images, num_samples=1000, to a conv model) once
decoded 359,000 samples in one batch and killed the server with a segfault.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.export import export_utils
from tfvae import counter_random
from tfvae import models
from tfvae.config import ModelConfig
from tfvae.evaluation import chunking
from tfvae.export import signatures

GRAPH_LOADER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "graph_loader_main.py")
DATA_SHAPE = (8, 8, 1)
BIG_REQUEST = (359, 1000)  # (N images, num_samples)


def _build(**overrides):
  keras.utils.set_random_seed(0)
  model = models.build(ModelConfig(**dict(
      dict(latent_dim=export_utils.LATENT_DIM, hidden_dims=(8, 16)),
      **overrides)), DATA_SHAPE)
  model.build_from_shape()
  return model


def _images(count, seed=0):
  rng = np.random.default_rng(seed)
  return rng.uniform(size=(count,) + DATA_SHAPE).astype(np.float32)


def _single_batch(model, x, num_samples):
  """The unchunked estimate: all k x N samples decoded at once."""
  noise = counter_random.normal(
      [num_samples, x.shape[0], export_utils.LATENT_DIM],
      tf.constant(signatures.LOG_LIKELIHOOD_SEED))
  log_w = model.log_weights(tf.constant(x), noise).numpy().astype(np.float64)
  return np.logaddexp.reduce(log_w, axis=0) - np.log(num_samples)


def _log_likelihood(model, x, num_samples):
  function = signatures.signature_functions(model)["log_likelihood"]
  return function(x=tf.constant(x),
                  num_samples=tf.constant(num_samples))["log_prob"].numpy()


def test_noise_at_positions_equals_the_full_draw():
  seed = tf.constant(signatures.LOG_LIKELIHOOD_SEED)
  full = counter_random.normal([6, 5, 4], seed).numpy()
  draws = np.arange(2, 5)[:, None] * 5 + np.arange(1, 4)[None, :]
  counter = draws[:, :, None] * 4 + np.arange(4)
  block = signatures._counter_normal_at(  # pylint: disable=protected-access
      tf.constant(counter, tf.int32), seed).numpy()
  np.testing.assert_allclose(block, full[2:5, 1:4], rtol=0, atol=1e-6)


@pytest.mark.parametrize("budget_examples", [
    None,  # One call.
    12,    # Blocks of 2 images, all 6 samples per call.
    4,     # One image per block, chunks of 4 and 2 samples.
    1,     # One sample of one image per call.
])
def test_chunked_equals_single_batch(monkeypatch, budget_examples):
  model = _build()
  if budget_examples is not None:
    per_example = (chunking.decoded_example_bytes(model)
                   + signatures._NOISE_BYTES_PER_ELEMENT  # pylint: disable=protected-access
                   * export_utils.LATENT_DIM)
    monkeypatch.setattr(chunking, "ACTIVATION_BUDGET_BYTES",
                        budget_examples * per_example)
  x = _images(5)
  np.testing.assert_allclose(_log_likelihood(model, x, 6),
                             _single_batch(model, x, 6), rtol=0, atol=1e-4)


def test_empty_request():
  assert _log_likelihood(_build(), _images(0), 3).shape == (0,)


@pytest.mark.parametrize("count, num_samples", [
    (2, 0), (2, -1),
    (1, signatures.LOG_LIKELIHOOD_MAX_SAMPLES + 1),
    (420, signatures.LOG_LIKELIHOOD_MAX_SAMPLES),  # k x N > 2**22.
])
def test_oversized_requests_are_invalid_arguments(count, num_samples):
  with pytest.raises(tf.errors.InvalidArgumentError, match="log_likelihood"):
    _log_likelihood(_build(), np.zeros((count,) + DATA_SHAPE, np.float32),
                    num_samples)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
  """A tiny conv model's SavedModel run by the graph loader in a subprocess.

  Three requests go to the same SavedModel: the big one, and two beyond the
  limits. Returns (model, folder, the child's result.json, inputs).
  """
  folder = str(tmp_path_factory.mktemp("log_likelihood_chunks"))
  model = _build(encoder="conv", decoder="conv")
  saved_model = os.path.join(folder, "saved_model")
  signatures.build_archive(model).write_out(saved_model, verbose=False)
  count, num_samples = BIG_REQUEST
  requests = {
      "big": (_images(count), num_samples),
      "too_many_samples": (_images(1),
                           signatures.LOG_LIKELIHOOD_MAX_SAMPLES + 1),
      "too_many_draws": (_images(420), signatures.LOG_LIKELIHOOD_MAX_SAMPLES),
  }
  manifest, inputs = {}, {}
  for name, (x, k) in requests.items():
    inputs[name] = dict(export_utils.fixed_inputs(DATA_SHAPE))
    inputs[name]["log_likelihood"] = {"x": x, "num_samples": np.int32(k)}
    inputs_dir = os.path.join(folder, name, "inputs")
    for signature, values in inputs[name].items():
      os.makedirs(os.path.join(inputs_dir, signature))
      for key, value in values.items():
        np.save(os.path.join(inputs_dir, signature, f"{key}.npy"), value)
    manifest[name] = {"saved_model": saved_model, "inputs": inputs_dir,
                      "outputs": os.path.join(folder, name, "outputs")}
  manifest_path = os.path.join(folder, "manifest.json")
  with open(manifest_path, "w") as f:
    json.dump(manifest, f)
  process = export_utils.run_python([GRAPH_LOADER, manifest_path],
                                    cwd=folder, isolated=True)
  assert process.returncode == 0, export_utils.describe(process)
  with open(os.path.join(folder, "result.json")) as f:
    result = json.load(f)
  return model, folder, result, inputs


def test_graph_loader_serves_the_big_request(served):
  model, folder, result, inputs = served
  modules = result["modules"]
  assert not [m for m in modules if m == "tfvae" or m.startswith("tfvae.")]
  assert not [m for m in modules if m.startswith("tensorflow_probability")]
  assert result["models"]["big"]["log_likelihood"]["error"] is None
  got = np.load(os.path.join(folder, "big", "outputs", "log_likelihood",
                             "log_prob.npy"))
  assert got.shape == (BIG_REQUEST[0],)
  assert np.all(np.isfinite(got))
  want = export_utils.in_memory_outputs(
      model, "log_likelihood", inputs["big"]["log_likelihood"])["log_prob"]
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


@pytest.mark.parametrize("request_name",
                         ["too_many_samples", "too_many_draws"])
def test_graph_loader_rejects_oversized_requests(served, request_name):
  _, _, result, _ = served
  error = result["models"][request_name]["log_likelihood"]["error"]
  assert error is not None and error.startswith("InvalidArgumentError"), error
  assert "log_likelihood" in error
  # The other signatures of the same session still answer.
  assert result["models"][request_name]["sample"]["error"] is None
