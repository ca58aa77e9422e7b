"""TF Serving warm-up requests: `assets.extra/tf_serving_warmup_requests`.

TF Serving replays these PredictRequests when it loads a version, so the
first real request does not pay for graph initialization.
"""

import os

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def write_warmup_requests(version_dir, model_name, inputs_by_signature):
  """Writes one PredictionLog per signature under `version_dir`.

  Args:
    version_dir: the SavedModel version folder.
    model_name: the name TF Serving serves the model under.
    inputs_by_signature: signature name -> dict of input name -> tensor.

  Returns:
    The path written.
  """
  path = os.path.join(version_dir, WARMUP_FILE)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tf.io.TFRecordWriter(path) as writer:
    for signature, inputs in inputs_by_signature.items():
      request = predict_pb2.PredictRequest()
      request.model_spec.name = model_name
      request.model_spec.signature_name = signature
      for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
      log = prediction_log_pb2.PredictionLog(
          predict_log=prediction_log_pb2.PredictLog(request=request))
      writer.write(log.SerializeToString())
  return path
