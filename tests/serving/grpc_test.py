"""Tests of `tfvae.serving.grpc_client`: PredictRequest protos and responses."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2

from tfvae.serving import grpc_client as serving_grpc

_X = np.random.default_rng(0).uniform(size=[2, 3, 3, 1]).astype(np.float32)
_Z = np.array([[0.1, -2.0], [1 / 3, 1e-8]], np.float32)

# signature -> (inputs, {name: (dtype enum, shape, expected array)}).
_CASES = {
    "reconstruct": ({"x": _X}, {"x": (types_pb2.DT_FLOAT, [2, 3, 3, 1], _X)}),
    "encode": ({"x": _X}, {"x": (types_pb2.DT_FLOAT, [2, 3, 3, 1], _X)}),
    "decode": ({"z": _Z, "label": [1, 0]},
               {"z": (types_pb2.DT_FLOAT, [2, 2], _Z),
                "label": (types_pb2.DT_INT32, [2], np.int32([1, 0]))}),
    "sample": ({"num_samples": 4, "seed": np.int64(-7)},
               {"num_samples": (types_pb2.DT_INT32, [], np.int32(4)),
                "seed": (types_pb2.DT_INT32, [], np.int32(-7))}),
    "log_likelihood": ({"x": _X.astype(np.float64), "num_samples": 50},
                       {"x": (types_pb2.DT_FLOAT, [2, 3, 3, 1], _X),
                        "num_samples": (types_pb2.DT_INT32, [],
                                        np.int32(50))}),
}


@pytest.mark.parametrize("signature", sorted(_CASES))
def test_request_inputs_have_explicit_dtypes_and_shapes(signature):
  inputs, expected = _CASES[signature]
  request = serving_grpc.predict_request("tiny", signature, inputs)
  assert sorted(request.inputs) == sorted(expected)
  for name, (dtype, shape, array) in expected.items():
    proto = request.inputs[name]
    assert proto.dtype == dtype, name
    assert [dim.size for dim in proto.tensor_shape.dim] == shape, name
    value = tf.make_ndarray(proto)
    assert value.dtype == array.dtype, name
    np.testing.assert_array_equal(value, array)


def test_request_model_spec_without_version():
  request = serving_grpc.predict_request("tiny", "sample",
                                         {"num_samples": 1, "seed": 0})
  assert request.model_spec.name == "tiny"
  assert request.model_spec.signature_name == "sample"
  assert not request.model_spec.HasField("version")


def test_request_model_spec_with_version():
  request = serving_grpc.predict_request(
      "tiny", "sample", {"num_samples": 1, "seed": 0}, version=3)
  assert request.model_spec.HasField("version")
  assert request.model_spec.version.value == 3


def test_request_scalars_have_rank_zero():
  request = serving_grpc.predict_request("tiny", "sample",
                                         {"num_samples": 2, "seed": 5})
  for name in ("num_samples", "seed"):
    assert not request.inputs[name].tensor_shape.dim
    assert not request.inputs[name].tensor_shape.unknown_rank


def test_request_validates_inputs():
  with pytest.raises(ValueError, match="sample: seed must be an integer"):
    serving_grpc.predict_request("tiny", "sample",
                                 {"num_samples": 2, "seed": 1.0})
  with pytest.raises(ValueError, match="decode: unknown input 'x'"):
    serving_grpc.predict_request("tiny", "decode", {"x": _X})


def test_parse_predict_response():
  mean = np.random.default_rng(1).uniform(size=[2, 3, 3, 1]).astype(
      np.float32)
  logits = np.log(mean) - np.log1p(-mean)
  response = predict_pb2.PredictResponse()
  response.model_spec.name = "tiny"
  response.outputs["mean"].CopyFrom(tf.make_tensor_proto(mean))
  response.outputs["logits"].CopyFrom(tf.make_tensor_proto(logits))
  outputs = serving_grpc.parse_predict_response(response)
  assert list(outputs) == ["logits", "mean"]
  np.testing.assert_array_equal(outputs["mean"], mean)
  np.testing.assert_array_equal(outputs["logits"], logits)
  assert outputs["mean"].dtype == np.float32


def test_parse_predict_response_survives_serialization():
  response = predict_pb2.PredictResponse()
  response.outputs["log_prob"].CopyFrom(
      tf.make_tensor_proto(np.float32([-80.5, np.nan])))
  wire = predict_pb2.PredictResponse.FromString(response.SerializeToString())
  np.testing.assert_array_equal(
      serving_grpc.parse_predict_response(wire)["log_prob"], [-80.5, np.nan])
