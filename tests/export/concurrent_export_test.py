"""Exports that run at the same time publish distinct versions.

The version is chosen when an export is published, under a lock on the
export folder, not when it starts. Checked end to end with two
`python -m tfvae.export` processes started together on one tiny untrained
run, and in-process on the publishing step itself, with a barrier and a
slowed-down version count that makes the race certain without the lock.
"""

import concurrent.futures
import errno
import fcntl
import os
import re
import subprocess
import sys
import threading
import time

from google.protobuf import text_format
import pytest
import tensorflow as tf
from tensorflow_serving.config import model_server_config_pb2

from tests.conftest import REPO_ROOT
from tests.export import export_utils
from tfvae.export import exporter
from tfvae.export import serving_config
from tfvae.training import run_state

DATA_SHAPE = (4, 4, 1)
# Long enough that two unlocked callers would certainly overlap.
_SLOW_S = 0.2


def _write_untrained_run(model_dir):
  """A run folder (config.json + one checkpoint) of a tiny untrained model."""
  from tfvae import models  # pylint: disable=g-import-not-at-top
  from tfvae.config import ModelConfig  # pylint: disable=g-import-not-at-top
  config = export_utils.run_config(
      ModelConfig(latent_dim=export_utils.LATENT_DIM, hidden_dims=(8,)),
      os.path.join(model_dir, "unused.npz"), model_dir)
  model = models.build(config.model, DATA_SHAPE)
  model.build_from_shape()
  os.makedirs(model_dir)
  checkpoint = tf.train.Checkpoint(model=model,
                                   step=tf.Variable(0, dtype=tf.int64))
  run_state.checkpoint_manager(checkpoint, model_dir, 1).save()
  run_state.write_config(config, model_dir, DATA_SHAPE, None)


def _read_models_config(path):
  config = model_server_config_pb2.ModelServerConfig()
  with open(path) as f:
    text_format.Parse(f.read(), config)
  return config


def _count_calls_at_once(monkeypatch, module, name):
  """Slows `module.name` down; returns the list of concurrent call counts."""
  real = getattr(module, name)
  counts, active, guard = [], [0], threading.Lock()

  def slow(*args, **kwargs):
    with guard:
      active[0] += 1
      counts.append(active[0])
    try:
      time.sleep(_SLOW_S)
      return real(*args, **kwargs)
    finally:
      with guard:
        active[0] -= 1

  monkeypatch.setattr(module, name, slow)
  return counts


def _at_once(function, args):
  """Calls `function(arg)` for each arg in its own thread, all at once."""
  barrier = threading.Barrier(len(args))

  def call(arg):
    barrier.wait()
    return function(arg)

  with concurrent.futures.ThreadPoolExecutor(len(args)) as pool:
    return list(pool.map(call, args))


def test_two_export_processes_publish_versions_one_and_two(tmp_path):
  model_dir = str(tmp_path / "run")
  export_dir = str(tmp_path / "exports" / "served")
  _write_untrained_run(model_dir)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO_ROOT)
  argv = [sys.executable, "-m", "tfvae.export", f"--model_dir={model_dir}",
          f"--export_dir={export_dir}"]
  processes = [subprocess.Popen(argv, cwd=str(tmp_path), env=env,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
  try:
    outputs = [p.communicate(timeout=export_utils.SUBPROCESS_TIMEOUT_S)
               for p in processes]
  finally:
    for p in processes:
      if p.poll() is None:
        p.kill()
        p.communicate()
  for p, (out, err) in zip(processes, outputs):
    assert p.returncode == 0, (out, err[-3000:])
  printed = sorted(int(re.search(r"as version (\d+):", out).group(1))
                   for out, _ in outputs)
  assert printed == [1, 2], outputs
  assert export_utils.version_names(export_dir) == ["1", "2"]
  for version in ("1", "2"):
    for name in ("saved_model.pb", exporter.TFLITE_FILE):
      assert os.path.isfile(os.path.join(export_dir, version, name))
  # No staging folder and no lock file is left behind.
  assert sorted(os.listdir(export_dir)) == ["1", "2"]
  parent = os.path.dirname(export_dir)
  assert sorted(os.listdir(parent)) == [serving_config.CONFIG_FILE,
                                        "served"]
  config = _read_models_config(os.path.join(parent,
                                            serving_config.CONFIG_FILE))
  assert [e.name for e in config.model_config_list.config] == ["served"]


def test_publish_from_two_threads_takes_distinct_versions(tmp_path,
                                                          monkeypatch):
  export_dir = tmp_path / "m"
  export_dir.mkdir()
  (export_dir / "1").mkdir()  # An earlier version.
  stagings = []
  for i in range(2):
    staging = export_dir / f".staging-test-{i}"
    staging.mkdir()
    (staging / "saved_model.pb").write_text(str(i))
    stagings.append(staging)
  counts = _count_calls_at_once(monkeypatch, exporter, "next_version")
  publish = exporter._publish  # pylint: disable=protected-access
  versions = _at_once(
      lambda staging: publish(str(staging), str(export_dir)), stagings)
  assert sorted(versions) == [2, 3]
  assert max(counts) == 1, "next_version ran in two threads at once"
  for i, version in enumerate(versions):
    assert (export_dir / str(version) / "saved_model.pb").read_text() == str(i)
  assert sorted(os.listdir(export_dir)) == ["1", "2", "3"]


def test_models_config_updates_do_not_lose_each_other(tmp_path, monkeypatch):
  config_path = str(tmp_path / serving_config.CONFIG_FILE)
  counts = _count_calls_at_once(monkeypatch, serving_config,
                                "read_models_config")
  update = exporter._update_models_config  # pylint: disable=protected-access
  _at_once(lambda name: update(config_path, name, f"/models/{name}"),
           ["first", "second"])
  assert max(counts) == 1, "models.config was read by two writers at once"
  config = _read_models_config(config_path)
  assert sorted(e.name for e in config.model_config_list.config) == [
      "first", "second"]
  assert os.listdir(tmp_path) == [serving_config.CONFIG_FILE]


def test_publish_without_flock_still_takes_a_free_version(tmp_path,
                                                          monkeypatch):
  """Without flock, a version folder that appeared is skipped, not replaced."""
  def no_flock(fd, operation):
    del fd, operation
    raise OSError(errno.ENOLCK, "No locks available")

  monkeypatch.setattr(fcntl, "flock", no_flock)
  real = exporter.next_version
  # The first count misses a version folder written meanwhile.
  answers = iter([1])
  monkeypatch.setattr(exporter, "next_version",
                      lambda path: next(answers, None) or real(path))
  (tmp_path / "1").mkdir()
  (tmp_path / "1" / "saved_model.pb").write_text("theirs")
  staging = tmp_path / ".staging-test"
  staging.mkdir()
  (staging / "saved_model.pb").write_text("ours")
  publish = exporter._publish  # pylint: disable=protected-access
  assert publish(str(staging), str(tmp_path)) == 2
  assert (tmp_path / "1" / "saved_model.pb").read_text() == "theirs"
  assert (tmp_path / "2" / "saved_model.pb").read_text() == "ours"
  assert sorted(os.listdir(tmp_path)) == ["1", "2"]


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
