"""Fixtures: a tiny SavedModel and TF Serving stand-ins on 127.0.0.1."""

import os

import pytest
import tensorflow as tf

from tests.serving import fake_model
from tests.serving import fake_servers

MODEL_NAME = fake_model.MODEL_NAME
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "grpc_proxy")


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch):
  """Keeps urllib and gRPC from sending 127.0.0.1 requests to a proxy."""
  for name in _PROXY_VARIABLES:
    monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(name.upper(), raising=False)
  monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(scope="session")
def saved_model_dir(tmp_path_factory):
  """`<export_dir>/1` holding the fake model's SavedModel."""
  export_dir = tmp_path_factory.mktemp("export") / MODEL_NAME
  return fake_model.save(os.fspath(export_dir / "1"))


@pytest.fixture(scope="session")
def loaded_model(saved_model_dir):
  return tf.saved_model.load(saved_model_dir)


@pytest.fixture
def rest_server(loaded_model):
  server = fake_servers.RestServer(loaded_model, MODEL_NAME).start()
  yield server
  server.stop()


@pytest.fixture
def grpc_server(loaded_model):
  server = fake_servers.GrpcServer(loaded_model, MODEL_NAME).start()
  yield server
  server.stop()
