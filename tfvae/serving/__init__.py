"""Clients for tfvae models served by TF Serving (REST and gRPC).

A model exported to `saved_models/quickstart/<version>/` is served as
`quickstart` (the export folder's name), e.g. with

  docker run -p 8500:8500 -p 8501:8501 -e MODEL_NAME=quickstart \\
      -v $PWD/saved_models/quickstart:/models/quickstart tensorflow/serving

REST (numpy and the standard library only):

  import numpy as np
  from tfvae import serving

  images = serving.predict_rest(
      "http://localhost:8501", "quickstart", "sample",
      {"num_samples": 4, "seed": 1})["images"]        # [4, H, W, C] float32
  latents = serving.predict_rest(
      "http://localhost:8501", "quickstart", "encode", {"x": images},
      version=1)                                      # mean, stddev [4, D]

The matching curl command (columnar request; scalars are plain numbers):

  curl -X POST http://localhost:8501/v1/models/quickstart:predict \\
      -d '{"signature_name": "sample", "inputs": {"num_samples": 4, "seed": 1}}'
  # {"outputs": [[[[0.0132], ...], ...], ...]}  (a lone output is unnamed)

gRPC (imports TensorFlow on first use):

  decoded = serving.predict_grpc(
      "localhost:8500", "quickstart", "decode",
      serving.inputs_for("decode", z=np.zeros([2, 8], np.float32)))
  # {"logits": [2, H, W, C], "mean": [2, H, W, C]}   (Bernoulli likelihood)

`SIGNATURES` lists each signature's inputs (name, dtype, rank) and outputs;
`inputs_for(signature, **inputs)` checks and converts inputs, raising a
one-line ValueError naming the signature and what it expects. Server-side
failures (HTTP error status, `{"error": ...}`, gRPC status, refused
connection, timeout) raise `ServingError`, one line naming the URL/target.
"""

from tfvae.serving.client import get_signature
from tfvae.serving.client import inputs_for
from tfvae.serving.client import ServingError
from tfvae.serving.client import Signature
from tfvae.serving.client import SIGNATURES
from tfvae.serving.rest import parse_rest_response
from tfvae.serving.rest import predict_rest
from tfvae.serving.rest import predict_url
from tfvae.serving.rest import request_body

# In `tfvae.serving.grpc_client`, which imports TensorFlow: loaded on first use.
_GRPC_NAMES = ("predict_grpc", "predict_request", "parse_predict_response")


def __getattr__(name):
  if name in _GRPC_NAMES:
    # pylint: disable-next=g-import-not-at-top
    from tfvae.serving import grpc_client
    return getattr(grpc_client, name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + list(_GRPC_NAMES))
