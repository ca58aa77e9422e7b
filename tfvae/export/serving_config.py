"""TF Serving's `models.config` (a ModelServerConfig text proto)."""

import os

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tfvae.errors import ExportError

CONFIG_FILE = "models.config"


def read_models_config(config_path):
  """The `ModelServerConfig` in `config_path` (empty if the file is missing).

  Raises:
    ExportError: when the file cannot be read or parsed.
  """
  config = model_server_config_pb2.ModelServerConfig()
  if not os.path.lexists(config_path):
    return config
  try:
    with open(config_path) as f:
      text_format.Parse(f.read(), config)
  except (OSError, UnicodeDecodeError, text_format.ParseError) as e:
    raise ExportError(
        f"{config_path} is not a readable TF Serving model config ({e}); "
        "fix or remove it, then export again.") from e
  return config


def update_models_config(config_path, model_name, base_path):
  """Adds or updates `model_name` in the model_config_list, atomically.

  Args:
    config_path: the `models.config` file (created if missing).
    model_name: the served model's name.
    base_path: the model's folder of integer versions, as the server sees
      it (for the `tensorflow/serving` image, e.g. `/models/<name>`).

  Returns:
    The parsed `ModelServerConfig` that was written.

  Raises:
    ExportError: when the existing file cannot be read, parsed or replaced.
  """
  config = read_models_config(config_path)
  entries = config.model_config_list.config
  entry = next((e for e in entries if e.name == model_name), None)
  if entry is None:
    entry = entries.add(name=model_name)
  entry.base_path = base_path
  entry.model_platform = "tensorflow"
  tmp = config_path + ".tmp"
  try:
    with open(tmp, "w") as f:
      f.write(text_format.MessageToString(config))
    os.replace(tmp, config_path)
  except OSError as e:
    raise ExportError(f"Cannot write {config_path}: {e}; fix or remove it, "
                      "then export again.") from e
  return config
