"""SavedModel signatures -> a `.tflite` file with built-in ops only."""

import tensorflow as tf

from tfvae.errors import ExportError

from tfvae.config import TFLITE_QUANTIZATIONS as QUANTIZATIONS


def convert(saved_model_dir, signature_keys, quantization="none"):
  """Converts signatures of a SavedModel to TFLite.

  Args:
    saved_model_dir: the SavedModel folder.
    signature_keys: signatures to convert (they keep their names).
    quantization: `none` (float32), `float16` (weights stored as float16)
      or `dynamic_int8` (int8 weights, float activations).

  Returns:
    The flatbuffer as bytes.

  Raises:
    ExportError: an unknown quantization or an op TFLite has no built-in
      kernel for (no Flex/Select TF ops are allowed: devices lack them).
  """
  if quantization not in QUANTIZATIONS:
    raise ExportError(f"--tflite_quantization={quantization!r} is not one of: "
                      f"{', '.join(QUANTIZATIONS)}.")
  converter = tf.lite.TFLiteConverter.from_saved_model(
      saved_model_dir, signature_keys=list(signature_keys))
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  if quantization != "none":
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if quantization == "float16":
    converter.target_spec.supported_types = [tf.float16]
  try:
    return converter.convert()
  except Exception as e:  # The converter raises many types; report one line.
    first_line = str(e).strip().splitlines()[0] if str(e).strip() else e
    raise ExportError(f"TFLite conversion failed: {first_line}") from e
