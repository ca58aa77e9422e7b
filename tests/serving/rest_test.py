"""Tests of `tfvae.serving.rest` against TF Serving's documented REST format.

https://www.tensorflow.org/tfx/serving/api_rest: columnar requests
`{"signature_name": S, "inputs": {...}}`, responses `{"outputs": ...}`,
`{"predictions": ...}` or `{"error": ...}`.
"""

import json

import numpy as np
import pytest

from tfvae.serving import client
from tfvae.serving import rest

# Two 2x1x1 images and two 2-D latents, in exactly representable values.
_X = np.array([[[[0.0]], [[0.5]]], [[[0.25]], [[1.0]]]], np.float32)
_X_JSON = "[[[[0.0]], [[0.5]]], [[[0.25]], [[1.0]]]]"
_Z = np.array([[-1.5, 2.0], [0.125, 0.0]], np.float32)
_Z_JSON = "[[-1.5, 2.0], [0.125, 0.0]]"


@pytest.mark.parametrize("signature, inputs, expected_inputs", [
    ("reconstruct", {"x": _X}, f'{{"x": {_X_JSON}}}'),
    ("serving_default", {"x": _X}, f'{{"x": {_X_JSON}}}'),
    ("encode", {"x": _X}, f'{{"x": {_X_JSON}}}'),
    ("decode", {"z": _Z}, f'{{"z": {_Z_JSON}}}'),
    ("decode", {"z": _Z, "label": np.array([3, 0])},
     f'{{"z": {_Z_JSON}, "label": [3, 0]}}'),
    ("sample", {"seed": np.int64(1), "num_samples": 4},
     '{"num_samples": 4, "seed": 1}'),
    ("log_likelihood", {"x": _X, "num_samples": np.int32(100)},
     f'{{"x": {_X_JSON}, "num_samples": 100}}'),
])
def test_request_json_is_columnar(signature, inputs, expected_inputs):
  expected = f'{{"signature_name": "{signature}", "inputs": {expected_inputs}}}'
  assert rest.request_json(signature, inputs) == expected


def test_int32_scalars_are_json_integers():
  body = rest.request_body("sample", {"num_samples": 4, "seed": 1})
  assert body == {"signature_name": "sample",
                  "inputs": {"num_samples": 4, "seed": 1}}
  for value in body["inputs"].values():
    assert type(value) is int  # pylint: disable=unidiomatic-typecheck


def test_float32_values_round_trip_exactly():
  z = np.array([[0.1, 1 / 3], [np.pi, 1e-8]], np.float32)
  sent = json.loads(rest.request_json("decode", {"z": z}))["inputs"]["z"]
  np.testing.assert_array_equal(np.array(sent, np.float32), z)


def test_non_finite_floats_use_tf_serving_tokens():
  z = np.array([[np.nan, np.inf], [-np.inf, 0.5]], np.float32)
  text = rest.request_json("decode", {"z": z})
  assert '"z": [[NaN, Infinity], [-Infinity, 0.5]]' in text
  outputs = rest.parse_rest_response('{"outputs": [NaN, -Infinity, 1.5]}',
                                     "log_prob")
  np.testing.assert_array_equal(outputs["log_prob"], [np.nan, -np.inf, 1.5])


def test_request_body_validates_inputs():
  with pytest.raises(ValueError, match="sample: seed must be an integer"):
    rest.request_body("sample", {"num_samples": 2, "seed": 0.5})


@pytest.mark.parametrize("base_url, version, expected", [
    ("http://localhost:8501", None,
     "http://localhost:8501/v1/models/mnist:predict"),
    ("http://localhost:8501/", 3,
     "http://localhost:8501/v1/models/mnist/versions/3:predict"),
    ("serving.local:9000", "12",
     "http://serving.local:9000/v1/models/mnist/versions/12:predict"),
])
def test_predict_url(base_url, version, expected):
  assert rest.predict_url(base_url, "mnist", version) == expected


def test_predict_url_quotes_the_model_name():
  assert rest.predict_url("http://h:1", "my model/x") == (
      "http://h:1/v1/models/my%20model%2Fx:predict")


def test_predict_url_rejects_bad_versions():
  with pytest.raises(ValueError, match="non-negative integer"):
    rest.predict_url("http://h:1", "m", version="latest")


def test_parse_named_outputs():
  body = {"outputs": {"mean": [[0.5, 0.25]], "stddev": [[1.0, 2.0]]}}
  outputs = rest.parse_rest_response(json.dumps(body).encode())
  assert sorted(outputs) == ["mean", "stddev"]
  np.testing.assert_array_equal(outputs["mean"], [[0.5, 0.25]])
  assert outputs["stddev"].dtype == np.float32


def test_parse_single_output_shorthand():
  outputs = rest.parse_rest_response({"outputs": [[[[0.5]]], [[[1.0]]]]},
                                     output_name="images")
  assert list(outputs) == ["images"]
  assert outputs["images"].shape == (2, 1, 1, 1)
  assert outputs["images"].dtype == np.float32


def test_parse_single_output_without_a_name_fails():
  with pytest.raises(client.ServingError, match="pass output_name"):
    rest.parse_rest_response({"outputs": [1.0, 2.0]})


def test_parse_scalar_output():
  outputs = rest.parse_rest_response('{"outputs": 2.5}', "log_prob")
  assert outputs["log_prob"].shape == () and outputs["log_prob"] == 2.5


def test_parse_row_format_single_output():
  outputs = rest.parse_rest_response({"predictions": [-80.5, -91.25]},
                                     "log_prob")
  np.testing.assert_array_equal(outputs["log_prob"], [-80.5, -91.25])


def test_parse_row_format_named_outputs():
  body = {"predictions": [{"mean": [0.5, 1.0], "stddev": [1.0, 2.0]},
                          {"mean": [0.0, -1.0], "stddev": [3.0, 4.0]}]}
  outputs = rest.parse_rest_response(body)
  np.testing.assert_array_equal(outputs["mean"], [[0.5, 1.0], [0.0, -1.0]])
  np.testing.assert_array_equal(outputs["stddev"], [[1.0, 2.0], [3.0, 4.0]])


def test_parse_keeps_inferred_dtype_when_asked():
  outputs = rest.parse_rest_response({"outputs": {"count": [1, 2]}},
                                     dtype=None)
  assert outputs["count"].dtype.kind == "i"


def test_parse_error_response():
  body = {"error": "Servable not found for request: Latest(half)"}
  with pytest.raises(client.ServingError,
                     match=r"TF Serving error: Servable not found .*half"):
    rest.parse_rest_response(json.dumps(body))


def test_parse_error_message_is_one_line():
  with pytest.raises(client.ServingError) as info:
    rest.parse_rest_response({"error": "line one\n\tline two"})
  assert str(info.value) == "TF Serving error: line one line two"


@pytest.mark.parametrize("body, message", [
    ("<html>502 Bad Gateway</html>", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"result": 1}', "none of 'outputs', 'predictions', 'error'"),
    ('{"predictions": 3}', "'predictions' is not a list"),
    ('{"outputs": {"mean": [[1], [2, 3]]}}', "not a numeric array"),
])
def test_parse_malformed_responses(body, message):
  with pytest.raises(client.ServingError, match=message):
    rest.parse_rest_response(body, "images")
