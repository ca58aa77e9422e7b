"""Tests of `tfvae.training.run_lock`: one process per run folder.

The holder of a lock is a separate process (a few lines of Python that take
the lock, print "locked" and sleep), because flock conflicts are what another
process sees; killing it with SIGKILL checks that a dead holder's lock is
taken over.
"""

import errno
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from tfvae.errors import ConfigError
from tfvae.errors import RunLockedError
from tfvae.training import run_lock
from tfvae.training.run_lock import RunLock

_HOLDER = """
import sys, time
from tfvae.training.run_lock import RunLock
RunLock(*sys.argv[1:]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def _start_holder(model_dir, task="chief"):
  """A process holding the lock of `model_dir` (once it printed "locked")."""
  process = subprocess.Popen(
      [sys.executable, "-c", _HOLDER, str(model_dir), task],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      env=dict(os.environ, PYTHONPATH=REPO_ROOT))
  line = process.stdout.readline()
  if line != "locked\n":
    process.kill()
    pytest.fail(f"The holder did not take the lock: {line!r} "
                f"{process.communicate()[1][-2000:]}")
  return process


def _kill(process):
  if process.poll() is None:
    process.send_signal(signal.SIGKILL)
  process.communicate()


@pytest.fixture
def holder(tmp_path):
  process = _start_holder(tmp_path)
  yield process
  _kill(process)


@pytest.fixture
def sleeper():
  """A live process that holds no lock (a pid that runs)."""
  process = subprocess.Popen([sys.executable, "-c",
                              "import time; time.sleep(120)"])
  yield process
  _kill(process)


def _dead_pid():
  process = subprocess.Popen([sys.executable, "-c", "pass"])
  process.wait()
  return process.pid


def _record(pid, host=None):
  return {"pid": pid, "host": host or socket.gethostname(),
          "started": "2026-12-01T20:00:00+00:00",
          "command": "python train.py --model_dir=old", "task": "chief"}


def _took_over_from(caplog, pid):
  return [r for r in caplog.records if r.levelno == logging.WARNING
          and f"from pid {pid} " in r.getMessage()
          and "no longer running" in r.getMessage()]


# ---- With flock --------------------------------------------------------------


def test_second_process_is_refused_with_one_line(tmp_path, holder):
  with pytest.raises(RunLockedError) as raised:
    RunLock(str(tmp_path)).acquire()
  message = str(raised.value)
  assert "\n" not in message
  assert message.startswith(f"{tmp_path} is in use by pid {holder.pid} on "
                            f"host {socket.gethostname()} since ")
  assert "--model_dir" in message
  assert isinstance(raised.value, ConfigError)


def test_lock_file_names_the_holder(tmp_path, holder):
  with open(tmp_path / "run.lock") as f:
    record = json.load(f)
  assert record["pid"] == holder.pid
  assert record["host"] == socket.gethostname()
  assert record["task"] == "chief"
  assert record["command"].startswith("-c ")
  assert record["started"][-6] in "+-"  # An offset: ...T20:00:00+01:00.


def test_lock_of_killed_process_is_taken_over(tmp_path, holder, caplog):
  _kill(holder)
  with caplog.at_level(logging.WARNING, logger="absl"):
    lock = RunLock(str(tmp_path)).acquire()
  try:
    assert _took_over_from(caplog, holder.pid), caplog.text
    with open(lock.path) as f:
      assert json.load(f)["pid"] == os.getpid()
  finally:
    lock.release()


def test_tasks_lock_their_own_files(tmp_path, holder):
  with RunLock(str(tmp_path), task="worker-1") as worker:
    assert worker.path == os.path.join(tmp_path, "run.worker-1.lock")
    # The same task twice conflicts, even within one process.
    with pytest.raises(RunLockedError, match=r"\(task worker-1\) is in use "
                       rf"by pid {os.getpid()} "):
      RunLock(str(tmp_path), task="worker-1").acquire()
  assert run_lock.lock_path(str(tmp_path)) == os.path.join(tmp_path,
                                                           "run.lock")


def test_release_removes_the_file(tmp_path, caplog):
  model_dir = tmp_path / "new_run"
  with caplog.at_level(logging.WARNING, logger="absl"):
    with RunLock(str(model_dir)) as lock:
      assert lock.held and os.path.exists(lock.path)
    assert not lock.held
    assert os.listdir(model_dir) == []
    lock.release()  # Releasing twice does nothing.
    with RunLock(str(model_dir)):
      pass
  assert not _took_over_from(caplog, os.getpid())  # Released: not stale.


def test_unreadable_lock_file_still_one_line(tmp_path):
  path = tmp_path / "run.lock"
  fd = os.open(path, os.O_RDWR | os.O_CREAT)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, b"\x00not json\n{")
    with pytest.raises(RunLockedError) as raised:
      RunLock(str(tmp_path)).acquire()
  finally:
    os.close(fd)
  assert "\n" not in str(raised.value)
  assert "could not be read" in str(raised.value)
  assert "--model_dir" in str(raised.value)


def test_bad_task_name(tmp_path):
  with pytest.raises(ConfigError, match="cannot name a lock file"):
    RunLock(str(tmp_path), task="../chief")


# ---- Without flock (O_EXCL fallback) -----------------------------------------


@pytest.fixture
def no_flock(monkeypatch):
  def flock(fd, operation):
    del fd, operation
    raise OSError(errno.ENOLCK, "No locks available")
  monkeypatch.setattr(fcntl, "flock", flock)


def _write_record(tmp_path, record):
  with open(tmp_path / "run.lock", "w") as f:
    json.dump(record, f)


def test_fallback_acquire_and_release(tmp_path, no_flock):
  with RunLock(str(tmp_path)) as lock:
    with open(lock.path) as f:
      assert json.load(f)["pid"] == os.getpid()
    with pytest.raises(RunLockedError, match=f"pid {os.getpid()} "):
      RunLock(str(tmp_path)).acquire()
  assert os.listdir(tmp_path) == []


def test_fallback_takes_over_dead_pid(tmp_path, no_flock, caplog):
  dead = _dead_pid()
  _write_record(tmp_path, _record(dead))
  with caplog.at_level(logging.WARNING, logger="absl"):
    with RunLock(str(tmp_path)) as lock:
      with open(lock.path) as f:
        assert json.load(f)["pid"] == os.getpid()
  assert _took_over_from(caplog, dead), caplog.text
  assert os.listdir(tmp_path) == []  # Nothing set aside is left behind.


def test_fallback_refuses_live_pid(tmp_path, no_flock, sleeper):
  _write_record(tmp_path, _record(sleeper.pid))
  with pytest.raises(RunLockedError) as raised:
    RunLock(str(tmp_path)).acquire()
  message = str(raised.value)
  assert "\n" not in message
  assert f"pid {sleeper.pid} on host {socket.gethostname()}" in message
  assert "(python train.py --model_dir=old)" in message
  assert os.path.exists(tmp_path / "run.lock")


def test_fallback_refuses_other_host(tmp_path, no_flock):
  _write_record(tmp_path, _record(_dead_pid(), host="elsewhere"))
  with pytest.raises(RunLockedError) as raised:
    RunLock(str(tmp_path)).acquire()
  message = str(raised.value)
  assert "\n" not in message
  assert "on host elsewhere" in message
  assert f"delete {tmp_path / 'run.lock'}" in message
