"""`pip install .` gives a package and console scripts that work anywhere.

The wheel is built from a copy of the sources, so no `build/` or
`*.egg-info` lands in the repo, and installed with `--no-deps` into a fresh
virtual environment that sees the project venv's packages (TensorFlow, absl,
...) through a `.pth` file. The programs then run from a folder outside the
repo, where only the installed package can be imported.
"""

import ast
import importlib.metadata
import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from tests.conftest import REPO_ROOT

ROOT = pathlib.Path(REPO_ROOT)
TIMEOUT_S = 120
SCRIPTS = {"tfvae-train": "tfvae.cli.train:run",
           "tfvae-export": "tfvae.export.__main__:run",
           "tfvae-score": "tfvae.cli.score:run"}


def _version_in_source():
  """`__version__` of tfvae/__init__.py, read without importing it."""
  tree = ast.parse((ROOT / "tfvae" / "__init__.py").read_text())
  for node in tree.body:
    if (isinstance(node, ast.Assign) and len(node.targets) == 1
        and getattr(node.targets[0], "id", None) == "__version__"):
      return ast.literal_eval(node.value)
  raise AssertionError("tfvae/__init__.py has no literal __version__")


def _env():
  """The environment minus what would let the repo's tfvae be imported."""
  env = {k: v for k, v in os.environ.items()
         if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
  env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", TF_CPP_MIN_LOG_LEVEL="2")
  return env


def _run(argv, cwd):
  return subprocess.run([str(a) for a in argv], cwd=cwd, env=_env(),
                        capture_output=True, text=True, timeout=TIMEOUT_S,
                        check=False)


def _check(result):
  assert result.returncode == 0, (
      f"{result.args} exited {result.returncode}\n--- stdout\n"
      f"{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}")
  return result


def _isolation_flags():
  """`--no-build-isolation` when the venv has setuptools >= 64, else none.

  Without it pip fetches setuptools for an isolated build (Python 3.12+
  venvs come without setuptools).
  """
  if importlib.util.find_spec("setuptools") is None:
    return []
  major = int(importlib.metadata.version("setuptools").split(".")[0])
  return ["--no-build-isolation"] if major >= 64 else []


def _copy_sources(destination):
  """What a build needs from the repo (pyproject.toml, README.md, tfvae/)."""
  destination.mkdir()
  shutil.copy(ROOT / "pyproject.toml", destination)
  shutil.copy(ROOT / "README.md", destination)
  shutil.copytree(ROOT / "tfvae", destination / "tfvae",
                  ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
  return destination


def _fresh_venv(path):
  """A virtual environment without pip; returns its python."""
  _check(_run([sys.executable, "-m", "venv", "--without-pip", path], "/"))
  return path / "bin" / "python"


def _pip_into(python, *args):
  """Runs this venv's pip on the environment of `python` (pip runs there).

  `--ignore-installed`: the project venv's own tfvae, visible through
  `_see_project_packages`, is neither kept nor uninstalled.
  """
  return _check(_run([sys.executable, "-m", "pip", "--python", python,
                      "install", "--quiet", "--no-deps", "--ignore-installed",
                      *args], "/"))


def _see_project_packages(python):
  """Makes the project venv's site-packages importable from `python`.

  A `.pth` path line does not run the `.pth` files of the folder it adds,
  so an editable tfvae installed in the project venv stays invisible.
  """
  purelib = _check(_run([python, "-c", "import sysconfig; "
                         "print(sysconfig.get_path('purelib'))"],
                        "/")).stdout.strip()
  folders = sorted({sysconfig.get_path("purelib"),
                    sysconfig.get_path("platlib")})
  pathlib.Path(purelib, "project_venv.pth").write_text(
      "".join(f"{folder}\n" for folder in folders))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
  """The path of the wheel `pip wheel` builds from the sources."""
  folder = tmp_path_factory.mktemp("wheel")
  source = _copy_sources(folder / "src")
  _check(_run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
               *_isolation_flags(), "--wheel-dir", folder / "dist", source],
              folder))
  wheels = list((folder / "dist").glob("tfvae-*.whl"))
  assert len(wheels) == 1, wheels
  return wheels[0]


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
  """(venv folder, a working folder outside the repo) with the wheel in."""
  folder = tmp_path_factory.mktemp("installed")
  python = _fresh_venv(folder / "venv")
  _see_project_packages(python)
  _pip_into(python, "--no-index", wheel)
  (folder / "work").mkdir()
  return folder / "venv", folder / "work"


def test_pyproject_agrees_with_requirements_and_init():
  tomllib = pytest.importorskip("tomllib")
  with open(ROOT / "pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]
  runtime = []
  for line in (ROOT / "requirements.txt").read_text().splitlines():
    if line.strip() == "# Tests.":  # Test-only dependencies follow.
      break
    line = line.split("#", 1)[0].strip()
    if line:
      runtime.append(line)
  assert project["dependencies"] == runtime
  assert project["scripts"] == SCRIPTS
  assert project["requires-python"] == ">=3.10"


def test_wheel_holds_every_module_and_nothing_else(wheel):
  with zipfile.ZipFile(wheel) as archive:
    names = archive.namelist()
    metadata = archive.read(next(n for n in names
                                 if n.endswith(".dist-info/METADATA")))
    entry_points = archive.read(next(
        n for n in names if n.endswith(".dist-info/entry_points.txt")))
  modules = sorted(str(p.relative_to(ROOT)) for p in
                   (ROOT / "tfvae").glob("**/*.py"))
  packaged = sorted(n for n in names if not n.split("/")[0].endswith(
      ".dist-info"))
  assert packaged == modules
  version = re.search(rb"^Version: (\S+)$", metadata, re.M).group(1)
  assert version.decode() == _version_in_source()
  for script, target in SCRIPTS.items():
    assert f"{script} = {target}".encode() in entry_points


def test_installed_package_is_imported_outside_the_repo(installed):
  venv, work = installed
  result = _check(_run([venv / "bin" / "python", "-c",
                        "import importlib.metadata, tfvae; "
                        "print(tfvae.__file__); "
                        "print(importlib.metadata.version('tfvae'))"], work))
  path, version = result.stdout.split()
  assert pathlib.Path(path).is_relative_to(venv), path
  assert not pathlib.Path(path).is_relative_to(ROOT), path
  assert version == _version_in_source()


def test_tfvae_train_helpshort(installed):
  venv, work = installed
  result = _check(_run([venv / "bin" / "tfvae-train", "--helpshort"], work))
  for flag in ("--model_dir", "--flagfile", "--latent_dim", "--epochs"):
    assert flag in result.stdout, result.stdout[-3000:]
  assert "tfvae-train --flagfile" in result.stdout


def test_tfvae_train_errors_name_the_program(installed):
  venv, work = installed
  result = _run([venv / "bin" / "tfvae-train", "latent_dim=4"], work)
  assert result.returncode == 1
  assert ("tfvae-train: error: unexpected arguments ['latent_dim=4']"
          in result.stderr), result.stderr
  assert "Traceback" not in result.stderr
  assert not os.listdir(work)


def test_tfvae_export_helpshort(installed):
  venv, work = installed
  result = _check(_run([venv / "bin" / "tfvae-export", "--helpshort"], work))
  for flag in ("--model_dir", "--export_dir", "--tflite_quantization"):
    assert flag in result.stdout, result.stdout


def test_tfvae_score_helpshort(installed):
  if not (ROOT / "tfvae" / "cli" / "score.py").exists():
    pytest.skip("tfvae/cli/score.py is not written yet")
  venv, work = installed
  _check(_run([venv / "bin" / "tfvae-score", "--helpshort"], work))


def test_editable_install(tmp_path):
  """`pip install -e .` (what `make setup` does) imports the sources."""
  source = _copy_sources(tmp_path / "src")
  python = _fresh_venv(tmp_path / "venv")
  _see_project_packages(python)  # Also lends it setuptools to build with.
  _pip_into(python, *_isolation_flags(), "--editable", source)
  (tmp_path / "work").mkdir()
  result = _check(_run([python, "-c", "import tfvae; print(tfvae.__file__)"],
                       tmp_path / "work"))
  assert result.stdout.strip() == str(source / "tfvae" / "__init__.py")
  result = _check(_run([tmp_path / "venv" / "bin" / "tfvae-train",
                        "--helpshort"], tmp_path / "work"))
  assert "--model_dir" in result.stdout


def test_project_venv_imports_the_repo_from_anywhere(tmp_path):
  """After `make setup`, the venv's python imports this repo's tfvae."""
  try:
    importlib.metadata.distribution("tfvae")
  except importlib.metadata.PackageNotFoundError:
    pytest.skip("tfvae is not installed in this venv; run make setup")
  result = _check(_run([sys.executable, "-c",
                        "import tfvae; print(tfvae.__file__)"], tmp_path))
  # Real paths: under `bazel test`, ROOT is a tree of links to the checkout.
  assert (os.path.realpath(result.stdout.strip())
          == os.path.realpath(ROOT / "tfvae" / "__init__.py"))
