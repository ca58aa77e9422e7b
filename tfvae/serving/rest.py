"""TF Serving's REST predict API for tfvae signatures (numpy + urllib only).

Requests use the columnar format, the only one that can carry the scalar
inputs of `sample` and `log_likelihood`:

  POST http://HOST:8501/v1/models/NAME[/versions/V]:predict
  {"signature_name": "sample", "inputs": {"num_samples": 4, "seed": 1}}

Arrays become nested lists, int32 values JSON integers and float32 values JSON
numbers (each float32 written as the float64 it converts to exactly, so the
server reads back the same float32). Non-finite floats are written as the bare
tokens `NaN`, `Infinity` and `-Infinity`, which TF Serving accepts and emits
("JSON conformance" in its REST API guide); they are not rejected here.

Responses are `{"outputs": {name: value}}`, or `{"outputs": value}` when the
signature has a single output (the name is then the signature's known output
name, see `client.single_output_name`), `{"predictions": ...}` for row-format
requests, or `{"error": message}`, raised as `client.ServingError`.
"""

import json
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from tfvae.serving import client

DEFAULT_PORT = 8501


def predict_url(base_url, model, version=None):
  """The `:predict` URL of `model`.

  Args:
    base_url: e.g. `http://localhost:8501` (`http://` is added if missing).
    model: the served model name (the export folder's name).
    version: an integer version, or None for the latest.

  Returns:
    `BASE/v1/models/MODEL[/versions/VERSION]:predict`.
  """
  base = base_url.rstrip("/")
  if "://" not in base:
    base = "http://" + base
  url = f"{base}/v1/models/{urllib.parse.quote(model, safe='')}"
  if version is not None:
    url += f"/versions/{client.check_version(version)}"
  return url + ":predict"


def request_body(signature, inputs):
  """The columnar JSON request (as a dict) for `signature`.

  Args:
    signature: a name in `client.SIGNATURES`.
    inputs: input name -> array-like, checked by `client.validate_inputs`.

  Returns:
    `{"signature_name": signature, "inputs": {name: nested lists/number}}`.
  """
  arrays = client.validate_inputs(signature, inputs)
  return {"signature_name": signature,
          "inputs": {name: array.tolist() for name, array in arrays.items()}}


def request_json(signature, inputs):
  """`request_body` serialized; non-finite floats as `NaN`/`Infinity`."""
  return json.dumps(request_body(signature, inputs), allow_nan=True)


def parse_rest_response(body, output_name=None, dtype=np.float32):
  """Arrays from a TF Serving predict response.

  Args:
    body: the response as JSON text (str/bytes) or an already-parsed dict.
    output_name: the name to give a single unnamed output (`{"outputs":
      value}` or a `predictions` list of values).
    dtype: numpy dtype of the returned arrays (all tfvae outputs are
      float32); None keeps what numpy infers (float64/int64).

  Returns:
    Dict of output name -> np.ndarray, e.g. `images` [N, H, W, C].

  Raises:
    client.ServingError: an `error` response, or a body that is not one.
  """
  if isinstance(body, (bytes, str)):
    body = _loads(body)
  if not isinstance(body, dict):
    raise client.ServingError(
        f"TF Serving response is not a JSON object: {client.one_line(body)}")
  if "error" in body:
    raise client.ServingError(
        f"TF Serving error: {client.one_line(body['error'])}")
  if "outputs" in body:
    return _columnar(body["outputs"], output_name, dtype)
  if "predictions" in body:
    return _rows(body["predictions"], output_name, dtype)
  raise client.ServingError(
      "TF Serving response has none of 'outputs', 'predictions', 'error'; "
      f"keys: {sorted(body)}")


def predict_rest(base_url, model, signature, inputs, version=None,
                 timeout=30):
  """Runs `signature` of `model` on a TF Serving REST endpoint.

  Args:
    base_url: e.g. `http://localhost:8501`.
    model: the served model name.
    signature: a name in `client.SIGNATURES`.
    inputs: input name -> array-like (see `client.inputs_for`).
    version: an integer version, or None for the latest.
    timeout: seconds to wait for the connection and for the answer.

  Returns:
    Dict of output name -> float32 np.ndarray.

  Raises:
    ValueError: malformed inputs (before anything is sent).
    client.ServingError: (one line, naming the URL) an HTTP error status,
      an `error` response, a refused connection or a timeout.
  """
  url = predict_url(base_url, model, version)
  data = request_json(signature, inputs).encode("utf-8")
  body = _post(url, data, timeout)
  try:
    return client.name_vector_outputs(
        parse_rest_response(body, client.single_output_name(signature)))
  except client.ServingError as err:
    raise client.ServingError(f"POST {url}: {err}") from err


def _post(url, data, timeout):
  """POSTs JSON `data`; returns the response body (bytes)."""
  request = urllib.request.Request(
      url, data=data, method="POST",
      headers={"Content-Type": "application/json"})
  try:
    with urllib.request.urlopen(request, timeout=timeout) as response:
      return response.read()
  except urllib.error.HTTPError as err:
    raise client.ServingError(
        f"POST {url} failed: HTTP {err.code}: {_error_message(err)}") from err
  except OSError as err:  # URLError, refused/reset connections, timeouts.
    reason = getattr(err, "reason", err)
    if isinstance(reason, TimeoutError):
      reason = f"no answer within {timeout} s"
    raise client.ServingError(
        f"POST {url} failed: {client.one_line(reason)}") from err


def _error_message(http_error):
  """The server's `error` message from an HTTP error, or its body/reason."""
  try:
    text = http_error.read().decode("utf-8", "replace")
  except OSError:
    text = ""
  try:
    message = json.loads(text)["error"]
  except (ValueError, TypeError, KeyError):
    message = text or http_error.reason
  return client.one_line(message)


def _loads(text):
  try:
    return json.loads(text)
  except ValueError as err:
    raise client.ServingError(
        f"TF Serving response is not JSON ({err}): "
        f"{client.one_line(text, limit=200)}") from err


def _columnar(outputs, output_name, dtype):
  """`{"outputs": ...}`: a dict of named outputs or one unnamed value."""
  if isinstance(outputs, dict):
    return {name: _array(value, dtype) for name, value in outputs.items()}
  return {_unnamed(output_name): _array(outputs, dtype)}


def _rows(predictions, output_name, dtype):
  """`{"predictions": [...]}`: one entry (dict or value) per example."""
  if not isinstance(predictions, list):
    raise client.ServingError(
        f"TF Serving 'predictions' is not a list: "
        f"{client.one_line(predictions, limit=200)}")
  if predictions and all(isinstance(row, dict) for row in predictions):
    return {name: _array([row[name] for row in predictions], dtype)
            for name in predictions[0]}
  return {_unnamed(output_name): _array(predictions, dtype)}


def _unnamed(output_name):
  if output_name is None:
    raise client.ServingError(
        "TF Serving returned one unnamed output; pass output_name to name it")
  return output_name


def _array(value, dtype):
  try:
    return np.asarray(value, dtype=dtype)
  except (ValueError, TypeError) as err:
    raise client.ServingError(
        f"TF Serving output is not a numeric array: {err}") from err
