"""Mixed precision end to end through the Python API, in-process.

A tiny MLP VAE on 16x16 shapes trains `_STEPS` steps in float32 and in
mixed_bfloat16 with the same settings; a bfloat16 run resumed halfway must
equal the straight one bit for bit, its test NLL must be within `_NLL_TOL`
nats of the float32 run's (measured: -0.02 nats after 60 steps, +0.12 after
300), and its export (the float32 copy, `precision.float32_model`) must
serve through TF's serve-tag graph loader with float32 inputs and outputs.
mixed_float16 (loss scaling, slow on CPU) trains a few steps.
"""

import json
import os
import types

import keras
import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from tests.models import zoo_harness

_QUICKSTART = os.path.join(REPO_ROOT, "configs", "quickstart.flags")
_STEPS = 60
_NLL_TOL = 2.0  # nats per example (the NLL is ~140 nats here).
_FLOAT_DTYPES = {"float16", "bfloat16", "float32", "float64", "half"}


def _config(root, name, mixed_precision, train_steps=_STEPS, **overrides):
  import tfvae  # pylint: disable=g-import-not-at-top
  values = dict(train_steps=train_steps, epochs=0, hidden_dims=(16,),
                latent_dim=2, batch_size=32, steps_per_loop=10,
                eval_iw_samples=5, progress=False, images=False,
                mixed_precision=mixed_precision,
                model_dir=os.path.join(root, name, "run"),
                export_dir=os.path.join(root, name, "export"))
  values.update(overrides)
  return tfvae.config_from_flagfile(_QUICKSTART, **values)


def _train(config):
  import tfvae  # pylint: disable=g-import-not-at-top
  from tfvae.training import experiment  # pylint: disable=g-import-not-at-top
  images, labels = zoo_harness.make_shapes(300)
  return experiment.train_and_evaluate(
      config, data=tfvae.data.from_arrays(images, labels))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  return str(tmp_path_factory.mktemp("mixed_precision"))


@pytest.fixture(scope="module")
def float32_run(root):
  return _train(_config(root, "float32", "none"))


@pytest.fixture(scope="module")
def bfloat16_run(root):
  return _train(_config(root, "bfloat16", "mixed_bfloat16"))


@pytest.fixture(scope="module")
def resumed_run(root):
  """`_STEPS // 2` steps, then the same call continued to `_STEPS`."""
  first = _train(_config(root, "resumed", "mixed_bfloat16",
                         train_steps=_STEPS // 2))
  assert first.metrics["step"] == _STEPS // 2
  return _train(_config(root, "resumed", "mixed_bfloat16"))


def test_bfloat16_trains_with_float32_variables(bfloat16_run):
  from tfvae.training import precision  # pylint: disable=g-import-not-at-top
  trainer = bfloat16_run.trainer
  assert bfloat16_run.metrics["step"] == _STEPS
  assert np.isfinite(bfloat16_run.metrics["test_nll"])
  assert np.isfinite(bfloat16_run.metrics["test_neg_elbo"])
  assert precision.is_mixed(trainer.model)
  assert trainer.model.encoder.head.compute_dtype == "bfloat16"
  assert all(v.dtype == "float32" for v in trainer.model.weights)
  # bfloat16 needs no loss scaling.
  assert isinstance(trainer.optimizer, keras.optimizers.Adam)
  assert keras.config.dtype_policy().name == "float32"


def test_resumed_bfloat16_run_equals_straight_run(resumed_run, bfloat16_run):
  assert resumed_run.resumed_from is not None
  assert resumed_run.resumed_from.endswith(f"ckpt-{_STEPS // 2}")
  assert resumed_run.metrics["step"] == _STEPS
  straight, resumed = bfloat16_run.trainer, resumed_run.trainer
  for a, b in zip(straight.model.get_weights(), resumed.model.get_weights()):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(straight.optimizer.variables, resumed.optimizer.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  for name in ("test_nll", "test_neg_elbo", "test_distortion", "test_rate"):
    assert resumed_run.metrics[name] == bfloat16_run.metrics[name], name


def test_bfloat16_nll_is_close_to_float32(bfloat16_run, float32_run):
  gap = bfloat16_run.metrics["test_nll"] - float32_run.metrics["test_nll"]
  assert abs(gap) < _NLL_TOL, (bfloat16_run.metrics["test_nll"],
                               float32_run.metrics["test_nll"])


def test_bfloat16_export_serves_float32(bfloat16_run, tmp_path):
  from tfvae.export import exporter  # pylint: disable=g-import-not-at-top
  from tfvae.export import signatures  # pylint: disable=g-import-not-at-top
  from tfvae.training import precision  # pylint: disable=g-import-not-at-top
  mixed = bfloat16_run.trainer.model
  config = _config(str(tmp_path), "export", "mixed_bfloat16")
  copy = precision.float32_model(mixed)
  assert not precision.is_mixed(copy)
  exported = exporter.export_run(copy, config)
  assert os.path.isfile(exported.tflite_path)  # Converted and checked.
  run = types.SimpleNamespace(model=copy, export=exported)
  served = zoo_harness.assert_serves(run, tmp_path)
  with open(tmp_path / "result.json") as f:
    report = json.load(f)["models"]["model"]
  assert set(served) <= set(report)
  for name, entry in report.items():
    # serving_default (= reconstruct) gets no inputs of its own here.
    assert name not in served or entry["error"] is None, (name, entry)
    for key, info in list(entry["inputs"].items()) + list(
        entry["outputs"].items()):
      if info["dtype"] in _FLOAT_DTYPES:
        assert info["dtype"] == "float32", (name, key, info)
  # The served float32 copy computes what the mixed model computes, up to
  # bfloat16 rounding of the networks.
  functions = signatures.signature_functions(mixed)
  examples = signatures.example_inputs(mixed)
  for name in ("reconstruct", "decode"):
    want = functions[name](**examples[name])
    for key, value in want.items():
      assert value.dtype == "float32"
      np.testing.assert_allclose(served[name][key], value.numpy(), atol=0.01,
                                 err_msg=f"{name}/{key}")


def test_float16_trains_a_few_steps_with_loss_scaling(root):
  run = _train(_config(root, "float16", "mixed_float16", train_steps=4,
                       steps_per_loop=2, clip_norm=1.0,
                       eval_max_examples=64))
  trainer = run.trainer
  assert run.metrics["step"] == 4
  assert np.isfinite(run.metrics["test_nll"])
  assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
  assert trainer.model.decoder.head.compute_dtype == "float16"
  assert all(v.dtype == "float32" for v in trainer.model.weights)
  # No step was skipped (the scale would have halved) and all were applied.
  assert int(trainer.optimizer.iterations.numpy()) == 4
  assert float(trainer.optimizer.dynamic_scale.numpy()) == 2.0**15
  assert trainer.config.train.mixed_precision == "mixed_float16"
