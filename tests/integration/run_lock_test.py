"""One writer per run: a second `train.py` on a busy `--model_dir` stops.

A run on a folder another process holds exits at once with one line naming
that process and writes nothing; once the holder is killed, the next run
takes its stale lock over, with a warning.
"""

import json
import os
import signal
import subprocess
import sys

from tests.conftest import REPO_ROOT
from tests.integration import cli


_HOLDER = """
import sys, time
from tfvae.training import run_lock
run_lock.RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(600)
"""


def test_second_run_on_a_busy_folder_stops(shapes_dir, tmp_path):
  model_dir = str(tmp_path / "run")
  # Stands in for a first train.py (holding the lock is all it does here).
  first = subprocess.Popen([sys.executable, "-c", _HOLDER, model_dir],
                           cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
                           env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  try:
    assert first.stdout.readline().strip() == "locked"
    with open(os.path.join(model_dir, "run.lock")) as f:
      assert json.load(f)["pid"] == first.pid
    second = cli.run_train(*cli.shapes_args(shapes_dir, "--train_steps=25"),
                           model_dir=model_dir)
    assert second.returncode == 1
    errors = cli.error_lines(second)
    assert len(errors) == 1, cli.describe(second)
    assert f"in use by pid {first.pid}" in errors[0]
    assert "--model_dir" in errors[0]
    assert first.poll() is None  # The holder goes on.
    assert not os.path.exists(os.path.join(model_dir, "checkpoints"))
  finally:
    first.send_signal(signal.SIGKILL)
    first.wait()
  third = cli.run_train(*cli.shapes_args(shapes_dir, "--train_steps=25"),
                        model_dir=model_dir)
  cli.assert_succeeded(third)
  assert f"from pid {first.pid}" in cli.output(third)
  assert "no longer running" in cli.output(third)
  assert not os.path.exists(os.path.join(model_dir, "run.lock"))
