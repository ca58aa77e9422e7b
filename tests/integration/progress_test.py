"""Progress bars: training's and the final evaluation's, on a terminal only."""

import os
import pty
import subprocess
import sys

from tests.conftest import REPO_ROOT
from tests.integration import cli

_IW_SAMPLES = 20


def _run_on_a_terminal(argv, timeout):
  """Runs `argv` with stdout and stderr on a pseudo-terminal; returns
  `(exit code, everything it printed)`."""
  leader, follower = pty.openpty()
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", COLUMNS="120")
  process = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdin=follower,
                             stdout=follower, stderr=follower)
  os.close(follower)
  chunks = []
  while True:
    try:
      chunk = os.read(leader, 65536)
    except OSError:  # EIO: the child closed the terminal.
      break
    if not chunk:
      break
    chunks.append(chunk)
  os.close(leader)
  return process.wait(timeout=timeout), b"".join(chunks).decode(
      errors="replace")


def test_terminal_shows_training_and_evaluation_progress(shapes_dir,
                                                         tmp_path):
  code, printed = _run_on_a_terminal(
      [sys.executable, cli.TRAIN_PY,
       *cli.shapes_args(shapes_dir, "--train_steps=50",
                        f"--eval_iw_samples={_IW_SAMPLES}",
                        "--eval_max_examples=400"),
       f"--model_dir={tmp_path / 'run'}"], cli.TIMEOUT_S)
  assert code == 0, printed[-3000:]
  assert "Epoch 1/" in printed
  header = (f"Evaluating 400 test examples (log p(x) with {_IW_SAMPLES} "
            "importance samples each)")
  assert header in printed
  after = printed[printed.index(header):]
  # Keras's bar counts examples; the batch size of SMALL is 200.
  assert "200/400" in after and "400/400" in after


def test_no_progress_bar_when_output_is_not_a_terminal(bernoulli_run):
  stdout = bernoulli_run.result.stdout
  assert "Evaluating" not in stdout
  assert "Epoch 1/" not in stdout
