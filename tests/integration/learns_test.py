"""A run of `train.py` learns: its test likelihood beats trivial baselines."""

import os

import numpy as np
import pytest

from tests.integration import cli
from tests.integration import conftest

# Importance weighting with k samples gives a tighter bound than the ELBO
# (up to Monte Carlo noise of a few hundredths of a nat on 400 examples).
_IW_TOLERANCE_NATS = 0.5


def test_bernoulli_run_beats_trivial_baseline(bernoulli_run):
  metrics = bernoulli_run.metrics
  assert metrics["trivial_nll"] is not None
  # The shapes are easy: 300 steps take the NLL far below independent
  # per-pixel Bernoulli marginals (about half of them in practice).
  assert metrics["test_nll"] < 0.75 * metrics["trivial_nll"], metrics


def test_bernoulli_run_metrics_are_consistent(bernoulli_run):
  metrics = bernoulli_run.metrics
  assert metrics["test_nll"] <= metrics["test_neg_elbo"] + _IW_TOLERANCE_NATS
  assert metrics["test_nll"] > 0  # Binary pixels: -log p(x) is positive.
  assert 0 < metrics["active_units"] <= 8
  assert metrics["step"] == conftest.TRAIN_STEPS
  assert metrics["eval_iw_samples"] == conftest.IW_SAMPLES
  assert metrics["test_examples"] == conftest.NUM_TEST
  assert metrics["latent_dim"] == 8
  assert len(metrics["kl_per_dim"]) == 8
  assert metrics["train_img_per_s"] > 0
  assert metrics["test_bits_per_dim"] == pytest.approx(
      metrics["test_nll"] / (28 * 28 * np.log(2)), rel=1e-6)
  assert metrics["likelihood"] == "bernoulli"
  assert metrics["dataset"] == "npz"


def test_bernoulli_run_prints_summary_table(bernoulli_run):
  metrics = bernoulli_run.metrics
  stdout = bernoulli_run.result.stdout
  nll_rows = [line for line in stdout.splitlines()
              if line.startswith(f"test NLL, k={conftest.IW_SAMPLES}")]
  assert len(nll_rows) == 1, stdout
  assert nll_rows[0].split()[-1] == f"{metrics['test_nll']:.2f}"
  assert f"{metrics['test_neg_elbo']:.2f}" in stdout
  assert os.path.join(bernoulli_run.model_dir, "metrics.json") in stdout
  assert not cli.error_lines(bernoulli_run.result)


def _per_pixel_gaussian_nll(data_dir):
  """-log p(x) of test images under each training pixel's Gaussian marginal.

  Computed here from the .npz files, independently of the library, on the
  pixel scale the model trains on (float data as it is). Uses all training
  images; the library holds 10% out for validation, which moves the value by
  a fraction of a nat.
  """
  train = np.load(os.path.join(data_dir, "train.npz"))["x"].astype(np.float64)
  test = np.load(os.path.join(data_dir, "test.npz"))["x"].astype(np.float64)
  mean, std = train.mean(axis=0), np.maximum(train.std(axis=0), 1e-3)
  log_p = -0.5 * ((test - mean) / std)**2 - np.log(std) - 0.5 * np.log(
      2 * np.pi)
  return float(-log_p.reshape(len(test), -1).sum(axis=1).mean())


@pytest.fixture(scope="module")
def gaussian_run(noisy_shapes_dir, tmp_path_factory):
  model_dir = str(tmp_path_factory.mktemp("gaussian_run") / "run")
  # The Gaussian loss starts ~40x higher than the Bernoulli one (sigmoid
  # means of 0.5 against a scale of 0.1); a larger step size gets it well
  # past the baseline in 300 steps.
  result = cli.run_train(
      *cli.shapes_args(noisy_shapes_dir, "--likelihood=gaussian",
                       "--gaussian_scale=0.1", "--learning_rate=3e-3",
                       f"--train_steps={conftest.TRAIN_STEPS}"),
      model_dir=model_dir)
  cli.assert_succeeded(result)
  return conftest.TrainedRun(model_dir, result)


def test_gaussian_run_learns(gaussian_run, noisy_shapes_dir):
  metrics = gaussian_run.metrics
  assert metrics["likelihood"] == "gaussian"
  assert metrics["step"] == conftest.TRAIN_STEPS
  losses = [value for _, _, value in
            cli.read_events(os.path.join(gaussian_run.model_dir,
                                         "train"))["loss"]]
  assert np.all(np.isfinite(losses))
  assert losses[-1] < losses[0] - 1000, losses
  # A continuous density: nats can be negative, so compare differences. The
  # baseline is ~10 nats and the model reaches about -70 nats.
  baseline = _per_pixel_gaussian_nll(noisy_shapes_dir)
  assert metrics["test_nll"] < baseline - 25, (metrics, baseline)
  assert metrics["test_nll"] <= metrics["test_neg_elbo"] + _IW_TOLERANCE_NATS
  assert metrics["active_units"] > 0


def test_gaussian_trivial_nll_is_the_per_pixel_baseline(gaussian_run,
                                                        noisy_shapes_dir):
  # Noisy float pixels exceed 1 (max ~1.46): the baseline must use them as
  # the model does, not rescale them as if they were 0..255.
  baseline = _per_pixel_gaussian_nll(noisy_shapes_dir)
  trivial = gaussian_run.metrics["trivial_nll"]
  assert trivial == pytest.approx(baseline, rel=0.05, abs=2.0)
  assert gaussian_run.metrics["test_nll"] < trivial
