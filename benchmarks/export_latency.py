"""Latency and size of the exported quickstart model.

Exports the latest checkpoint of `--model_dir` (default: the quickstart run,
`make train` makes it) once per TFLite quantization into a temporary folder,
then prints:

- SavedModel (loaded with `tf.saved_model.load`, as a Python server would)
  `decode` and `sample` latency at batch 1 and 64;
- TFLite `sample` latency at batch 1 on one thread, for each quantization
  (`ai_edge_litert`, the runtime that ships to devices);
- the file sizes.

Latencies are medians (and 90th percentiles) of `--repeats` calls after
`--warmup` calls. Run: `python benchmarks/export_latency.py`.
"""

import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from ai_edge_litert.interpreter import Interpreter
import numpy as np
import tensorflow as tf

from tfvae.config import TFLITE_QUANTIZATIONS
from tfvae.errors import TfvaeError
from tfvae.export import exporter
from tfvae.training import run_state

tf.get_logger().setLevel("ERROR")

_MODEL_DIR = flags.DEFINE_string("model_dir", "runs/quickstart",
                                 "The trained run to export and time.")
_REPEATS = flags.DEFINE_integer("repeats", 200, "Timed calls per figure.")
_WARMUP = flags.DEFINE_integer("warmup", 20, "Untimed calls first.")


def timed_ms(call):
  """Median and 90th-percentile milliseconds of `call()`."""
  for _ in range(_WARMUP.value):
    call()
  times = []
  for _ in range(_REPEATS.value):
    began = time.perf_counter()
    call()
    times.append((time.perf_counter() - began) * 1e3)
  times.sort()
  return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def folder_size(path):
  return sum(os.path.getsize(os.path.join(root, name))
             for root, _, names in os.walk(path) for name in names)


def saved_model_rows(version_dir, latent_dim):
  loaded = tf.saved_model.load(version_dir)
  decode, sample = loaded.signatures["decode"], loaded.signatures["sample"]
  rows = []
  for batch in (1, 64):
    z = tf.random.normal([batch, latent_dim])
    rows.append((f"SavedModel decode, batch {batch}",
                 timed_ms(lambda z=z: decode(z=z)["mean"].numpy())))
    count = tf.constant(batch)
    rows.append((f"SavedModel sample, batch {batch}",
                 timed_ms(lambda c=count: sample(
                     num_samples=c, seed=tf.constant(0))["images"].numpy())))
  return rows


def tflite_row(tflite_path, quantization):
  interpreter = Interpreter(model_path=tflite_path, num_threads=1)
  sample = interpreter.get_signature_runner("sample")
  return (f"TFLite sample, batch 1, 1 thread, {quantization}",
          timed_ms(lambda: sample(num_samples=np.int32(1),
                                  seed=np.int32(0))["images"]))


def main(argv):
  del argv
  try:
    model, config, step = run_state.load_trained_model(_MODEL_DIR.value)
  except TfvaeError as e:
    sys.exit(f"export_latency: error: {e} (make train creates the "
             "quickstart run)")
  print(f"{_MODEL_DIR.value}: {config.model.model}, step {step}, "
        f"{model.data_shape}, latent {model.latent_dim}; TF "
        f"{tf.__version__}, {os.cpu_count()} CPUs")
  rows, sizes = [], []
  with tempfile.TemporaryDirectory() as tmp:
    for quantization in TFLITE_QUANTIZATIONS:
      result = exporter.export(model, os.path.join(tmp, quantization),
                               "bench", quantization)
      if quantization == "none":
        rows += saved_model_rows(result.version_dir, model.latent_dim)
        sizes.append(("SavedModel folder",
                      folder_size(result.version_dir)
                      - os.path.getsize(result.tflite_path)))
      rows.append(tflite_row(result.tflite_path, quantization))
      sizes.append((f"model.tflite ({quantization})",
                    os.path.getsize(result.tflite_path)))
  width = max(len(name) for name, _ in rows + sizes)
  print(f"{'':<{width}}  median ms   p90 ms")
  for name, (median, p90) in rows:
    print(f"{name:<{width}}  {median:9.3f}  {p90:7.3f}")
  for name, size in sizes:
    print(f"{name:<{width}}  {size / 2**20:9.2f} MiB")


if __name__ == "__main__":
  app.run(main)
