"""The Bazel BUILD files cover every module, entry point and test.

BUILD and tests/BUILD are evaluated here (Starlark's BUILD dialect is
Python syntax) with stand-ins for `glob` and the rules that record each
target, then compared with the files on disk. Under `make test` that is the
checkout; under `bazel test` it is the test's runfiles (the files that
tests/BUILD gives this test as data).
"""

import pathlib
import re

import pytest

from tests.conftest import REPO_ROOT

ROOT = pathlib.Path(REPO_ROOT)


def _glob(package):
  """Bazel's `glob` for `package`: its files, none of a subpackage's."""
  base = ROOT / package

  def in_subpackage(path):
    return any((folder / "BUILD").exists()
               for folder in path.parents if base in folder.parents)

  def paths(patterns):
    return {p for pattern in patterns for p in base.glob(pattern)
            if p.is_file() and not in_subpackage(p)}

  def glob(include, exclude=()):
    return sorted(p.relative_to(base).as_posix()
                  for p in paths(include) - paths(exclude))

  return glob


def _targets(package):
  """{name: (rule, attributes)} of the targets `package`/BUILD declares.

  Macros are recorded as what they expand to: `pytest_tests` as a
  `py_test` per file, `console_script` as a `py_binary`.
  """
  targets = {}

  def rule(kind):
    def record(name, **attrs):
      assert name not in targets, f"{package}/BUILD: two targets {name}"
      targets[name] = (kind, attrs)
    return record

  def pytest_tests(srcs, **attrs):
    for src in srcs:
      rule("py_test")(src[:-len(".py")], srcs=[src], **attrs)

  def console_script(name, function, **attrs):
    rule("py_binary")(name, function=function, **attrs)

  names = dict(
      glob=_glob(package), load=lambda *args: None,
      package=lambda **kwargs: None, exports_files=lambda files: None,
      pytest_tests=pytest_tests, console_script=console_script,
      **{kind: rule(kind) for kind in (
          "py_library", "py_binary", "py_test", "filegroup")})
  path = ROOT / package / "BUILD"
  exec(compile(path.read_text(), str(path), "exec"), names)  # pylint: disable=exec-used
  return targets


def _console_scripts():
  """{name: "module:function"} of pyproject.toml's [project.scripts]."""
  text = (ROOT / "pyproject.toml").read_text()
  section = re.search(r"^\[project\.scripts\]\n(.*?)(?:^\[|\Z)", text,
                      re.M | re.S).group(1)
  return dict(re.findall(r'^([\w-]+) = "([^"]+)"$', section, re.M))


def _files(pattern):
  return {p.relative_to(ROOT).as_posix() for p in ROOT.glob(pattern)
          if p.is_file()}


def _srcs(targets, kind, prefix=""):
  return {prefix + src for rule, attrs in targets.values() if rule == kind
          for src in attrs.get("srcs", [])}


def test_every_test_file_has_a_py_test():
  tests = _targets("tests")
  missing = _files("tests/**/*_test.py") - _srcs(tests, "py_test", "tests/")
  assert not missing, f"tests/BUILD has no py_test for {sorted(missing)}"
  for name, (rule, attrs) in tests.items():
    if rule == "py_test":
      assert attrs["srcs"] == [name + ".py"], name
      assert ":support" in attrs["deps"], name


def test_every_test_helper_is_in_the_support_library():
  helpers = {f for f in _files("tests/**/*.py") if not f.endswith("_test.py")}
  assert "tests/conftest.py" in helpers
  missing = helpers - _srcs(_targets("tests"), "py_library", "tests/")
  assert not missing, f"tests/BUILD's :support misses {sorted(missing)}"


def test_every_module_is_in_the_tfvae_library():
  rule, attrs = _targets("")["tfvae"]
  assert rule == "py_library"
  modules = _files("tfvae/**/*.py")
  assert "tfvae/__init__.py" in modules
  missing = modules - set(attrs["srcs"])
  assert not missing, f"//:tfvae misses {sorted(missing)}"


def test_every_console_script_has_a_py_binary():
  scripts = _console_scripts()
  targets = _targets("")
  assert scripts
  for script, function in scripts.items():
    assert script in targets, f"BUILD has no console_script {script}"
    assert targets[script] == ("py_binary", {"function": function,
                                             "deps": [":tfvae"]}), script


@pytest.mark.parametrize("program", ["train.py", "benchmarks/*.py"])
def test_every_program_has_a_py_binary(program):
  programs = _files(program)
  assert programs
  missing = programs - _srcs(_targets(""), "py_binary")
  assert not missing, f"BUILD has no py_binary for {sorted(missing)}"


@pytest.mark.parametrize("package", ["", "tests"])
def test_local_deps_name_existing_targets(package):
  targets = _targets(package)
  local = {dep[1:] for _, attrs in targets.values()
           for dep in attrs.get("deps", []) if dep.startswith(":")}
  assert local <= set(targets)
