"""One writer per run: a second `train.py` on a busy `--model_dir` stops.

The same command launched twice exits at once with one line naming the
other process; once that process is killed, the next run takes its stale
lock over (with a warning) and resumes from its checkpoint.
"""

import json
import os
import signal
import subprocess
import sys
import time

from tests.conftest import REPO_ROOT
from tests.integration import cli


def test_second_run_on_a_busy_folder_stops(shapes_dir, tmp_path):
  model_dir = str(tmp_path / "run")
  args = cli.shapes_args(shapes_dir, "--train_steps=100000",
                         "--checkpoint_steps=50")
  first = subprocess.Popen(
      [sys.executable, cli.TRAIN_PY, *args, f"--model_dir={model_dir}"],
      cwd=REPO_ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    deadline = time.time() + cli.TIMEOUT_S
    while not cli.checkpoint_numbers(model_dir):
      assert first.poll() is None and time.time() < deadline
      time.sleep(0.2)
    with open(os.path.join(model_dir, "run.lock")) as f:
      assert json.load(f)["pid"] == first.pid
    second = cli.run_train(*args, model_dir=model_dir)
    assert second.returncode == 1
    errors = cli.error_lines(second)
    assert len(errors) == 1, cli.describe(second)
    assert f"in use by pid {first.pid}" in errors[0]
    assert "--model_dir" in errors[0]
    assert first.poll() is None  # The first run goes on.
  finally:
    first.send_signal(signal.SIGKILL)
    first.wait()
  saved = cli.checkpoint_numbers(model_dir)
  third = cli.run_train(*cli.shapes_args(shapes_dir,
                                         f"--train_steps={max(saved) + 25}"),
                        model_dir=model_dir)
  cli.assert_succeeded(third)
  assert f"from pid {first.pid}" in cli.output(third)
  assert "no longer running" in cli.output(third)
  assert not os.path.exists(os.path.join(model_dir, "run.lock"))
