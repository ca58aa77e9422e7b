"""Runs one test file with pytest: the main of every `pytest_tests` target.

`python pytest_main.py tests/x_test.py [pytest args]`, started by Bazel in
the runfiles tree, which holds the repo's files the test depends on
(`tests/`, `tfvae/`, `train.py`, `configs/`, `pytest.ini`, ...). pytest runs
there with its rootdir at that tree's root, so `pytest.ini` applies and
`tests/conftest.py`'s REPO_ROOT is that root.
"""

import os
import sys

import pytest

# <runfiles>/<workspace>/tools/bazel/pytest_main.py -> <runfiles>/<workspace>
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def main(argv):
  """Runs pytest on `argv[1:]` and returns its exit code.

  Args:
    argv: this program's `sys.argv`: the test file, then pytest options.

  Returns:
    pytest's exit code (0 when every test passed).
  """
  # Set by `bazel run` only: train.py would move its runs there.
  os.environ.pop("BUILD_WORKING_DIRECTORY", None)
  # Bazel's test setup leaves HOME unset; ~ would be the real home.
  os.environ.setdefault("HOME", os.environ.get("TEST_TMPDIR", _ROOT))
  os.chdir(_ROOT)
  args = ["-q", "--rootdir", _ROOT, *argv[1:]]
  if os.environ.get("XML_OUTPUT_FILE"):  # Bazel's per-test-case report
    args.append("--junitxml=" + os.environ["XML_OUTPUT_FILE"])
  if os.environ.get("TESTBRIDGE_TEST_ONLY"):  # bazel test --test_filter=EXPR
    args += ["-k", os.environ["TESTBRIDGE_TEST_ONLY"]]
  return pytest.main(args)


if __name__ == "__main__":
  sys.exit(main(sys.argv))
