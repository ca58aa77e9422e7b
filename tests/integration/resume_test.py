"""Resuming: a run continued from a checkpoint equals one trained straight."""

import json
import os
import re

import numpy as np
import pytest

from tests.integration import cli
from tests.integration import conftest

_FULL_STEPS = 200
# Counts saves, not steps: the interrupted run saved one more checkpoint.
_SAVE_COUNTER = "save_counter/.ATTRIBUTES/VARIABLE_VALUE"


def _metrics(model_dir):
  with open(os.path.join(model_dir, "metrics.json")) as f:
    return json.load(f)


@pytest.fixture(scope="module")
def resumed(short_run, shapes_dir, tmp_path_factory):
  """`short_run` (100 steps) continued by the same command to 200 steps."""
  model_dir = conftest.copy_run(
      short_run, tmp_path_factory.mktemp("resumed") / "run")
  result = cli.run_train(
      *conftest.short_run_args(shapes_dir, f"--train_steps={_FULL_STEPS}"),
      model_dir=model_dir)
  cli.assert_succeeded(result)
  return conftest.TrainedRun(model_dir, result)


@pytest.fixture(scope="module")
def straight(shapes_dir, tmp_path_factory):
  """200 steps in one go, with the seed and settings of `short_run`."""
  model_dir = str(tmp_path_factory.mktemp("straight") / "run")
  result = cli.run_train(
      *conftest.short_run_args(shapes_dir, f"--train_steps={_FULL_STEPS}"),
      model_dir=model_dir)
  cli.assert_succeeded(result)
  return conftest.TrainedRun(model_dir, result)


def test_short_run_saved_mid_epoch(short_run):
  # Epochs end at 28, 56, 84; step 100 is mid-epoch and saved anyway.
  assert cli.checkpoint_numbers(short_run.model_dir) == [56, 84, 100]
  assert short_run.metrics["step"] == conftest.SHORT_STEPS


def test_resume_logs_and_finishes(resumed):
  log = cli.output(resumed.result)
  assert re.search(r"Resuming from \S*ckpt-100 at step 100\b", log), log
  assert resumed.metrics["step"] == _FULL_STEPS
  assert cli.checkpoint_numbers(resumed.model_dir) == [168, 196, 200]
  # The summaries of both runs together: no step logged twice or skipped
  # back to, and the resumed run picks up at the epoch end after step 100.
  steps = [s for s, _, _ in cli.read_events(
      os.path.join(resumed.model_dir, "train"))["loss"]]
  assert steps == sorted(set(steps)), steps
  assert steps[-1] == _FULL_STEPS
  assert conftest.SHORT_STEPS in steps and 112 in steps


def test_resumed_run_equals_straight_run(resumed, straight):
  resumed_vars = cli.checkpoint_arrays(
      os.path.join(resumed.model_dir, "checkpoints", "ckpt-200"))
  straight_vars = cli.checkpoint_arrays(
      os.path.join(straight.model_dir, "checkpoints", "ckpt-200"))
  assert set(resumed_vars) == set(straight_vars)
  names = sorted(set(resumed_vars) - {_SAVE_COUNTER})
  # 8 weights (2 Dense layers in the encoder, 2 in the decoder), their 2 Adam
  # moments each, the step, Adam's iterations and learning rate.
  assert len(names) >= 3 * 8 + 3, names
  assert resumed_vars["step/.ATTRIBUTES/VARIABLE_VALUE"] == _FULL_STEPS
  mismatched = [n for n in names if not np.allclose(
      resumed_vars[n], straight_vars[n], rtol=1e-5, atol=1e-6)]
  assert not mismatched, mismatched
  # Equal weights, stateless evaluation noise: equal test numbers.
  for key in ("test_neg_elbo", "test_nll", "active_units"):
    assert resumed.metrics[key] == pytest.approx(straight.metrics[key],
                                                 rel=1e-4), key


def test_running_a_finished_run_again_trains_no_more(straight, shapes_dir,
                                                     tmp_path):
  model_dir = conftest.copy_run(straight, tmp_path / "run")
  before = cli.file_digests(os.path.join(model_dir, "checkpoints"))
  result = cli.run_train(
      *conftest.short_run_args(shapes_dir, f"--train_steps={_FULL_STEPS}"),
      model_dir=model_dir)
  cli.assert_succeeded(result)
  assert re.search(r"Resuming from \S*ckpt-200 at step 200\b",
                   result.stderr), cli.describe(result)
  assert cli.file_digests(os.path.join(model_dir, "checkpoints")) == before
  metrics = _metrics(model_dir)
  assert metrics["step"] == _FULL_STEPS
  # Evaluated again from the checkpoint: the same numbers.
  for key in ("test_neg_elbo", "test_nll", "test_reconstruction_mse"):
    assert metrics[key] == pytest.approx(straight.metrics[key], rel=1e-5), key
  steps = [s for s, _, _ in cli.read_events(
      os.path.join(model_dir, "train"))["loss"]]
  assert max(steps) == _FULL_STEPS and steps == sorted(set(steps))


def test_restart_starts_from_step_zero(short_run, shapes_dir, tmp_path):
  model_dir = conftest.copy_run(short_run, tmp_path / "run")
  result = cli.run_train(
      *conftest.short_run_args(shapes_dir, "--train_steps=56", "--restart"),
      model_dir=model_dir)
  cli.assert_succeeded(result)
  assert "Resuming" not in cli.output(result)
  # The old checkpoints (56, 84, 100) and summaries are gone.
  assert cli.checkpoint_numbers(model_dir) == [28, 56]
  assert _metrics(model_dir)["step"] == 56
  steps = [s for s, _, _ in cli.read_events(
      os.path.join(model_dir, "train"))["loss"]]
  assert steps == [25, 28, 53, 56]


@pytest.mark.parametrize("flag,value", [("latent_dim", 4), ("seed", 4)])
def test_resume_with_changed_flag_is_refused(short_run, shapes_dir, tmp_path,
                                             flag, value):
  model_dir = conftest.copy_run(short_run, tmp_path / "run")
  before = cli.file_digests(os.path.join(model_dir, "checkpoints"))
  result = cli.run_train(
      *conftest.short_run_args(shapes_dir, "--train_steps=200",
                               f"--{flag}={value}"),
      model_dir=model_dir)
  assert result.returncode != 0, cli.describe(result)
  assert "Traceback" not in cli.output(result)
  lines = cli.error_lines(result)
  assert len(lines) == 1, cli.describe(result)
  assert lines[0].startswith("train.py: error:")
  assert f"--{flag}={value}" in lines[0]
  assert "--restart" in lines[0]
  assert cli.file_digests(os.path.join(model_dir, "checkpoints")) == before


def test_resume_with_new_learning_rate_uses_it_or_refuses(short_run,
                                                          shapes_dir,
                                                          tmp_path):
  model_dir = conftest.copy_run(short_run, tmp_path / "run")
  result = cli.run_train(
      *conftest.short_run_args(shapes_dir, "--train_steps=112",
                               "--learning_rate=1e-4"),
      model_dir=model_dir)
  if result.returncode != 0:
    lines = cli.error_lines(result)
    assert len(lines) == 1 and "--learning_rate" in lines[0], cli.describe(
        result)
    return
  rates = [v for s, _, v in cli.read_events(
      os.path.join(model_dir, "train"))["learning_rate"]
           if s > conftest.SHORT_STEPS]
  assert rates
  assert rates == pytest.approx([1e-4] * len(rates))


def test_batch_norm_run_evaluates_the_same_after_restore(shapes_dir,
                                                         tmp_path):
  model_dir = str(tmp_path / "run")
  args = cli.shapes_args(shapes_dir, "--batch_norm", "--train_steps=56")
  first = cli.run_train(*args, model_dir=model_dir)
  cli.assert_succeeded(first)
  trained = _metrics(model_dir)
  again = cli.run_train(*args, model_dir=model_dir)
  cli.assert_succeeded(again)
  assert "at step 56" in again.stderr
  restored = _metrics(model_dir)
  for key in ("test_neg_elbo", "test_nll", "test_reconstruction_mse"):
    assert restored[key] == pytest.approx(trained[key], rel=1e-5), key
