"""One writer per run folder: a lock file that names the process holding it.

Two processes training into one `--model_dir` corrupt each other silently:
each `tf.train.CheckpointManager` numbers, saves and deletes checkpoints
from its own view of the folder, so one run removes the other's checkpoints,
`checkpoint` ends up pointing at a mix of both, and summaries interleave. No
error is raised anywhere. `RunLock` makes the second process fail at once
with one line saying who holds the folder.

The lock is `<model_dir>/run.lock` (`run.<task>.lock` for a task other than
the chief: the workers of a multi-worker run share a folder, and each locks
its own file). It is held with `fcntl.flock` on a file descriptor kept open
for the life of the lock, so the operating system releases it when the
process ends, however it ends (`kill -9` included). The file holds JSON
naming the holder (`pid`, `host`, `started`, `command`, `task`), read by the
process that is refused. A file left behind by a process that died is taken
over, with a warning naming that process.

On filesystems without `flock` (some network mounts) the lock falls back to
creating the file exclusively (`O_CREAT | O_EXCL`); a leftover file is then
judged stale only when it names a process of this host that no longer runs.
"""

import datetime
import errno
import fcntl
import json
import os
import socket
import sys
import uuid

from absl import logging

from tfvae.errors import ConfigError
from tfvae.errors import RunLockedError

CHIEF = "chief"
# errno values of a filesystem that does not support flock.
_NO_FLOCK = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP})
# Tries before giving up when the lock file keeps being replaced under us.
_ATTEMPTS = 50
# Longest command shown in a message.
_MAX_COMMAND = 200


def lock_path(model_dir, task=CHIEF):
  """`<model_dir>/run.lock` for the chief, `<model_dir>/run.<task>.lock` else.

  Raises:
    ConfigError: when `task` is empty or not a plain file name part.
  """
  if not task or os.sep in task or (os.altsep and os.altsep in task):
    raise ConfigError(f"Task name {task!r} cannot name a lock file; use a "
                      "name such as 'chief' or 'worker-1'.")
  name = "run.lock" if task == CHIEF else f"run.{task}.lock"
  return os.path.join(model_dir, name)


class RunLock:
  """An exclusive lock on a run folder, held by one process at a time.

  Usage:

  ```python
  with RunLock(config.train.model_dir):
    ...  # train: nobody else writes checkpoints here meanwhile.
  ```

  Attributes:
    model_dir: the run folder (created by `acquire` if missing).
    task: `"chief"` or the task's name (e.g. `"worker-1"`).
    path: the lock file.
  """

  def __init__(self, model_dir, task=CHIEF):
    """Names the lock; nothing is touched until `acquire`.

    Args:
      model_dir: the run folder.
      task: `"chief"`, or the name of another task of a multi-worker run.

    Raises:
      ConfigError: when `task` cannot name a file.
    """
    self.model_dir = model_dir
    self.task = task
    self.path = lock_path(model_dir, task)
    self._fd = None

  @property
  def held(self):
    """Whether this object holds the lock now."""
    return self._fd is not None

  def acquire(self):
    """Takes the lock, or fails at once if a live process holds it.

    Returns:
      self.

    Raises:
      RunLockedError: naming the holder's pid, host, start time and command.
      ConfigError: when the lock file cannot be created.
      RuntimeError: when this object already holds the lock.
    """
    if self._fd is not None:
      raise RuntimeError(f"{self.path} is already held by this RunLock.")
    try:
      os.makedirs(self.model_dir, exist_ok=True)
    except OSError as e:
      raise ConfigError(f"Cannot create --model_dir={self.model_dir}: "
                        f"{e.strerror}; choose a writable folder.") from e
    for _ in range(_ATTEMPTS):
      try:
        fd, created = self._open_or_create()
      except FileNotFoundError:
        continue  # Removed between our two opens: try again.
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except OSError as e:
        holder = _parse(_read_fd(fd))
        same = is_current(fd, self.path)
        os.close(fd)
        if e.errno in _NO_FLOCK:
          if created:  # Our empty file would read as someone else's lock.
            os.remove(self.path)
          return self._acquire_exclusive()
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
          raise
        if same:
          raise RunLockedError(self._in_use(holder)) from None
        continue  # The holder released (removed) it meanwhile: try again.
      if not is_current(fd, self.path):
        # We locked a file that its last holder removed as it released it;
        # whoever opens the path now gets a new file. Lock that one.
        os.close(fd)
        continue
      previous = _parse(_read_fd(fd))
      self._fd = fd
      self._write_record()
      if previous is not None:
        self._warn_stale(previous)
      return self
    raise RunLockedError(self._contended())

  def release(self):
    """Removes the lock file and closes it; does nothing if not held.

    The file is removed while still locked, so a process waiting on it
    either locks a file that no longer has this name (and tries again on
    the new one) or finds no file and creates one.
    """
    if self._fd is None:
      return
    fd, self._fd = self._fd, None
    try:
      if is_current(fd, self.path):
        os.remove(self.path)
    except FileNotFoundError:
      pass
    finally:
      os.close(fd)

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc_info):
    self.release()

  # ---- Without flock --------------------------------------------------------

  def _acquire_exclusive(self):
    """`acquire` on a filesystem without flock: create the file exclusively.

    A leftover file is stale when it names a process of this host that no
    longer runs; it is then renamed aside (atomically, so of several
    processes taking it over at once one wins), checked to be the file
    judged stale, and removed. Without flock this is best effort: pid reuse
    or hosts sharing one name can still mislead it.
    """
    stale = None
    for _ in range(_ATTEMPTS):
      try:
        fd = self._open(os.O_RDWR | os.O_CREAT | os.O_EXCL)
      except FileExistsError:
        raw = _read_path(self.path)
        if raw is None:
          continue  # Released meanwhile.
        holder = _parse(raw)
        if holder is None or holder["host"] != socket.gethostname():
          raise RunLockedError(self._in_use(holder, no_flock=True)) from None
        if _pid_alive(holder["pid"]):
          raise RunLockedError(self._in_use(holder)) from None
        if self._remove_stale(raw):
          stale = holder
        continue
      self._fd = fd
      self._write_record()
      if stale is not None:
        self._warn_stale(stale)
      return self
    raise RunLockedError(self._contended())

  def _remove_stale(self, raw):
    """Removes the lock file if it still holds `raw`; True if it did."""
    aside = f"{self.path}.stale-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
      os.rename(self.path, aside)
    except FileNotFoundError:
      return False
    if _read_path(aside) == raw:
      os.remove(aside)
      return True
    # Another process took it over first and this was its new lock: put it
    # back (link fails if the name was taken again, which then wins).
    try:
      os.link(aside, self.path)
    except OSError:
      pass
    os.remove(aside)
    return False

  # ---- Helpers --------------------------------------------------------------

  def _open_or_create(self):
    """Opens the lock file, creating it if missing; `(fd, created)`."""
    try:
      return self._open(os.O_RDWR | os.O_CREAT | os.O_EXCL), True
    except FileExistsError:
      return self._open(os.O_RDWR), False

  def _open(self, flags):
    try:
      return os.open(self.path, flags, 0o644)
    except FileExistsError:
      raise
    except OSError as e:
      if isinstance(e, FileNotFoundError) and not flags & os.O_CREAT:
        raise  # Removed by its holder meanwhile; the caller tries again.
      raise ConfigError(f"Cannot create the lock file {self.path}: "
                        f"{e.strerror}; choose a writable --model_dir.") from e

  def _write_record(self):
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now().astimezone().isoformat(
            timespec="seconds"),
        "command": " ".join(sys.argv),
        "task": self.task,
    }
    data = json.dumps(record).encode()
    os.ftruncate(self._fd, 0)
    os.pwrite(self._fd, data, 0)
    os.fsync(self._fd)

  def _who(self):
    return (self.model_dir if self.task == CHIEF
            else f"{self.model_dir} (task {self.task})")

  def _in_use(self, holder, no_flock=False):
    """The one-line message of a lock held by `holder` (None: unreadable)."""
    advice = "wait for it to finish, stop it, or use another --model_dir"
    if holder is None:
      return (f"{self._who()} is in use by another process (its lock file "
              f"{self.path} could not be read); {advice}"
              + (f" (if no process uses it, delete {self.path})."
                 if no_flock else "."))
    text = (f"{self._who()} is in use by pid {holder['pid']} on host "
            f"{holder['host']} since {holder['started']} "
            f"({holder['command']}); {advice}")
    if no_flock:
      return (text + f" (this filesystem has no file locks: if that process "
              f"is gone, delete {self.path}).")
    return text + "."

  def _contended(self):
    return (f"{self._who()}: the lock file {self.path} kept changing while "
            "other processes took it; wait for them, or use another "
            "--model_dir.")

  def _warn_stale(self, holder):
    logging.warning(
        "Took over the lock of %s from pid %s on host %s (started %s), "
        "which is no longer running.", self._who(), holder["pid"],
        holder["host"], holder["started"])


def is_current(fd, path):
  """Whether `path` still names the file open as `fd` (not replaced)."""
  try:
    on_disk = os.stat(path)
  except FileNotFoundError:
    return False
  opened = os.fstat(fd)
  return (on_disk.st_dev, on_disk.st_ino) == (opened.st_dev, opened.st_ino)


def _read_fd(fd):
  chunks = []
  offset = 0
  while True:
    chunk = os.pread(fd, 65536, offset)
    if not chunk:
      return b"".join(chunks)
    chunks.append(chunk)
    offset += len(chunk)


def _read_path(path):
  """The bytes of `path`, or None when it does not exist."""
  try:
    with open(path, "rb") as f:
      return f.read()
  except FileNotFoundError:
    return None


def _one_line(value, limit=None):
  text = " ".join(str(value).split())
  if limit and len(text) > limit:
    text = text[:limit - 3] + "..."
  return text


def _parse(raw):
  """The holder dict of a lock file's bytes, or None if empty or unreadable.

  Returns:
    Dict with `pid` (int), `host`, `started`, `command` (one-line strings),
    or None.
  """
  if not raw:
    return None
  try:
    record = json.loads(raw.decode())
    pid = int(record["pid"])
  except (ValueError, TypeError, KeyError, UnicodeDecodeError):
    return None
  if not isinstance(record, dict) or pid <= 0:
    return None
  return {
      "pid": pid,
      "host": _one_line(record.get("host", "?")),
      "started": _one_line(record.get("started", "?")),
      "command": _one_line(record.get("command", "?"), _MAX_COMMAND),
  }


def _pid_alive(pid):
  """Whether a process `pid` runs on this host (pids of others: unknown)."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # Runs, as another user.
  return True
