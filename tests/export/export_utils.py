"""Helpers of the export tests: tiny data, trained runs, subprocesses, files.

The runs are deliberately tiny (one hidden layer of 32 units or two conv
blocks of 8 and 16 channels, 4 latent dimensions, 50 steps) so that training
three of them, exporting them and checking the exports takes seconds.
"""

import dataclasses
import hashlib
import os
import subprocess
import sys

import numpy as np

from tests.conftest import REPO_ROOT

TRAIN_PY = os.path.join(REPO_ROOT, "train.py")
SUBPROCESS_TIMEOUT_S = 300
LATENT_DIM = 4
TRAIN_STEPS = 50


def make_shapes(num_examples, size, channels, seed):
  """Filled squares and discs of random size, position and colour.

  Args:
    num_examples: N.
    size: image side.
    channels: 1 (grey) or 3 (colour).
    seed: numpy seed.

  Returns:
    `[N, size, size, channels]` uint8 images, 0 outside the shape.
  """
  rng = np.random.default_rng(seed)
  images = np.zeros((num_examples, size, size, channels), np.uint8)
  yy, xx = np.mgrid[0:size, 0:size]
  for image in images:
    radius = rng.integers(2, size // 3 + 1)
    cy, cx = rng.integers(radius, size - radius, 2)
    if rng.random() < 0.5:
      mask = (np.abs(yy - cy) <= radius) & (np.abs(xx - cx) <= radius)
    else:
      mask = (yy - cy)**2 + (xx - cx)**2 <= radius**2
    image[mask] = rng.integers(150, 256, channels)
  return images


def write_shapes_npz(path, num_examples, size, channels, seed=0):
  """Writes `make_shapes(...)` as `np.savez(path, x=images)`; returns path."""
  np.savez(path, x=make_shapes(num_examples, size, channels, seed))
  return str(path)


def run_config(model_config, data_path, model_dir, export_dir=None):
  """A `RunConfig` of a tiny, fast run on an npz file."""
  from tfvae import config as config_lib  # pylint: disable=g-import-not-at-top
  return config_lib.RunConfig(
      data=config_lib.DataConfig(dataset="npz", data_dir=str(data_path),
                                 download=False),
      model=model_config,
      train=config_lib.TrainConfig(
          model_dir=str(model_dir), train_steps=TRAIN_STEPS, batch_size=32,
          steps_per_loop=25, progress=False, seed=0),
      eval=config_lib.EvalConfig(eval_iw_samples=5, eval_batch_size=64,
                                 images=False, frechet_samples=0),
      export=config_lib.ExportConfig(
          export_dir=None if export_dir is None else str(export_dir))
  ).validate()


def with_export_dir(config, export_dir, quantization=None):
  """`config` exporting to `export_dir` (and with another quantization)."""
  export = dataclasses.replace(config.export, export_dir=str(export_dir))
  if quantization is not None:
    export = dataclasses.replace(export, tflite_quantization=quantization)
  return dataclasses.replace(config, export=export)


@dataclasses.dataclass
class TrainedModel:
  """A trained in-memory model, its run and its first export.

  Attributes:
    name: short name (`bernoulli`, `gaussian`, `conv`).
    model: the trained model, as training left it in memory.
    config: the run's `RunConfig`.
    model_dir: the run's folder (checkpoints, config.json).
    export: the `ExportResult` of exporting `model` once (version 1).
  """
  name: str
  model: object
  config: object
  model_dir: str
  export: object

  @property
  def version_dir(self):
    return self.export.version_dir

  @property
  def data_shape(self):
    return tuple(self.model.data_shape)


def train_and_export(name, model_config, data_path, root):
  """Trains a tiny run in-process and exports it once under `root`.

  Returns:
    A `TrainedModel`.
  """
  from tfvae.export import exporter  # pylint: disable=g-import-not-at-top
  from tfvae.training import experiment  # pylint: disable=g-import-not-at-top
  config = run_config(model_config, data_path,
                      os.path.join(root, "runs", name),
                      os.path.join(root, "saved_models", name))
  result = experiment.train_and_evaluate(config)
  assert int(result.trainer.step.numpy()) == TRAIN_STEPS
  export = exporter.export_run(result.trainer.model, config)
  return TrainedModel(name, result.trainer.model, config,
                      config.train.model_dir, export)


def fixed_inputs(data_shape, latent_dim=LATENT_DIM, batch_size=3, seed=0):
  """Fixed numpy inputs for every signature (same for every process).

  Returns:
    Dict signature name -> dict input name -> numpy array.
  """
  rng = np.random.default_rng(seed)
  x = rng.uniform(size=(batch_size,) + tuple(data_shape)).astype(np.float32)
  z = rng.standard_normal((batch_size, latent_dim)).astype(np.float32)
  return {
      "reconstruct": {"x": x},
      "serving_default": {"x": x},
      "encode": {"x": x},
      "decode": {"z": z},
      "sample": {"num_samples": np.int32(5), "seed": np.int32(7)},
      "log_likelihood": {"x": x, "num_samples": np.int32(6)},
  }


def in_memory_outputs(model, signature, inputs):
  """What `signature_functions(model)[signature]` returns, as numpy."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfvae.export import signatures  # pylint: disable=g-import-not-at-top
  name = "reconstruct" if signature == "serving_default" else signature
  function = signatures.signature_functions(model)[name]
  outputs = function(**{k: tf.constant(v) for k, v in inputs.items()})
  return {k: v.numpy() for k, v in outputs.items()}


def tree_digest(folder):
  """Dict relative path -> sha256 of every file under `folder`."""
  digests = {}
  for root, _, files in os.walk(folder):
    for name in files:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        digests[os.path.relpath(path, folder)] = hashlib.sha256(
            f.read()).hexdigest()
  return digests


def version_names(export_dir):
  """The integer version folders of `export_dir`, sorted numerically."""
  return sorted((n for n in os.listdir(export_dir) if n.isdigit()), key=int)


def staging_names(export_dir):
  """Leftover hidden staging folders in `export_dir`."""
  return [n for n in os.listdir(export_dir) if n.startswith(".staging")]


def run_python(args, cwd, timeout=SUBPROCESS_TIMEOUT_S, isolated=False):
  """Runs `python ARGS` with the repository importable (unless isolated).

  Args:
    args: arguments after the interpreter, e.g. `["-m", "tfvae.export"]`.
    cwd: working folder (a temporary one, so nothing lands in the repo).
    timeout: seconds.
    isolated: run with `-I` (no PYTHONPATH, no script folder on sys.path),
      so the repository's packages cannot be imported at all.

  Returns:
    `subprocess.CompletedProcess` with text output.
  """
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO_ROOT)
  argv = [sys.executable] + (["-I"] if isolated else []) + list(args)
  return subprocess.run(argv, cwd=str(cwd), env=env, capture_output=True,
                        text=True, timeout=timeout, check=False)


def run_tool(argv, cwd, timeout=SUBPROCESS_TIMEOUT_S):
  """Runs a console script of the virtual environment (saved_model_cli)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  tool = os.path.join(os.path.dirname(sys.executable), argv[0])
  if not os.path.exists(tool):
    tool = argv[0]
  return subprocess.run([tool] + list(argv[1:]), cwd=str(cwd), env=env,
                        capture_output=True, text=True, timeout=timeout,
                        check=False)


def describe(result):
  """A short account of a finished subprocess for assertion messages."""
  return (f"exit {result.returncode}\n--- stdout (tail)\n"
          f"{result.stdout[-3000:]}\n--- stderr (tail)\n"
          f"{result.stderr[-3000:]}")


def last_line(text):
  """The last non-empty line of `text`."""
  lines = [line for line in text.splitlines() if line.strip()]
  return lines[-1] if lines else ""
