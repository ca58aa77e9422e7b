"""TensorFlow's start-up, without its error line on a machine with no GPU.

The `tensorflow` pip package is built with CUDA. On a machine with no NVIDIA
driver its start-up prints, before absl's logging is initialized (so
`TF_CPP_MIN_LOG_LEVEL` below 3 cannot hide it),

  E0000 00:00:1796186855.418769 24943 cuda_platform.cc:52] failed call to
  cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)

an error line for the expected absence of a GPU, which TensorFlow has just
reported as "Could not find cuda drivers on your machine, GPU will not be
used." It also prints its pre-initialization block twice: `import
tensorflow` loads `_pywrap_profiler_plugin.so`, which carries its own copy of
TensorFlow's platform code and absl logging, whose static initializers log
the oneDNN and CUDA-stub lines again. `CUDA_VISIBLE_DEVICES` changes neither:
cuInit is still called and fails the same way.

`import_tensorflow` imports TensorFlow and finds its devices (when cuInit is
called) with the process's stderr (file descriptor 2) passed through a line
filter that drops that cuInit line and the second copy of each start-up
line. Everything else passes through unchanged and at once, TensorFlow's
warnings included. The filter acts only where there is certainly no NVIDIA
GPU (`no_nvidia_driver`: no `/dev/nvidia*` device and no loadable
`libcuda.so.1`, which also covers WSL's GPUs), and not when the user asked
TensorFlow for all of its logs (`TF_CPP_MIN_LOG_LEVEL=0`, or its verbose
logging variables); otherwise it is a plain `import tensorflow`.

`default_log_level` is the entry points' `TF_CPP_MIN_LOG_LEVEL` default,
set before anything imports TensorFlow and only when the user has not set it.
"""

import ctypes
import glob
import os
import re
import sys
import threading

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# 2: TensorFlow's C++ INFO and WARNING lines are hidden, ERRORs shown.
DEFAULT_LOG_LEVEL = "2"
# Set by a user who debugs TensorFlow: then its output is left as it is.
_VERBOSE_VARIABLES = ("TF_CPP_MAX_VLOG_LEVEL", "TF_CPP_VMODULE")

# absl's line before its logging is initialized; each copy prints it once.
_ABSL_BANNER = (b"WARNING: All log messages before absl::InitializeLog() is "
                b"called are written to STDERR")
# A C++ log line: severity, date, time, thread, file:line] message.
_NATIVE_LINE = re.compile(rb"^([IWEF])\d{4} [\d:.]+\s+\d+ ([^\]\s]+)\] (.*)$")
_CUINIT_FAILED = re.compile(rb"^failed call to cuInit: ")

_F_SETPIPE_SZ = 1031  # Linux fcntl; a larger pipe, best effort.
_PIPE_BYTES = 1 << 20
_DRAIN_S = 10.0  # Seconds to wait for the last lines.


def default_log_level(environ=None):
  """Sets `TF_CPP_MIN_LOG_LEVEL` to `DEFAULT_LOG_LEVEL` unless it is set.

  Args:
    environ: the environment to change (default `os.environ`); call before
      TensorFlow is imported, which reads it once.
  """
  (os.environ if environ is None else environ).setdefault(
      LOG_LEVEL_VARIABLE, DEFAULT_LOG_LEVEL)


def no_nvidia_driver(dev_dir="/dev", load_library=ctypes.CDLL):
  """Whether this machine certainly has no NVIDIA GPU TensorFlow could use.

  Args:
    dev_dir: where the NVIDIA driver's device files (`nvidia0`, `nvidiactl`,
      ...) are, on Linux and in GPU containers.
    load_library: loads a shared library by name or raises `OSError`.

  Returns:
    True when there is no `nvidia*` device file and `libcuda.so.1` (the
    driver's library, which TensorFlow loads) cannot be loaded.
  """
  if glob.glob(os.path.join(dev_dir, "nvidia*")):
    return False
  try:
    load_library("libcuda.so.1")
  except OSError:
    return True
  return False  # E.g. WSL: a GPU through /dev/dxg, and its libcuda.


def filters_startup(environ=None, no_driver=None):
  """Whether `import_tensorflow` filters TensorFlow's start-up lines.

  Args:
    environ: the environment (default `os.environ`).
    no_driver: a stand-in for `no_nvidia_driver` (the default).

  Returns:
    False when the user asked for all of TensorFlow's logs or when the
    machine may have an NVIDIA GPU; else True.
  """
  environ = os.environ if environ is None else environ
  if environ.get(LOG_LEVEL_VARIABLE, "").strip() == "0":
    return False
  if any(environ.get(name) for name in _VERBOSE_VARIABLES):
    return False
  return (no_nvidia_driver if no_driver is None else no_driver)()


class StartupLines:
  """Decides which of TensorFlow's start-up lines on stderr are shown.

  Drops the "failed call to cuInit" error line and a start-up line (absl's
  banner, or a C++ log line with the same severity, source location and
  message) that was already shown. All other lines are kept.
  """

  def __init__(self):
    self._seen = set()

  def keep(self, line):
    """Whether to show `line` (bytes, without its newline)."""
    if line.rstrip() == _ABSL_BANNER:
      key = _ABSL_BANNER
    else:
      match = _NATIVE_LINE.match(line.rstrip(b"\r"))
      if match is None:
        return True
      severity, location, message = match.groups()
      if _CUINIT_FAILED.match(message):
        return False
      key = (severity, location, message)
    if key in self._seen:
      return False
    self._seen.add(key)
    return True


class _FilteredStderr:
  """Passes file descriptor 2 through `StartupLines` while it is entered.

  A thread forwards each kept line to the real stderr as soon as it is
  complete, so nothing waits for the `with` block to end; on exit the rest
  (an unfinished last line included) is forwarded before stderr is back.
  """

  def __enter__(self):
    sys.stderr.flush()
    self._stderr = os.dup(2)
    read_end, write_end = os.pipe()
    try:  # TensorFlow writes during imports, holding the GIL the thread needs.
      import fcntl  # pylint: disable=g-import-not-at-top; POSIX only.
      fcntl.fcntl(write_end, _F_SETPIPE_SZ, _PIPE_BYTES)
    except (ImportError, OSError):
      pass
    os.dup2(write_end, 2)
    os.close(write_end)
    self._thread = threading.Thread(target=self._forward, args=(read_end,),
                                    name="tfvae-stderr-filter", daemon=True)
    self._thread.start()
    return self

  def __exit__(self, *exc_info):
    sys.stderr.flush()
    os.dup2(self._stderr, 2)  # Closes the pipe's write end: the thread ends.
    self._thread.join(_DRAIN_S)
    if not self._thread.is_alive():  # Else a child holds the pipe; let it be.
      os.close(self._stderr)

  def _write(self, data):
    while data:
      data = data[os.write(self._stderr, data):]

  def _forward(self, read_end):
    lines = StartupLines()
    pending = b""
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
      while True:
        chunk = pipe.read(65536)
        if not chunk:
          break
        *complete, pending = (pending + chunk).split(b"\n")
        kept = [line + b"\n" for line in complete if lines.keep(line)]
        if kept:
          self._write(b"".join(kept))
    if pending and lines.keep(pending):
      self._write(pending)


def import_tensorflow(find_devices=True):
  """Imports TensorFlow, quietly where there is no NVIDIA GPU; returns it.

  Args:
    find_devices: also list the physical devices, which calls cuInit (TF
      does it on its first op otherwise); the runtime is not initialized,
      so logical devices and strategies can still be configured after.

  Returns:
    The `tensorflow` module.
  """
  default_log_level()
  if "tensorflow" in sys.modules or not filters_startup():
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf
  with _FilteredStderr():
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    if find_devices:
      tf.config.list_physical_devices()
  return tf
