"""Chooses the `tf.distribute` strategy a run asks for.

`multi_worker` is `tf.distribute.MultiWorkerMirroredStrategy` configured from
`TF_CONFIG`, the variable Kubernetes TFJob, Vertex AI and SageMaker set:

  TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]},
              "task": {"type": "worker", "index": 0}}'

Worker 0 (or a `chief` task, when the cluster has one) is the chief. The
strategy has to be created before TensorFlow runs anything else in the
process, and creating it waits until every worker has started; a worker
that waits longer than `--worker_timeout_s` stops with a `WorkerTimeoutError`
naming the addresses it could not reach. A worker that stops answering
during training (its heartbeats stop for `--worker_timeout_s`) makes the
others stop too, with the last checkpoint intact: rerunning the same command
on every worker resumes from the chief's checkpoint.
"""

import json
import os
import socket
import threading
import time

import tensorflow as tf
from tensorflow.python.eager import context  # For the coordination timeouts.

from tfvae.errors import ConfigError
from tfvae.errors import TrainingError

TF_CONFIG = "TF_CONFIG"
_TASK_TYPES = ("chief", "worker")
# Workers that finished wait this long at exit for the others (the chief
# evaluates and exports after training).
_SHUTDOWN_TIMEOUT_S = 24 * 3600


class WorkerTimeoutError(ConfigError):
  """The other workers did not come up in time."""


class WorkerLostError(TrainingError):
  """A peer stopped answering mid-training; the runtime cannot recover."""
  fatal = True


def make_strategy(name, worker_timeout_s=300):
  """The strategy for `--strategy`.

  Args:
    name: `default` (the current default strategy: one device), `mirrored`
      (synchronous data parallelism over all local GPUs, or over all logical
      CPUs when there are no GPUs and several CPUs are configured) or
      `multi_worker` (over the workers of `TF_CONFIG`).
    worker_timeout_s: how long `multi_worker` waits for the other workers.

  Returns:
    A `tf.distribute.Strategy`.

  Raises:
    ConfigError: `TF_CONFIG` is missing or malformed.
    WorkerTimeoutError: the other workers could not be reached in time.
  """
  if name == "mirrored":
    if tf.config.list_logical_devices("GPU"):
      return tf.distribute.MirroredStrategy()
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=cpus)
  if name == "multi_worker":
    return _multi_worker(worker_timeout_s)
  return tf.distribute.get_strategy()


def read_tf_config(environ=None):
  """Parses and checks `TF_CONFIG` for a multi-worker run.

  Args:
    environ: the environment (default `os.environ`).

  Returns:
    `(workers, task_type, index)`: every task's address in cluster order
    (chief first), and this task's type and index.

  Raises:
    ConfigError: one line naming what is wrong and how to write it.
  """
  example = ('e.g. TF_CONFIG=\'{"cluster": {"worker": ["host0:12345", '
             '"host1:12345"]}, "task": {"type": "worker", "index": 0}}\'')
  raw = (os.environ if environ is None else environ).get(TF_CONFIG)
  if not raw:
    raise ConfigError(f"--strategy=multi_worker needs {TF_CONFIG} naming the "
                      f"cluster and this task; set it, {example}.")
  try:
    spec = json.loads(raw)
  except json.JSONDecodeError as e:
    raise ConfigError(f"{TF_CONFIG} is not valid JSON ({e}); {example}.")
  cluster = spec.get("cluster") if isinstance(spec, dict) else None
  task = spec.get("task") if isinstance(spec, dict) else None
  if not isinstance(cluster, dict) or not isinstance(task, dict):
    raise ConfigError(f"{TF_CONFIG} needs a \"cluster\" and a \"task\" "
                      f"object; {example}.")
  unknown = sorted(set(cluster) - set(_TASK_TYPES) - {"evaluator", "ps"})
  if unknown or "ps" in cluster:
    raise ConfigError(
        f"{TF_CONFIG} names task type(s) {', '.join(unknown or ['ps'])}; "
        "multi_worker uses \"worker\" (and optionally one \"chief\").")
  workers = []
  for task_type in _TASK_TYPES:
    addresses = cluster.get(task_type, [])
    if not isinstance(addresses, list) or not all(
        isinstance(a, str) and _split_address(a) for a in addresses):
      raise ConfigError(
          f"{TF_CONFIG} cluster.{task_type} must be a list of \"host:port\" "
          f"strings, not {json.dumps(addresses)}.")
    workers += addresses
  if not workers:
    raise ConfigError(f"{TF_CONFIG} lists no workers; {example}.")
  task_type, index = task.get("type"), task.get("index")
  if task_type not in cluster or task_type not in _TASK_TYPES:
    raise ConfigError(
        f"{TF_CONFIG} task type {json.dumps(task_type)} is not in the "
        f"cluster ({', '.join(t for t in _TASK_TYPES if t in cluster)}); "
        "set task.type to one of them.")
  count = len(cluster[task_type])
  if not isinstance(index, int) or isinstance(index, bool) or not (
      0 <= index < count):
    raise ConfigError(
        f"{TF_CONFIG} task index {json.dumps(index)} is out of range: the "
        f"cluster has {count} {task_type} task(s), indices 0..{count - 1}.")
  return workers, task_type, index


def _split_address(address):
  host, _, port = address.rpartition(":")
  return (host, int(port)) if host and port.isdigit() else None


def _unreachable(addresses, own):
  """The addresses among `addresses` (less `own`) refusing TCP connections."""
  down = []
  for address in addresses:
    if address == own:
      continue
    try:
      socket.create_connection(_split_address(address), timeout=1).close()
    except OSError:
      down.append(address)
  return down


def _multi_worker(timeout_s):
  workers, task_type, index = read_tf_config()
  spec = json.loads(os.environ[TF_CONFIG])
  own = spec["cluster"][task_type][index]
  leader = ("/job:chief/replica:0/task:0" if "chief" in spec["cluster"]
            else "/job:worker/replica:0/task:0")
  # The constructor waits for the other workers inside TensorFlow's runtime
  # without a timeout (and holding the interpreter), so first make sure
  # they are up.
  wait_for_workers(workers, own, timeout_s, f"{task_type}:{index}")
  context.context().configure_coordination_service(
      service_type="standalone", service_leader=leader,
      cluster_register_timeout_in_ms=timeout_s * 1000,
      heartbeat_timeout_in_ms=timeout_s * 1000,
      shutdown_barrier_timeout_in_ms=_SHUTDOWN_TIMEOUT_S * 1000)
  try:
    return tf.distribute.MultiWorkerMirroredStrategy()
  except tf.errors.OpError as e:
    raise WorkerTimeoutError(
        f"Worker {task_type}:{index} ({own}) could not join the cluster "
        f"{', '.join(workers)} ({type(e).__name__}); start every worker "
        f"with the same {TF_CONFIG} cluster, or raise --worker_timeout_s.")


def wait_for_workers(workers, own, timeout_s, name):
  """Waits until every other worker's address accepts connections.

  Each worker listens on its own address meanwhile (TensorFlow's server
  takes the port over afterwards), so a pair started in any order finds
  each other.

  Args:
    workers: every task's `host:port`.
    own: this task's address (listened on, not waited for).
    timeout_s: seconds to wait.
    name: this task, e.g. `worker:1`, for messages.

  Raises:
    ConfigError: this task's port is taken.
    WorkerTimeoutError: some address did not answer in time (named).
  """
  listener = socket.socket()
  listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
  try:
    listener.bind(("", _split_address(own)[1]))
  except OSError as e:
    listener.close()
    raise ConfigError(
        f"Worker {name} cannot listen on {own} ({e.strerror}); another "
        f"process uses the port: stop it or change {TF_CONFIG}.") from e
  listener.listen(16)
  listener.settimeout(0.2)
  stop = threading.Event()

  def accept():
    while not stop.is_set():
      try:
        listener.accept()[0].close()
      except OSError:
        continue

  thread = threading.Thread(target=accept, daemon=True)
  thread.start()
  deadline = time.monotonic() + timeout_s
  waiting = [a for a in workers if a != own]
  try:
    while waiting:
      waiting = _unreachable(waiting, own)
      if waiting and time.monotonic() > deadline:
        raise WorkerTimeoutError(
            f"Worker {name} ({own}) waited {timeout_s} s for "
            f"{', '.join(waiting)} and gave up; start the same command "
            f"there with its own {TF_CONFIG} task index, check the addresses "
            "and firewall, or raise --worker_timeout_s.")
      if waiting:
        time.sleep(0.5)
    # Let the others see this worker before the port changes hands.
    time.sleep(1.0)
  finally:
    stop.set()
    thread.join()
    listener.close()


def configured_task(name, environ=None):
  """This process's task name for `--strategy=name`, read before TF starts.

  Returns:
    `chief` (every strategy but `multi_worker`, and its chief) or e.g.
    `worker-1`.

  Raises:
    ConfigError: a malformed `TF_CONFIG` with `multi_worker`.
  """
  if name != "multi_worker":
    return "chief"
  _, task_type, index = read_tf_config(environ)
  cluster = json.loads((os.environ if environ is None else environ)[
      TF_CONFIG])["cluster"]
  if task_type == "chief" or ("chief" not in cluster and index == 0):
    return "chief"
  return f"{task_type}-{index}"


def is_chief(strategy):
  """Whether this process writes what users read (metrics, exports...)."""
  return strategy.extended.should_checkpoint


def task_name(strategy):
  """`chief` for the chief, else e.g. `worker-1` (names its own files)."""
  if is_chief(strategy):
    return "chief"
  resolver = strategy.cluster_resolver
  return f"{resolver.task_type}-{resolver.task_id}"
