"""Helpers that run `train.py` as a user does: a subprocess in the repo root.

The runs use a small MLP VAE on the drawn-shapes data of
`tests.integration.shapes`, so one run trains and evaluates in seconds.
"""

import glob
import os
import re
import subprocess
import sys

from tests.conftest import REPO_ROOT

TRAIN_PY = os.path.join(REPO_ROOT, "train.py")
TIMEOUT_S = 300

# Small settings: ~10 s per 300-step run on 2 CPU cores. `--noexport` keeps
# the tests valid when export lands.
SMALL = ("--hidden_dims=128", "--latent_dim=8", "--batch_size=64",
         "--eval_iw_samples=20", "--eval_batch_size=200",
         "--steps_per_loop=25", "--frechet_samples=0", "--noexport")

# TensorFlow's C++ logging prints a few lines before absl::InitializeLog, with
# a zero date, e.g. "E0000 00:00:1795464111.503580  8929 cuda_platform.cc:52]
# failed call to cuInit: ... CUDA error ...". They are not the program's
# messages, so they do not count as error lines.
_NATIVE_LOG = re.compile(r"^[IWEF]0000 00:00:|^WARNING: All log messages "
                         r"before absl::InitializeLog\(\)")


def run_train(*args, model_dir=None, timeout=TIMEOUT_S):
  """Runs `python train.py ARGS [--model_dir=...]` and returns the result.

  Args:
    *args: command-line arguments.
    model_dir: appended as `--model_dir` when given.
    timeout: seconds before the run is killed.

  Returns:
    `subprocess.CompletedProcess` with text `stdout` and `stderr`.
  """
  argv = [sys.executable, TRAIN_PY, *args]
  if model_dir is not None:
    argv.append(f"--model_dir={model_dir}")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True,
                        text=True, timeout=timeout, check=False)


def shapes_args(data_dir, *args):
  """`--dataset=npz --data_dir=DATA_DIR`, the small settings, then `args`."""
  return ("--dataset=npz", f"--data_dir={data_dir}", *SMALL, *args)


def output(result):
  """stdout and stderr of a finished run, as one string."""
  return result.stdout + "\n" + result.stderr


def error_lines(result):
  """The lines of a run's output that mention 'error', less TF's start-up."""
  return [line for line in output(result).splitlines()
          if "error" in line.lower() and not _NATIVE_LOG.match(line)]


def describe(result):
  """A short account of a run for assertion messages."""
  return (f"exit {result.returncode}\n"
          f"--- stdout (tail)\n{result.stdout[-3000:]}\n"
          f"--- stderr (tail)\n{result.stderr[-3000:]}")


def assert_succeeded(result):
  assert result.returncode == 0, describe(result)


def read_events(folder):
  """Every summary value in the event files of `folder`.

  Args:
    folder: e.g. `model_dir/train`.

  Returns:
    Dict tag -> list of `(step, plugin_name, value)`, sorted by step, where
    value is a float for scalars and the raw tensor proto otherwise.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top; slow.

  events = {}
  for path in sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        plugin = value.metadata.plugin_data.plugin_name
        if plugin == "scalars":
          content = float(tf.make_ndarray(value.tensor))
        elif value.HasField("simple_value"):
          plugin, content = "scalars", value.simple_value
        else:
          content = value.tensor
        events.setdefault(value.tag, []).append((event.step, plugin, content))
  return {tag: sorted(values, key=lambda v: v[0])
          for tag, values in events.items()}


def checkpoint_numbers(model_dir):
  """The step numbers of the checkpoints in `model_dir/checkpoints`, sorted."""
  names = glob.glob(os.path.join(model_dir, "checkpoints", "ckpt-*.index"))
  return sorted(int(re.search(r"ckpt-(\d+)\.index$", n).group(1))
                for n in names)


def checkpoint_arrays(path):
  """Numeric variables of a checkpoint: dict name -> numpy array."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top; slow.

  reader = tf.train.load_checkpoint(path)
  arrays = {}
  for name, _ in tf.train.list_variables(path):
    value = reader.get_tensor(name)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
      arrays[name] = value
    elif isinstance(value, (int, float, np.number)):
      arrays[name] = np.asarray(value)
  return arrays


def file_digests(folder):
  """Dict relative path -> bytes of every file under `folder`."""
  contents = {}
  for root, _, names in os.walk(folder):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        contents[os.path.relpath(path, folder)] = f.read()
  return contents
