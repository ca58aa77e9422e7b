"""`vq_vae` through the shared zoo checks, plus its sampling and options."""

import dataclasses

from ai_edge_litert.interpreter import Interpreter
import numpy as np
import pytest
import tensorflow as tf

from tests.models import zoo_harness
from tfvae.config import ModelConfig
from tfvae.errors import ConfigError
from tfvae.models import registry

CONFIG = ModelConfig(model="vq_vae", encoder="conv", decoder="conv",
                     num_embeddings=16, embedding_dim=4, code_prior_layers=2,
                     code_prior_channels=16)
GRID = (4, 4)  # 16x16 shapes after two stride-2 blocks.


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  return zoo_harness.train_variant(CONFIG, tmp_path_factory.mktemp("vq_vae"),
                                   train_steps=200, eval_iw_samples=1)


def test_learns(run):
  zoo_harness.assert_learns(run)
  assert run.metrics["has_likelihood_bound"] is False
  assert run.metrics["test_nll"] is None
  assert run.metrics["code_dim"] == GRID[0] * GRID[1] * 4


def test_exports_and_serves(run, tmp_path):
  served = zoo_harness.assert_serves(run, tmp_path)
  zoo_harness.assert_loads(run)
  assert "log_likelihood" not in served
  indices = served["encode"]["indices"]
  assert indices.dtype == np.int32 and indices.shape == (2,) + GRID
  assert np.all((indices >= 0) & (indices < 16))
  assert served["decode"]["mean"].shape == (2, 16, 16, 1)
  zoo_harness.assert_tflite_runs(run)


def test_decoding_encoded_indices_reconstructs(run):
  images = tf.constant(run.test_x[:8].astype(np.float32) / 255.0)
  indices = run.model.export_encode(images)["indices"]
  np.testing.assert_allclose(run.model.decode(indices)["mean"],
                             run.model.reconstruct(images), atol=1e-6)


def _check_samples(sample):
  """`sample(num_samples, seed)` -> images: in [0, 1], seeded."""
  first, again, other = sample(6, 3), sample(6, 3), sample(6, 4)
  assert first.shape == (6, 16, 16, 1)
  assert np.all((first >= 0) & (first <= 1))
  np.testing.assert_array_equal(first, again)
  assert np.abs(first - other).max() > 1e-3


def test_saved_model_and_tflite_samples(run):
  loaded = tf.saved_model.load(run.export.version_dir)
  saved_sample = loaded.signatures["sample"]
  _check_samples(lambda n, s: saved_sample(
      num_samples=tf.constant(n), seed=tf.constant(s))["images"].numpy())
  interpreter = Interpreter(model_path=run.export.tflite_path)
  lite_sample = interpreter.get_signature_runner("sample")
  lite = lambda n, s: lite_sample(num_samples=np.array(n, np.int32),
                                  seed=np.array(s, np.int32))["images"]
  _check_samples(lite)
  np.testing.assert_allclose(
      lite(6, 3), saved_sample(num_samples=tf.constant(6),
                               seed=tf.constant(3))["images"].numpy(),
      atol=1e-4)
  lite_encode = interpreter.get_signature_runner("encode")
  x = run.test_x[:4].astype(np.float32) / 255.0
  np.testing.assert_array_equal(
      lite_encode(x=x)["indices"],
      loaded.signatures["encode"](x=tf.constant(x))["indices"].numpy())


def test_in_memory_samples(run):
  _check_samples(lambda n, s: run.model.sample(n, [s, 0]).numpy())


def _tflite_op_names(path):
  """Names of every operator code of a `.tflite` file (all subgraphs)."""
  from tensorflow.lite.python import schema_py_generated as schema  # pylint: disable=g-import-not-at-top
  with open(path, "rb") as f:
    model = schema.ModelT.InitFromPackedBuf(f.read(), 0)
  names = {value: name for name, value in vars(schema.BuiltinOperator).items()
           if not name.startswith("_")}
  return {names[max(code.builtinCode, code.deprecatedBuiltinCode)]
          if not code.customCode else "CUSTOM:" + code.customCode.decode()
          for code in model.operatorCodes}


def test_tflite_has_only_builtin_ops(run):
  ops = _tflite_op_names(run.export.tflite_path)
  assert not [name for name in ops if name.startswith(("CUSTOM", "FLEX"))]
  # Inverse-CDF sampling and nearest-code search, in built-in ops.
  assert {"SOFTMAX", "CUMSUM", "LESS", "ARG_MIN", "GATHER"} <= ops, ops


@pytest.mark.parametrize("kwargs,flag", [
    (dict(beta=4.0), "--beta"),
    (dict(prior="vamp"), "--prior"),
    (dict(iw_samples=50), "--iw_samples"),
])
def test_rejects_options_of_other_variants(kwargs, flag):
  config = ModelConfig(model="vq_vae", encoder="conv", decoder="conv",
                       **kwargs)
  with pytest.raises(ConfigError, match=flag) as error:
    registry.check_options(config)
  assert "vq_vae" in str(error.value)


def test_rejects_mlp_networks():
  with pytest.raises(ConfigError, match="--encoder=mlp"):
    registry.check_options(ModelConfig(model="vq_vae"))
  with pytest.raises(ConfigError, match="--decoder=mlp"):
    registry.check_options(ModelConfig(model="vq_vae", encoder="conv"))


def test_vq_options_rejected_by_other_variants():
  with pytest.raises(ConfigError, match="--num_embeddings.*vq_vae"):
    registry.check_options(ModelConfig(model="vae", num_embeddings=8))


def test_ema_codebook_is_not_trainable():
  model = registry.build(dataclasses.replace(CONFIG, vq_ema_decay=0.99),
                         (16, 16, 1))
  model.build_from_shape()
  trainable = {v.path for v in model.trainable_variables}
  assert not any("codebook" in path for path in trainable)
  assert any("code_prior" in path for path in trainable)
