"""BUILD lists a target for every module, binary and test."""

import pathlib
import re

from tests.conftest import REPO_ROOT

ROOT = pathlib.Path(REPO_ROOT)


def _targets():
  text = (ROOT / "BUILD").read_text()
  return {match.group(2): match.group(1) for match in re.finditer(
      r'(py_\w+)\(\n    name = "[^"]+",\n    srcs = \["([^"]+)"\]', text)}


def _python_files(folder):
  return sorted(str(p.relative_to(ROOT)) for p in (ROOT / folder).glob(
      "**/*.py"))


def test_every_library_module_has_a_py_library():
  targets = _targets()
  missing = [f for f in _python_files("tfvae") if targets.get(f) !=
             ("py_binary" if f.endswith("__main__.py") else "py_library")]
  assert not missing, f"run python tools/write_build.py; missing: {missing}"


def test_every_test_has_a_py_test():
  targets = _targets()
  tests = [f for f in _python_files("tests") if f.endswith("_test.py")]
  missing = [f for f in tests if targets.get(f) != "py_test"]
  assert not missing, f"run python tools/write_build.py; missing: {missing}"


def test_binaries():
  targets = _targets()
  binaries = ["train.py"] + _python_files("benchmarks")
  missing = [f for f in binaries if targets.get(f) != "py_binary"]
  assert not missing, f"run python tools/write_build.py; missing: {missing}"


def test_internal_deps_point_at_existing_targets():
  text = (ROOT / "BUILD").read_text()
  names = set(re.findall(r'name = "([^"]+)"', text))
  deps = set(re.findall(r'"(:[^"]+)"', text))
  assert {d[1:] for d in deps} <= names
