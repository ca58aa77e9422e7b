"""REST and gRPC clients against TF Serving stand-ins on 127.0.0.1.

The stand-ins (`fake_servers`) run a tiny SavedModel's signatures and answer
in TF Serving's formats; each test's server is stopped in fixture teardown.
"""

import socket

import numpy as np
import pytest

from tests.serving import fake_model
from tfvae import serving
from tfvae.serving import client
from tfvae.serving import grpc_client as serving_grpc
from tfvae.serving import rest

MODEL_NAME = fake_model.MODEL_NAME
_SIGNATURES = sorted(client.SIGNATURES)


def _direct(loaded_model, signature, inputs):
  """The signature's outputs, called in-process on checked inputs."""
  return fake_model.run_signature(loaded_model, signature,
                                  client.validate_inputs(signature, inputs))


def _assert_same_outputs(got, expected):
  assert sorted(got) == sorted(expected)
  for name, value in expected.items():
    assert got[name].dtype == np.float32, name
    np.testing.assert_array_equal(got[name], value, err_msg=name)


def _closed_port():
  """A 127.0.0.1 port with (almost certainly) no listener."""
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


@pytest.mark.parametrize("signature", _SIGNATURES)
def test_rest_matches_direct_call(rest_server, loaded_model, signature):
  inputs = fake_model.example_inputs()[signature]
  got = rest.predict_rest(rest_server.base_url, MODEL_NAME, signature, inputs)
  _assert_same_outputs(got, _direct(loaded_model, signature, inputs))


def test_rest_decode_and_sample(rest_server, loaded_model):
  z = np.float32([[0.5, -1.0], [2.0, 0.25]])
  decoded = serving.predict_rest(rest_server.base_url, MODEL_NAME, "decode",
                                 {"z": z}, version=1)
  assert decoded["mean"].shape == (2, fake_model.HEIGHT, fake_model.WIDTH,
                                   fake_model.CHANNELS)
  _assert_same_outputs(decoded, _direct(loaded_model, "decode", {"z": z}))
  sample = serving.inputs_for("sample", num_samples=3, seed=11)
  images = serving.predict_rest(rest_server.base_url, MODEL_NAME, "sample",
                                sample)
  _assert_same_outputs(images, _direct(loaded_model, "sample", sample))
  assert [path for path, _ in rest_server.requests] == [
      f"/v1/models/{MODEL_NAME}/versions/1:predict",
      f"/v1/models/{MODEL_NAME}:predict"]
  assert rest_server.requests[1][1] == {
      "signature_name": "sample", "inputs": {"num_samples": 3, "seed": 11}}


def test_rest_server_error_is_one_clear_line(rest_server):
  url = f"{rest_server.base_url}/v1/models/{MODEL_NAME}:predict"
  wrong_latent_dim = np.zeros([2, fake_model.LATENT_DIM + 3], np.float32)
  with pytest.raises(client.ServingError) as info:
    rest.predict_rest(rest_server.base_url, MODEL_NAME, "decode",
                      {"z": wrong_latent_dim})
  message = str(info.value)
  assert message.startswith(f"POST {url} failed: HTTP 400: ")
  assert "Matrix size-incompatible" in message  # The server's message,
  assert '"error"' not in message and "\n" not in message  # unwrapped.


def test_rest_unknown_model_is_404(rest_server):
  with pytest.raises(client.ServingError,
                     match=r"HTTP 404: Servable not found .*Latest\(other\)"):
    rest.predict_rest(rest_server.base_url, "other", "sample",
                      {"num_samples": 1, "seed": 0})


def test_rest_bad_inputs_are_not_sent(rest_server):
  with pytest.raises(ValueError, match="sample: seed must be an integer"):
    rest.predict_rest(rest_server.base_url, MODEL_NAME, "sample",
                      {"num_samples": 1, "seed": 0.5})
  assert not rest_server.requests


def test_rest_connection_refused_names_the_url():
  url = f"http://127.0.0.1:{_closed_port()}"
  with pytest.raises(client.ServingError,
                     match=f"POST {url}/v1/models/m:predict failed: .*refused"):
    rest.predict_rest(url, "m", "sample", {"num_samples": 1, "seed": 0},
                      timeout=5)


def test_rest_timeout_names_the_url():
  with socket.socket() as silent:  # Accepts connections, never answers.
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    with pytest.raises(client.ServingError,
                       match=f"POST {url}/.* failed: no answer within 0.3 s"):
      rest.predict_rest(url, "m", "sample", {"num_samples": 1, "seed": 0},
                        timeout=0.3)


@pytest.mark.parametrize("signature", _SIGNATURES)
def test_grpc_matches_direct_call(grpc_server, loaded_model, signature):
  inputs = fake_model.example_inputs()[signature]
  got = serving_grpc.predict_grpc(grpc_server.target, MODEL_NAME, signature,
                                  inputs)
  _assert_same_outputs(got, _direct(loaded_model, signature, inputs))


def test_grpc_sends_model_spec(grpc_server):
  serving.predict_grpc(grpc_server.target, MODEL_NAME, "sample",
                       {"num_samples": 2, "seed": 3}, version=1)
  (request,) = grpc_server.servicer.requests
  assert request.model_spec.name == MODEL_NAME
  assert request.model_spec.signature_name == "sample"
  assert request.model_spec.version.value == 1


def test_grpc_server_error_is_one_clear_line(grpc_server):
  with pytest.raises(client.ServingError) as info:
    serving_grpc.predict_grpc(grpc_server.target, "other", "sample",
                              {"num_samples": 1, "seed": 0})
  message = str(info.value)
  assert message.startswith(
      f"Predict other:sample on {grpc_server.target} failed: NOT_FOUND: "
      "Servable not found")
  assert "\n" not in message


def test_grpc_invalid_argument(grpc_server):
  with pytest.raises(client.ServingError, match="INVALID_ARGUMENT"):
    serving_grpc.predict_grpc(grpc_server.target, MODEL_NAME, "decode",
                              {"z": np.zeros([1, 7], np.float32)})


def test_grpc_connection_refused_names_the_target():
  target = f"127.0.0.1:{_closed_port()}"
  with pytest.raises(client.ServingError,
                     match=f"on {target} failed: (UNAVAILABLE|DEADLINE)"):
    serving_grpc.predict_grpc(target, "m", "sample",
                              {"num_samples": 1, "seed": 0}, timeout=5)
