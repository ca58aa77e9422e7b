"""`--strategy=multi_worker`: two `train.py` workers on 127.0.0.1 ports.

The pair equals one process with the same global batch and seed, only the
chief writes what users read, and a pair whose worker is killed resumes
from the chief's checkpoint when both are started again.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO_ROOT
from tests.integration import cli

_STEPS = 60
_ARGS = (f"--train_steps={_STEPS}", "--checkpoint_steps=20",
         "--steps_per_loop=10", "--eval_iw_samples=5", "--images=false")
# Keys of metrics.json compared between runs.
_COMPARED = ("test_neg_elbo", "test_nll", "test_distortion", "test_rate")


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def _start_pair(shapes_dir, model_dir, *extra, ports=None):
  """Starts worker 0 and 1 of a 2-worker cluster; returns the Popen pair."""
  ports = ports or _free_ports(2)
  cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
  workers = []
  for index in range(2):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": index}}))
    argv = [sys.executable, cli.TRAIN_PY,
            *cli.shapes_args(shapes_dir, *_ARGS, *extra),
            "--strategy=multi_worker", "--worker_timeout_s=20",
            f"--model_dir={model_dir}"]
    workers.append(subprocess.Popen(
        argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True))
  return workers


def _finish(workers, timeout=cli.TIMEOUT_S):
  results = []
  for worker in workers:
    try:
      stdout, stderr = worker.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
      for w in workers:
        w.kill()
      raise
    results.append(subprocess.CompletedProcess(worker.args, worker.returncode,
                                               stdout, stderr))
  return results


def _own_errors(result):
  """The program's error lines (TF's C++ runtime logs its own besides)."""
  return [line for line in cli.output(result).splitlines()
          if line.startswith("train.py: error:")]


def _metrics(model_dir):
  with open(os.path.join(model_dir, "metrics.json")) as f:
    return json.load(f)


@pytest.fixture(scope="module")
def single(shapes_dir, tmp_path_factory):
  model_dir = str(tmp_path_factory.mktemp("single") / "run")
  cli.assert_succeeded(cli.run_train(*cli.shapes_args(shapes_dir, *_ARGS),
                                     model_dir=model_dir))
  return _metrics(model_dir)


def test_killed_worker_pair_resumes_and_equals_one_process(
    shapes_dir, tmp_path, single):
  model_dir = str(tmp_path / "run")
  chief, worker = _start_pair(shapes_dir, model_dir)
  deadline = time.time() + cli.TIMEOUT_S
  while 20 not in cli.checkpoint_numbers(model_dir):
    assert time.time() < deadline and chief.poll() is None, (
        chief.communicate())
    time.sleep(0.2)
  worker.send_signal(signal.SIGKILL)
  (chief_result, _) = _finish([chief, worker], timeout=120)
  # The chief notices within --worker_timeout_s and stops with one line.
  assert chief_result.returncode != 0
  errors = _own_errors(chief_result)
  assert len(errors) == 1 and "Run the same command on every worker" in (
      errors[0]), cli.describe(chief_result)
  saved = cli.checkpoint_numbers(model_dir)
  assert saved and max(saved) < _STEPS
  assert not os.path.exists(os.path.join(model_dir, "metrics.json"))

  # Both started again: they resume from the chief's checkpoint and end
  # where one process with the same global batch and seed ends.
  chief, worker = _finish(_start_pair(
      shapes_dir, model_dir, "--export",
      f"--export_dir={tmp_path / 'export'}"))
  cli.assert_succeeded(chief)
  cli.assert_succeeded(worker)
  metrics = _metrics(model_dir)
  assert metrics["step"] == _STEPS
  for key in _COMPARED:
    assert metrics[key] == pytest.approx(single[key], rel=1e-4), key

  # Only the chief writes what users read; no temporary checkpoints remain.
  assert f"this worker trained to step {_STEPS}" in worker.stdout
  assert "SavedModel v1 " in chief.stdout, chief.stdout
  assert "SavedModel" not in worker.stdout
  assert sorted(os.listdir(tmp_path / "export")) == ["1"]
  assert not [n for n in os.listdir(model_dir) if n.endswith("-tmp")]
  # Saves at 20, 28 (epoch end), 40, 56 (epoch end), 60; three are kept.
  assert cli.checkpoint_numbers(model_dir) == [40, 56, 60]


def test_lone_worker_names_the_address_it_waited_for(shapes_dir, tmp_path):
  ports = _free_ports(2)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=json.dumps(
      {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
       "task": {"type": "worker", "index": 0}}))
  result = subprocess.run(
      [sys.executable, cli.TRAIN_PY, *cli.shapes_args(shapes_dir, *_ARGS),
       "--strategy=multi_worker", "--worker_timeout_s=3",
       f"--model_dir={tmp_path / 'run'}"],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 1
  errors = _own_errors(result)
  assert len(errors) == 1 and f"127.0.0.1:{ports[1]}" in errors[0], (
      cli.describe(result))
  assert not os.path.exists(tmp_path / "run" / "checkpoints")


def test_malformed_tf_config_is_one_line(shapes_dir, tmp_path):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG="{not json")
  result = subprocess.run(
      [sys.executable, cli.TRAIN_PY, *cli.shapes_args(shapes_dir, *_ARGS),
       "--strategy=multi_worker", f"--model_dir={tmp_path / 'run'}"],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 1
  errors = _own_errors(result)
  assert len(errors) == 1 and "TF_CONFIG is not valid JSON" in errors[0], (
      cli.describe(result))
  assert "Traceback" not in cli.output(result)
  assert not os.path.exists(tmp_path / "run")
