"""TF Serving's gRPC `PredictionService.Predict` for tfvae signatures.

Inputs are `TensorProto`s with explicit dtypes (`DT_FLOAT` for `x` and `z`,
`DT_INT32` for `num_samples`, `seed` and `label`); scalars have rank 0.
Default port: 8500.
"""

import grpc
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tfvae.serving import client

DEFAULT_PORT = 8500
# No client-side message size limit (gRPC's default is 4 MiB, which
# `sample` passes at about 1300 28x28 images); the server keeps its own.
_CHANNEL_OPTIONS = (("grpc.max_send_message_length", -1),
                    ("grpc.max_receive_message_length", -1))


def predict_request(model, signature, inputs, version=None):
  """The `PredictRequest` running `signature` of `model`.

  Args:
    model: the served model name.
    signature: a name in `client.SIGNATURES`.
    inputs: input name -> array-like (see `client.inputs_for`).
    version: an integer version, or None for the latest.

  Returns:
    A `predict_pb2.PredictRequest` with model_spec and inputs set.

  Raises:
    ValueError: malformed inputs or version.
  """
  arrays = client.validate_inputs(signature, inputs)
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model
  request.model_spec.signature_name = signature
  if version is not None:
    request.model_spec.version.value = client.check_version(version)
  for name, array in arrays.items():
    request.inputs[name].CopyFrom(tf.make_tensor_proto(
        array, dtype=tf.as_dtype(array.dtype), shape=array.shape))
  return request


def parse_predict_response(response):
  """Arrays from a `PredictResponse`.

  Args:
    response: a `predict_pb2.PredictResponse`.

  Returns:
    Dict of output name -> np.ndarray (dtype as sent, e.g. float32), sorted
    by name.
  """
  return {name: tf.make_ndarray(response.outputs[name])
          for name in sorted(response.outputs)}


def predict_grpc(target, model, signature, inputs, version=None, timeout=30):
  """Runs `signature` of `model` on a TF Serving gRPC endpoint.

  Args:
    target: `HOST:PORT`, e.g. `localhost:8500`.
    model: the served model name.
    signature: a name in `client.SIGNATURES`.
    inputs: input name -> array-like (see `client.inputs_for`).
    version: an integer version, or None for the latest.
    timeout: seconds before the call is abandoned.

  Returns:
    Dict of output name -> np.ndarray.

  Raises:
    ValueError: malformed inputs (before anything is sent).
    client.ServingError: (one line, naming the target and status code) the
      server refused the request or could not be reached in time.
  """
  request = predict_request(model, signature, inputs, version)
  with grpc.insecure_channel(target, options=_CHANNEL_OPTIONS) as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    try:
      response = stub.Predict(request, timeout=timeout)
    except grpc.RpcError as err:
      raise client.ServingError(
          f"Predict {model}:{signature} on {target} failed: "
          f"{err.code().name}: {client.one_line(err.details())}") from err
  return parse_predict_response(response)
