"""Session-wide fixtures: drawn-shapes .npz data and the runs tests share."""

import json
import os
import shutil

import pytest

from tests.integration import cli
from tests.integration import shapes

NUM_TRAIN = 2000
NUM_TEST = 400
NOISE_STD = 0.1


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory):
  """A folder with `train.npz` (2000 uint8 shapes) and `test.npz` (400)."""
  folder = tmp_path_factory.mktemp("shapes")
  shapes.write_npz(os.path.join(folder, "train.npz"), NUM_TRAIN, seed=1)
  shapes.write_npz(os.path.join(folder, "test.npz"), NUM_TEST, seed=2)
  return str(folder)


@pytest.fixture(scope="session")
def noisy_shapes_dir(tmp_path_factory):
  """Like `shapes_dir`, as float32 with Gaussian pixel noise (std 0.1)."""
  folder = tmp_path_factory.mktemp("noisy_shapes")
  for name, count, seed in (("train.npz", NUM_TRAIN, 1),
                            ("test.npz", NUM_TEST, 2)):
    shapes.write_npz(os.path.join(folder, name), count, seed=seed,
                     noise_std=NOISE_STD)
  return str(folder)


TRAIN_STEPS = 300
IW_SAMPLES = 20


class TrainedRun:
  """A finished `train.py` run: its folder, output and metrics."""

  def __init__(self, model_dir, result):
    self.model_dir = model_dir
    self.result = result
    with open(os.path.join(model_dir, "metrics.json")) as f:
      self.metrics = json.load(f)


@pytest.fixture(scope="session")
def bernoulli_run(shapes_dir, tmp_path_factory):
  """One 300-step Bernoulli run on the shapes, shared by several tests."""
  model_dir = str(tmp_path_factory.mktemp("bernoulli_run") / "run")
  result = cli.run_train(
      *cli.shapes_args(shapes_dir, f"--train_steps={TRAIN_STEPS}",
                       f"--eval_iw_samples={IW_SAMPLES}",
                       "--frechet_samples=10000"),
      model_dir=model_dir)
  cli.assert_succeeded(result)
  return TrainedRun(model_dir, result)


SHORT_STEPS = 100


@pytest.fixture(scope="session")
def short_run(shapes_dir, tmp_path_factory):
  """A 100-step run, ending mid-epoch (28 steps per epoch).

  Tests that go on from it take a copy (`copy_run`), so it stays as it is.
  """
  model_dir = str(tmp_path_factory.mktemp("short_run") / "run")
  result = cli.run_train(*short_run_args(shapes_dir), model_dir=model_dir)
  cli.assert_succeeded(result)
  return TrainedRun(model_dir, result)


def short_run_args(shapes_dir, *args):
  """The command line of `short_run` (less `--model_dir`), then `args`."""
  return cli.shapes_args(shapes_dir, "--seed=3",
                         f"--train_steps={SHORT_STEPS}", *args)


def copy_run(run, destination):
  """Copies a run's model_dir to `destination`; returns the new path."""
  return shutil.copytree(run.model_dir, str(destination))
