"""A diverging run stops at the first non-finite loss and keeps its checkpoint.

The divergence is made through the command line: resuming `short_run` with
`--weight_decay=1e30` (decoupled decay, not a resume-checked setting) turns
the first update after step 100 into weights ~1e27 times too large, so the
loss of the next step, 101, overflows. (A huge `--learning_rate` would not
do: on resume Adam's rate comes from the checkpoint.)
"""

import os
import re

import numpy as np

from tests.integration import cli
from tests.integration import conftest


def test_nan_loss_stops_training_and_keeps_last_checkpoint(short_run,
                                                           shapes_dir,
                                                           tmp_path):
  model_dir = conftest.copy_run(short_run, tmp_path / "run")
  checkpoints = os.path.join(model_dir, "checkpoints")
  before = cli.file_digests(checkpoints)

  diverged = cli.run_train(
      *conftest.short_run_args(shapes_dir, "--train_steps=200",
                               "--weight_decay=1e30"),
      model_dir=model_dir)

  assert diverged.returncode != 0, cli.describe(diverged)
  assert "Traceback" not in cli.output(diverged)
  lines = cli.error_lines(diverged)
  assert len(lines) == 1, cli.describe(diverged)
  assert lines[0].startswith("train.py: error:")
  assert "NaN or Inf" in lines[0]
  assert re.search(r"\bstep 101\b", lines[0]), lines[0]
  assert "ckpt-100" in lines[0]
  # Nothing saved after the divergence; the checkpoint is byte-for-byte the
  # one the short run wrote, loadable and finite.
  assert cli.file_digests(checkpoints) == before
  assert cli.checkpoint_numbers(model_dir) == [56, 84, 100]
  arrays = cli.checkpoint_arrays(os.path.join(checkpoints, "ckpt-100"))
  assert arrays["step/.ATTRIBUTES/VARIABLE_VALUE"] == conftest.SHORT_STEPS
  assert all(np.all(np.isfinite(a)) for a in arrays.values())

  # As the message says: run again (without the bad setting) to resume.
  resumed = cli.run_train(
      *conftest.short_run_args(shapes_dir, "--train_steps=112"),
      model_dir=model_dir)
  cli.assert_succeeded(resumed)
  assert re.search(r"Resuming from \S*ckpt-100 at step 100\b",
                   resumed.stderr), cli.describe(resumed)
  assert cli.checkpoint_numbers(model_dir) == [84, 100, 112]
