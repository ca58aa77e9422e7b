"""`TF_CONFIG` checks and task names of `tfvae.training.strategy`."""

import json
import socket

import pytest

from tfvae.errors import ConfigError
from tfvae.training import strategy

_CLUSTER = {"worker": ["127.0.0.1:20001", "127.0.0.1:20002"]}


def _env(value):
  return {"TF_CONFIG": value if isinstance(value, str) else json.dumps(value)}


def test_reads_workers_and_task():
  workers, task_type, index = strategy.read_tf_config(_env(
      {"cluster": _CLUSTER, "task": {"type": "worker", "index": 1}}))
  assert workers == _CLUSTER["worker"]
  assert (task_type, index) == ("worker", 1)


def test_chief_task_comes_first():
  cluster = dict(_CLUSTER, chief=["127.0.0.1:20000"])
  workers, _, _ = strategy.read_tf_config(_env(
      {"cluster": cluster, "task": {"type": "chief", "index": 0}}))
  assert workers[0] == "127.0.0.1:20000"


@pytest.mark.parametrize("value, expected", [
    (None, "needs TF_CONFIG"),
    ("{not json", "not valid JSON"),
    ({"cluster": _CLUSTER}, 'needs a "cluster" and a "task"'),
    ({"cluster": {"worker": "127.0.0.1:1"}, "task": {"type": "worker",
                                                     "index": 0}},
     'must be a list of "host:port"'),
    ({"cluster": {"worker": ["nohost"]}, "task": {"type": "worker",
                                                  "index": 0}},
     'must be a list of "host:port"'),
    ({"cluster": _CLUSTER, "task": {"type": "chief", "index": 0}},
     "is not in the cluster"),
    ({"cluster": _CLUSTER, "task": {"type": "worker", "index": 2}},
     "out of range: the cluster has 2 worker task(s), indices 0..1"),
    ({"cluster": _CLUSTER, "task": {"type": "worker", "index": "0"}},
     "out of range"),
    ({"cluster": dict(_CLUSTER, ps=["127.0.0.1:9"]),
      "task": {"type": "worker", "index": 0}}, "task type(s) ps"),
])
def test_bad_tf_config_is_one_line(value, expected):
  env = {} if value is None else _env(value)
  with pytest.raises(ConfigError) as error:
    strategy.read_tf_config(env)
  assert expected in str(error.value)
  assert "\n" not in str(error.value)


def test_configured_task_names():
  assert strategy.configured_task("default", {}) == "chief"
  for index, name in ((0, "chief"), (1, "worker-1")):
    assert strategy.configured_task("multi_worker", _env(
        {"cluster": _CLUSTER, "task": {"type": "worker",
                                       "index": index}})) == name
  with_chief = dict(_CLUSTER, chief=["127.0.0.1:20000"])
  assert strategy.configured_task("multi_worker", _env(
      {"cluster": with_chief, "task": {"type": "worker",
                                       "index": 0}})) == "worker-0"


def test_wait_for_workers_names_the_silent_address():
  with socket.socket() as taken:
    taken.bind(("127.0.0.1", 0))
    silent = f"127.0.0.1:{taken.getsockname()[1]}"  # Bound, not listening.
    with socket.socket() as free:
      free.bind(("127.0.0.1", 0))
      own = f"127.0.0.1:{free.getsockname()[1]}"
    with pytest.raises(strategy.WorkerTimeoutError, match=silent):
      strategy.wait_for_workers([own, silent], own, 1, "worker:0")


def test_wait_for_workers_refuses_a_taken_port():
  with socket.socket() as taken:
    taken.bind(("", 0))
    taken.listen(1)
    own = f"127.0.0.1:{taken.getsockname()[1]}"
    with pytest.raises(ConfigError, match="another process uses the port"):
      strategy.wait_for_workers([own], own, 1, "worker:0")
