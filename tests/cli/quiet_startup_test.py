"""Tests of `tfvae.cli.quiet_startup`: TensorFlow's start-up on stderr.

A stand-in `tensorflow` package (written to a temporary folder) prints what
TensorFlow 2.21 prints on a machine without an NVIDIA driver, so the filter
is checked on every machine in a fraction of a second; one tiny `train.py`
run checks the real thing.
"""

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO_ROOT
from tests.integration import cli
from tests.integration import shapes
from tfvae.cli import quiet_startup

BANNER = ("WARNING: All log messages before absl::InitializeLog() is called "
          "are written to STDERR")
ONEDNN = ("I0000 00:00:1796186853.734672   24943 port.cc:153] oneDNN custom "
          "operations are on.")
NO_DRIVER = ("I0000 00:00:1796186853.735409   24943 cudart_stub.cc:31] Could "
             "not find cuda drivers on your machine, GPU will not be used.")
CUINIT = ("E0000 00:00:1796186855.418769   24943 cuda_platform.cc:52] failed "
          "call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: "
          "UNKNOWN ERROR (303)")
REAL_WARNING = ("W0000 00:00:1796186855.5   24943 some_kernel.cc:7] a real "
                "warning")
REAL_ERROR = ("E0000 00:00:1796186855.6   24943 some_kernel.cc:9] a real "
              "error")


def _keep(lines):
  startup = quiet_startup.StartupLines()
  return [line for line in lines if startup.keep(line.encode())]


def test_drops_the_cuinit_line_and_the_second_block():
  first = [BANNER, ONEDNN, NO_DRIVER]
  # The second copy has its own timestamps.
  second = [BANNER, ONEDNN.replace("853.734672", "856.234315"),
            NO_DRIVER.replace("853.735409", "856.235430")]
  assert _keep(first + second + [CUINIT]) == first


def test_keeps_real_warnings_errors_and_python_output():
  lines = [BANNER, REAL_WARNING, REAL_ERROR, "Traceback (most recent call",
           "  File \"x.py\", line 1", "UserWarning: something", ""]
  assert _keep(lines) == lines
  # A different message from the same place is not a repeat.
  other = REAL_ERROR.replace("a real error", "another error")
  assert _keep([REAL_ERROR, other]) == [REAL_ERROR, other]


def test_default_log_level_respects_the_users_setting():
  environ = {}
  quiet_startup.default_log_level(environ)
  assert environ == {"TF_CPP_MIN_LOG_LEVEL": quiet_startup.DEFAULT_LOG_LEVEL}
  for value in ("0", "1", "3"):
    environ = {"TF_CPP_MIN_LOG_LEVEL": value}
    quiet_startup.default_log_level(environ)
    assert environ == {"TF_CPP_MIN_LOG_LEVEL": value}


def _not_loadable(name):
  raise OSError(f"{name}: cannot open shared object file")


def test_no_nvidia_driver_needs_no_device_and_no_libcuda(tmp_path):
  loaded = []
  assert quiet_startup.no_nvidia_driver(str(tmp_path), _not_loadable)
  # A GPU machine or container: device files.
  (tmp_path / "nvidiactl").touch()
  assert not quiet_startup.no_nvidia_driver(str(tmp_path), _not_loadable)
  # WSL: no device files, the driver's libcuda.so.1 loads.
  os.remove(tmp_path / "nvidiactl")
  assert not quiet_startup.no_nvidia_driver(str(tmp_path), loaded.append)
  assert loaded == ["libcuda.so.1"]


@pytest.mark.parametrize("environ, no_driver, filters", [
    ({}, True, True),
    ({"TF_CPP_MIN_LOG_LEVEL": "2"}, True, True),
    ({"TF_CPP_MIN_LOG_LEVEL": "3"}, True, True),
    ({}, False, False),  # A GPU, or maybe one: leave TensorFlow alone.
    ({"TF_CPP_MIN_LOG_LEVEL": "0"}, True, False),  # The user wants it all.
    ({"TF_CPP_MAX_VLOG_LEVEL": "1"}, True, False),
    ({"TF_CPP_VMODULE": "gpu_device=2"}, True, False),
])
def test_filters_only_without_a_driver_and_unless_asked(environ, no_driver,
                                                        filters):
  assert quiet_startup.filters_startup(environ, lambda: no_driver) == filters


# `import tensorflow` as TensorFlow 2.21 does it without a driver (written to
# file descriptor 2 by C++, both blocks at import, cuInit when the devices
# are listed), then Python output, a real error and a line without newline.
_FAKE_TENSORFLOW = f"""
import os, sys
os.write(2, {(BANNER + chr(10) + ONEDNN + chr(10) + NO_DRIVER + chr(10)) * 2
             !r}.encode())
sys.stderr.write("a python warning\\n")
if os.environ.get("FAKE_TF_FAILS"):
  raise ImportError("fake TensorFlow fails to import")

class config:
  @staticmethod
  def list_physical_devices():
    os.write(2, {(CUINIT + chr(10) + REAL_ERROR + chr(10)) !r}.encode())
    os.write(2, b"no newline")
    return []
"""

_PROGRAM = textwrap.dedent("""
    import os, sys
    from tfvae.cli import quiet_startup
    quiet_startup.no_nvidia_driver = lambda: True
    try:
      tf = quiet_startup.import_tensorflow()
    except ImportError as e:
      print(f"raised: {e}", file=sys.stderr)
    print("stderr after", file=sys.stderr, flush=True)
    os.write(2, ("fd 2 after " + os.environ["TF_CPP_MIN_LOG_LEVEL"] + "\\n")
             .encode())
""")


def _run_with_fake_tensorflow(tmp_path, **environ):
  package = tmp_path / "tensorflow"
  package.mkdir(exist_ok=True)
  (package / "__init__.py").write_text(_FAKE_TENSORFLOW)
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  env.update(PYTHONPATH=os.pathsep.join([str(tmp_path), REPO_ROOT]),
             **environ)
  return subprocess.run([sys.executable, "-c", _PROGRAM], cwd=tmp_path,
                        env=env, capture_output=True, text=True, timeout=60,
                        check=False)


def test_import_tensorflow_filters_file_descriptor_2(tmp_path):
  result = _run_with_fake_tensorflow(tmp_path)
  assert result.returncode == 0, result.stderr
  assert result.stderr.splitlines() == [
      BANNER, ONEDNN, NO_DRIVER, "a python warning", REAL_ERROR,
      "no newlinestderr after",
      f"fd 2 after {quiet_startup.DEFAULT_LOG_LEVEL}"]


def test_import_error_is_shown_and_stderr_restored(tmp_path):
  result = _run_with_fake_tensorflow(tmp_path, FAKE_TF_FAILS="1",
                                     TF_CPP_MIN_LOG_LEVEL="1")
  assert result.returncode == 0, result.stderr
  assert result.stderr.splitlines() == [
      BANNER, ONEDNN, NO_DRIVER, "a python warning",
      "raised: fake TensorFlow fails to import", "stderr after",
      "fd 2 after 1"]


def test_level_zero_shows_everything(tmp_path):
  result = _run_with_fake_tensorflow(tmp_path, TF_CPP_MIN_LOG_LEVEL="0")
  assert result.returncode == 0, result.stderr
  assert result.stderr.count(BANNER) == 2


def test_a_cpu_run_prints_no_error_line_and_no_repeats(tmp_path):
  """`train.py` as a user runs it: TensorFlow's start-up lines once, none
  of them an error; on a GPU machine, no cuInit failure."""
  data_dir = tmp_path / "data"
  data_dir.mkdir()
  shapes.write_npz(str(data_dir / "train.npz"), 200, seed=1)
  shapes.write_npz(str(data_dir / "test.npz"), 100, seed=2)
  result = cli.run_train(
      "--dataset=npz", f"--data_dir={data_dir}", "--hidden_dims=16",
      "--latent_dim=2", "--batch_size=50", "--train_steps=2",
      "--steps_per_loop=1", "--eval_iw_samples=2", "--eval_batch_size=100",
      "--frechet_samples=0", "--noimages", "--noexport",
      model_dir=str(tmp_path / "run"))
  cli.assert_succeeded(result)
  lines = result.stderr.splitlines()
  assert not [line for line in lines if "cuInit" in line or
              line.startswith(("E0000", "F0000"))], cli.describe(result)
  if quiet_startup.no_nvidia_driver():  # TensorFlow prints its block twice.
    assert lines.count(BANNER) <= 1, cli.describe(result)
    native = [line.split("]", 1)[1] for line in lines
              if line[:1] in "IWEF" and line[1:5] == "0000"]
    assert len(native) == len(set(native)), cli.describe(result)
