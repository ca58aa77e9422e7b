"""The README's Python examples run as written.

Every ```python block of README.md that trains (calls
`tfvae.train_and_evaluate`) runs in a fresh process, in an empty folder
that has the repo's `configs/`, as a user pasting it would run it.
"""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def training_examples():
  with open(os.path.join(REPO_ROOT, "README.md")) as f:
    blocks = _BLOCK.findall(f.read())
  return [b for b in blocks if "tfvae.train_and_evaluate(" in b]


def test_readme_has_the_training_examples():
  examples = training_examples()
  assert len(examples) >= 2  # The Python API and the custom networks.
  assert any("encoder=encoder" in e for e in examples)
  assert any("tfvae.load(" in e for e in examples)


@pytest.mark.parametrize("index", range(len(training_examples())))
def test_readme_example_runs(index, tmp_path):
  os.symlink(os.path.join(REPO_ROOT, "configs"), tmp_path / "configs")
  script = tmp_path / "example.py"
  script.write_text(training_examples()[index])
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get(
                 "PYTHONPATH", ""))
  result = subprocess.run([sys.executable, str(script)], cwd=tmp_path,
                          env=env, capture_output=True, text=True,
                          timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  # Each example prints the test NLL first: a finite number.
  first = result.stdout.split()[0]
  assert float(first) == float(first)
