"""MirroredStrategy on 2 logical CPUs matches the single-device run.

`aae` checks the loop's auxiliary step (its code discriminator) too.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

_SCRIPT = os.path.join(os.path.dirname(__file__),
                       "mirrored_equivalence_main.py")


def _run(clip_norm, model):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO_ROOT)
  done = subprocess.run([sys.executable, _SCRIPT, str(clip_norm), model],
                        capture_output=True, text=True, cwd=REPO_ROOT,
                        env=env, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("clip_norm, model",
                         [(0.0, "vae"), (1.0, "vae"), (0.0, "aae")])
def test_mirrored_matches_single_device(clip_norm, model):
  result = _run(clip_norm, model)
  assert result["replicas"] == [1, 2]
  assert result["steps"] == [12, 12]
  # The encoder, decoder and (aae) the discriminator's kernels and biases.
  assert result["num_weights"][0] == result["num_weights"][1] >= (
      10 if model == "aae" else 6), result
  # 12 Adam steps at lr 1e-2 move weights by ~0.1; equal runs differ only by
  # float summation order.
  assert result["max_weight_diff"] < 1e-4, result
  single, mirrored = result["validation_neg_elbo"]
  assert abs(single - mirrored) < 1e-3 * abs(single), result
