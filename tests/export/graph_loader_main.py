"""Runs every signature of SavedModels the way TF Serving's loader does.

A fresh process that imports only TensorFlow and numpy (no tfvae, no
TensorFlow Probability): each SavedModel is loaded into a TF1 graph with
`tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)` and each
signature is run by feeding and fetching the tensor names of its
SignatureDef, which is what TF Serving's C++ loader does.

  python -I graph_loader_main.py MANIFEST.json

The manifest maps a model name to `{"saved_model": PATH, "inputs": FOLDER,
"outputs": FOLDER}`; FOLDER/<signature>/<input>.npy are the inputs. Writes
FOLDER/<signature>/<output>.npy and, beside the manifest, `result.json` with
every signature's inputs and outputs (dtype, shape) and the imported modules.
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf

INIT_OP_SIGNATURE = "__saved_model_init_op"


def _describe(tensor_info):
  return {"name": tensor_info.name,
          "dtype": tf.dtypes.as_dtype(tensor_info.dtype).name,
          "shape": [d.size for d in tensor_info.tensor_shape.dim]}


def run_model(saved_model, inputs_dir, outputs_dir):
  """Loads one SavedModel and runs each of its signatures once.

  Returns:
    Dict signature name -> `{"inputs", "outputs", "error"}`.
  """
  report = {}
  with tf.compat.v1.Session(graph=tf.Graph()) as session:
    meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"],
                                                      saved_model)
    for name, signature in sorted(meta_graph.signature_def.items()):
      if name == INIT_OP_SIGNATURE:
        continue
      entry = {"method_name": signature.method_name,
               "inputs": {k: _describe(v) for k, v in signature.inputs.items()},
               "outputs": {k: _describe(v)
                           for k, v in signature.outputs.items()},
               "error": None}
      report[name] = entry
      try:
        feeds = {info.name: np.load(os.path.join(inputs_dir, name,
                                                 f"{key}.npy"))
                 for key, info in signature.inputs.items()}
        fetches = {key: info.name for key, info in signature.outputs.items()}
        values = session.run(fetches, feeds)
      except Exception as e:  # pylint: disable=broad-except; reported.
        entry["error"] = f"{type(e).__name__}: {e}"
        continue
      os.makedirs(os.path.join(outputs_dir, name), exist_ok=True)
      for key, value in values.items():
        np.save(os.path.join(outputs_dir, name, f"{key}.npy"), value)
  return report


def main(manifest_path):
  with open(manifest_path) as f:
    manifest = json.load(f)
  result = {"models": {}}
  for model_name, paths in manifest.items():
    result["models"][model_name] = run_model(
        paths["saved_model"], paths["inputs"], paths["outputs"])
  result["modules"] = sorted(sys.modules)
  with open(os.path.join(os.path.dirname(manifest_path), "result.json"),
            "w") as f:
    json.dump(result, f, indent=1)


if __name__ == "__main__":
  main(sys.argv[1])
