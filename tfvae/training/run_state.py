"""What a model directory holds between runs: checkpoints and the run config.

Resuming needs the same model, data, batch size and seed (the data order and
the noise are functions of the seed and step), so the config of the run that
made the checkpoints is saved beside them and checked on resume. Options of
other variants (a `ModelConfig` field the run's model does not use) and
fields a run saved before they existed are not part of the model: they are
neither compared on resume nor read back, so a default that changed since
cannot make an old run unusable.
"""

import dataclasses
import json
import os
import shutil

import tensorflow as tf

from tfvae.config import ModelConfig
from tfvae.data import columns as columns_lib
from tfvae.errors import ConfigError
from tfvae.errors import ExportError

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
# Everything a run writes under model_dir, removed by --restart.
RUN_OUTPUTS = (CHECKPOINT_DIR, "train", "eval", "images", "metrics.json",
               CONFIG_FILE)


def _resume_key(config):
  """The settings that must not change when a run resumes."""
  return {
      "model": dataclasses.asdict(config.model),
      "dataset": config.data.dataset,
      "validation_fraction": config.data.validation_fraction,
      "binarize": config.data.binarize,
      "categorical_columns": config.data.categorical_columns,
      "label_column": config.data.label_column,
      "shuffle_buffer": config.data.shuffle_buffer,
      "batch_size": config.train.batch_size,
      "seed": config.train.seed,
      "mixed_precision": config.train.mixed_precision,
  }


def _jsonable(value):
  return json.loads(json.dumps(value, default=list))


def clear_outputs(model_dir):
  """Removes what an earlier run wrote under `model_dir` (for --restart)."""
  for name in RUN_OUTPUTS:
    path = os.path.join(model_dir, name)
    if os.path.isdir(path):
      shutil.rmtree(path)
    elif os.path.exists(path):
      os.remove(path)


def write_config(config, model_dir, data_shape, num_classes, columns=None,
                 class_names=None, custom_networks=()):
  """Saves the run config and what the data look like as JSON, atomically.

  Args:
    config: the `RunConfig`.
    model_dir: the run's folder.
    data_shape: `(H, W, C)` or `(D,)` of the data (to rebuild the model).
    num_classes: number of labels, or None.
    columns: the vector data's `Column`s, or None.
    class_names: the label of each class id, or None.
    custom_networks: which networks (`encoder`, `decoder`) were the user's
      own Keras bodies, which a rebuild needs again.
  """
  tmp = os.path.join(model_dir, CONFIG_FILE + ".tmp")
  values = dict(dataclasses.asdict(config), data_shape=list(data_shape),
                num_classes=num_classes,
                columns=columns_lib.to_dicts(columns),
                class_names=None if class_names is None else list(
                    class_names),
                custom_networks=list(custom_networks))
  with open(tmp, "w") as f:
    json.dump(_jsonable(values), f, indent=2)
  os.replace(tmp, os.path.join(model_dir, CONFIG_FILE))


def read_config_dict(model_dir):
  """The saved run config as a dict, or None when there is none."""
  path = os.path.join(model_dir, CONFIG_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def check_resumable(config, model_dir):
  """Raises if `model_dir` holds a run with settings that cannot resume.

  Raises:
    ConfigError: naming the first differing flag and the ways out.
  """
  saved = read_config_dict(model_dir)
  if saved is None:
    return
  saved_key = {
      "model": saved["model"],
      "dataset": saved["data"]["dataset"],
      "validation_fraction": saved["data"]["validation_fraction"],
      "binarize": saved["data"]["binarize"],
      "categorical_columns": saved["data"].get("categorical_columns", []),
      "label_column": saved["data"].get("label_column"),
      "shuffle_buffer": saved["data"].get("shuffle_buffer", 10_000),
      "batch_size": saved["train"]["batch_size"],
      "seed": saved["train"]["seed"],
      "mixed_precision": saved["train"].get("mixed_precision", "none"),
  }
  current = _jsonable(_resume_key(config))
  unused = _unused_options(config.model.model)
  defaults = _jsonable(dataclasses.asdict(ModelConfig()))
  for name in current:
    if name == "model":
      for field, value in current["model"].items():
        if field in unused or (field not in saved_key["model"]
                               and value == defaults[field]):
          continue
        if saved_key["model"].get(field) != value:
          _refuse(model_dir, field, saved_key["model"].get(field), value)
    elif saved_key[name] != current[name]:
      _refuse(model_dir, name, saved_key[name], current[name])


def _unused_options(model_name):
  """The variant-specific `ModelConfig` fields `model_name` does not use."""
  # Imported here: models pull in TFP, which readers of configs don't need.
  from tfvae.models import registry  # pylint: disable=g-import-not-at-top
  try:
    used = registry.get(model_name).OPTIONS
  except ConfigError:
    return frozenset()
  return frozenset(registry.VARIANT_OPTIONS) - used


def model_settings(saved_model):
  """A saved config's `model` section less the options its model does not
  use (they take today's defaults when read back)."""
  unused = _unused_options(saved_model.get("model", ModelConfig.model))
  return {k: v for k, v in saved_model.items() if k not in unused}


def _refuse(model_dir, flag, saved, current):
  raise ConfigError(
      f"{model_dir} holds a run trained with --{flag}={saved}, not "
      f"--{flag}={current}; pass the same value to resume, --restart to "
      "start over, or another --model_dir.")


def checkpoint_manager(checkpoint, model_dir, max_to_keep):
  """A `tf.train.CheckpointManager` under `model_dir/checkpoints`."""
  return tf.train.CheckpointManager(
      checkpoint, os.path.join(model_dir, CHECKPOINT_DIR),
      max_to_keep=max_to_keep)


def load_trained_model(model_dir, encoder=None, decoder=None):
  """Rebuilds a run's model from `config.json` and its latest checkpoint.

  Args:
    model_dir: the folder of a finished or interrupted run.
    encoder: the custom encoder body the run was trained with, if any.
    decoder: the custom decoder body the run was trained with, if any.

  Returns:
    `(model, config, step)`: the built model with trained weights, the
    run's `RunConfig`, and the checkpoint's step.

  Raises:
    ExportError: when the folder has no config or no checkpoint.
  """
  # Imported here: models pull in TFP, which readers of configs don't need.
  from tfvae import models  # pylint: disable=g-import-not-at-top
  from tfvae.config import RunConfig  # pylint: disable=g-import-not-at-top

  saved = read_config_dict(model_dir)
  latest = tf.train.latest_checkpoint(os.path.join(model_dir,
                                                   CHECKPOINT_DIR))
  if saved is None or latest is None:
    raise ExportError(
        f"--model_dir={model_dir} has no {'config.json' if saved is None else 'checkpoint'}"
        "; train first (python train.py --model_dir=...) or point "
        "--model_dir at a run's folder.")
  config = RunConfig.from_dict(dict(saved,
                                   model=model_settings(saved["model"])))
  given = {"encoder": encoder, "decoder": decoder}
  missing = [side for side in saved.get("custom_networks", [])
             if given[side] is None]
  if missing:
    raise ExportError(
        f"{model_dir} was trained with a custom {' and '.join(missing)}; "
        "pass the same Keras network(s) again (encoder=..., decoder=...) or "
        "load its export instead.")
  data_shape = tuple(saved.get("data_shape") or saved["image_shape"])
  model = models.build(config.model, data_shape, saved.get("num_classes"),
                       columns=columns_lib.from_dicts(saved.get("columns")),
                       encoder_body=encoder, decoder_body=decoder)
  model.build_from_shape()
  step = tf.Variable(0, dtype=tf.int64)
  checkpoint = tf.train.Checkpoint(model=model, step=step)
  checkpoint.restore(latest).expect_partial().assert_existing_objects_matched()
  return model, config, int(step.numpy())
