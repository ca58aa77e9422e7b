"""Stand-ins for TF Serving on 127.0.0.1 that run a loaded SavedModel.

`RestServer` answers `POST /v1/models/NAME[/versions/V]:predict` in TF
Serving's columnar JSON format (one output: `{"outputs": value}`; errors:
`{"error": message}` with status 400/404). `GrpcServer` implements
`PredictionService.Predict`. Both bind port 0 (a free port) on 127.0.0.1
only and record the requests they got.
"""

import concurrent.futures
import http.server
import json
import re
import threading
import urllib.parse

import grpc
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.serving import fake_model

HOST = "127.0.0.1"
_PREDICT_PATH = re.compile(r"/v1/models/([^/:]+)(?:/versions/(\d+))?:predict")


class RestServer:
  """A threaded HTTP server with TF Serving's `:predict` endpoint."""

  def __init__(self, loaded, model_name):
    self._httpd = http.server.ThreadingHTTPServer((HOST, 0), _RestHandler)
    self._httpd.daemon_threads = True
    self._httpd.loaded = loaded
    self._httpd.model_name = model_name
    self._httpd.requests = []
    self._thread = threading.Thread(target=self._httpd.serve_forever,
                                    kwargs={"poll_interval": 0.05},
                                    daemon=True)

  @property
  def base_url(self):
    return f"http://{HOST}:{self._httpd.server_address[1]}"

  @property
  def requests(self):
    """List of (path, parsed JSON body) received."""
    return self._httpd.requests

  def start(self):
    self._thread.start()
    return self

  def stop(self):
    self._httpd.shutdown()
    self._httpd.server_close()
    self._thread.join(timeout=5)


class _RestHandler(http.server.BaseHTTPRequestHandler):
  """Answers `:predict` POSTs like TF Serving's REST API."""

  def do_POST(self):  # pylint: disable=invalid-name
    match = _PREDICT_PATH.fullmatch(self.path)
    if not match:
      return self._reply(404, {"error": f"Malformed request: POST {self.path}"})
    model = urllib.parse.unquote(match[1])
    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
    self.server.requests.append((self.path, body))
    if model != self.server.model_name:
      return self._reply(
          404, {"error": f"Servable not found for request: Latest({model})"})
    try:
      outputs = fake_model.run_signature(
          self.server.loaded, body.get("signature_name", "serving_default"),
          body["inputs"])
    except Exception as err:  # pylint: disable=broad-except
      return self._reply(400, {"error": f"{type(err).__name__}: {err}"})
    values = {name: value.tolist() for name, value in outputs.items()}
    if len(values) == 1:  # TF Serving leaves out a single output's name.
      values = next(iter(values.values()))
    return self._reply(200, {"outputs": values})

  def _reply(self, status, body):
    data = json.dumps(body).encode("utf-8")
    self.send_response(status)
    self.send_header("Content-Type", "application/json")
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    self.wfile.write(data)

  def log_message(self, *args):  # pylint: disable=arguments-differ
    del args  # Quiet test output.


class GrpcServer:
  """A `grpc.server` with a `PredictionService` running the SavedModel."""

  def __init__(self, loaded, model_name):
    self.servicer = _PredictionServicer(loaded, model_name)
    self._server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        self.servicer, self._server)
    self.port = self._server.add_insecure_port(f"{HOST}:0")

  @property
  def target(self):
    return f"{HOST}:{self.port}"

  def start(self):
    self._server.start()
    return self

  def stop(self):
    self._server.stop(grace=None).wait(timeout=5)


class _PredictionServicer(
    prediction_service_pb2_grpc.PredictionServiceServicer):
  """`Predict` like TF Serving: NOT_FOUND / INVALID_ARGUMENT on errors."""

  def __init__(self, loaded, model_name):
    self.loaded = loaded
    self.model_name = model_name
    self.requests = []

  def Predict(self, request, context):  # pylint: disable=invalid-name
    self.requests.append(request)
    if request.model_spec.name != self.model_name:
      context.abort(grpc.StatusCode.NOT_FOUND,
                    f"Servable not found for request: "
                    f"Latest({request.model_spec.name})")
    try:
      outputs = self._run(request)
    except Exception as err:  # pylint: disable=broad-except
      outputs = None
      message = f"{type(err).__name__}: {err}"
    if outputs is None:
      context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    for name, value in outputs.items():
      response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
    return response

  def _run(self, request):
    signature = request.model_spec.signature_name or "serving_default"
    specs = self.loaded.signatures[signature].structured_input_signature[1]
    for name, proto in request.inputs.items():
      if name in specs and proto.dtype != specs[name].dtype.as_datatype_enum:
        raise TypeError(f"input {name} must be {specs[name].dtype.name}")
    inputs = {name: tf.make_ndarray(proto)
              for name, proto in request.inputs.items()}
    return fake_model.run_signature(self.loaded, signature, inputs)
