"""The public Python API: config from a flagfile, train, export, load.

What `train.py` does, callable from Python without absl flags:

```python
import tfvae

config = tfvae.config_from_flagfile("configs/quickstart.flags", epochs=1,
                                    model_dir="runs/api")
result = tfvae.train_and_evaluate(config)
model = tfvae.load(result.export.version_dir)  # or the run's model_dir
codes = model.encode(x)["mean"]                # x: [N, 28, 28, 1] in [0, 1]
```

`tfvae/__init__.py` re-exports these functions lazily, so `import tfvae`
stays cheap: this module imports only absl and the config, and TensorFlow
when a function that needs it is called.
"""

import dataclasses
import difflib
import os
import typing
from typing import Any, Optional

from tfvae import config as config_lib
from tfvae.errors import ConfigError

# Config section of every field (= flag name): {"epochs": "train", ...}.
_SECTIONS = {
    field.name: section.name
    for section in dataclasses.fields(config_lib.RunConfig)
    for field in dataclasses.fields(section.default)}
# Integer tuples that a flag writes as "512,256".
_INT_TUPLES = ("hidden_dims", "flow_hidden_dims", "latent_dims",
               "discriminator_hidden_dims")
_STR_TUPLES = ("categorical_columns", "disentanglement_metrics")


def _field_types():
  """Field name -> (type, may be None) from the config annotations."""
  types = {}
  for section in dataclasses.fields(config_lib.RunConfig):
    for name, hint in typing.get_type_hints(type(section.default)).items():
      args = typing.get_args(hint)
      optional = type(None) in args
      types[name] = (next(a for a in args if a is not type(None))
                     if optional else hint, optional)
  return types


_TYPES = _field_types()


def config_from_flagfile(path, **overrides) -> config_lib.RunConfig:
  """The validated `RunConfig` that `train.py --flagfile=path` would run.

  The flagfile is parsed on a private `absl.flags.FlagValues` (the process's
  `flags.FLAGS` is left alone), with the same flag defaults and validators
  as `train.py`; `overrides` then replace single fields, like flags written
  after `--flagfile` on the command line.

  ```python
  config = tfvae.config_from_flagfile("configs/quickstart.flags", epochs=1,
                                      model_dir="runs/x", hidden_dims=(64,))
  ```

  Args:
    path: a flagfile (`configs/*.flags`): one `--name=value` per line.
    **overrides: config field names (the flag names, e.g. `epochs`,
      `model_dir`, `hidden_dims`) with Python values (`hidden_dims=(64,)`;
      a string such as `"512,256"` is read as a flag would be).

  Returns:
    A frozen `RunConfig`, checked with `RunConfig.validate`.

  Raises:
    ConfigError: a missing or unreadable flagfile, an unknown or invalid flag
      in it, an unknown override name, or contradictory values.
  """
  from absl import flags as absl_flags  # pylint: disable=g-import-not-at-top
  from tfvae import flags as flags_lib  # pylint: disable=g-import-not-at-top
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise ConfigError(
        f"Flagfile {path} not found (looked from {os.getcwd()}); pass the "
        "path of a .flags file, e.g. configs/quickstart.flags.")
  flag_values = absl_flags.FlagValues()
  flags_lib.define_flags(flag_values)
  try:
    flag_values(["tfvae", f"--flagfile={path}"])
  except absl_flags.UnrecognizedFlagError as e:
    close = difflib.get_close_matches(e.flagname, list(flag_values), n=1)
    hint = f" (did you mean --{close[0]}?)" if close else ""
    raise ConfigError(
        f"{path}: unknown flag --{e.flagname}{hint}; remove it or see "
        "`python train.py --helpfull` for the flags.") from None
  except absl_flags.Error as e:
    message = str(e).splitlines()[0].replace("ERROR:: ", "").strip(" .")
    raise ConfigError(f"{path}: {message}; fix the flagfile.") from None
  return with_overrides(flags_lib.from_flags(flag_values), **overrides)


def with_overrides(config, **overrides) -> config_lib.RunConfig:
  """`config` with single fields replaced by name, validated.

  Args:
    config: a `RunConfig`.
    **overrides: config field names (= flag names) with Python values.

  Returns:
    A new validated `RunConfig` (`config` itself when nothing changes).

  Raises:
    ConfigError: an unknown field name, or contradictory values.
  """
  by_section = {}
  for name, value in overrides.items():
    if name not in _SECTIONS:
      close = difflib.get_close_matches(name, _SECTIONS, n=1)
      hint = f" (did you mean {close[0]}?)" if close else ""
      raise ConfigError(
          f"Unknown config override {name}={value!r}{hint}; overrides are "
          "config field names, the same as the flag names (python train.py "
          "--helpfull).")
    by_section.setdefault(_SECTIONS[name], {})[name] = _field_value(name,
                                                                    value)
  sections = {name: dataclasses.replace(getattr(config, name), **values)
              for name, values in by_section.items()}
  return dataclasses.replace(config, **sections).validate()


def _field_value(name, value):
  """`value` as the config field `name` holds it, or a ConfigError.

  Sequences become tuples (a string `"512,256"` is split as a flag is);
  other values must have the field's type (an int is a valid float).
  """
  if value is None and name == "disentanglement_metrics":
    return None
  if name in _INT_TUPLES or name in _STR_TUPLES:
    items = value
    if isinstance(value, str):
      items = [v.strip() for v in value.split(",") if v.strip()]
    if name in _STR_TUPLES:
      return tuple(str(v) for v in items)
    try:
      return tuple(int(v) for v in items)
    except (TypeError, ValueError):
      raise ConfigError(f"{name}={value!r} must be a sequence of positive "
                        f"integers, e.g. {name}=(512, 256).") from None
  kind, optional = _TYPES[name]
  if value is None and optional:
    return value
  if kind is float and isinstance(value, int) and not isinstance(value, bool):
    return float(value)
  if kind is str and isinstance(value, os.PathLike):
    return os.fspath(value)
  if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
    article = "an" if kind.__name__[0] in "aeiou" else "a"
    raise ConfigError(f"{name}={value!r} must be {article} {kind.__name__}"
                      f"{' or None' if optional else ''}.")
  return value


@dataclasses.dataclass(frozen=True)
class TrainResult:
  """What `train_and_evaluate` produced.

  Attributes:
    metrics: the dict written to `metrics.json` (`test_nll`, ...).
    metrics_path: where it was written (`<model_dir>/metrics.json`).
    image_paths: picture name -> PNG path (empty with `images=False`).
    model_dir: the run's folder (checkpoints, summaries, `config.json`).
    export: the `tfvae.export.exporter.ExportResult` (`version_dir`,
      `tflite_path`, ...), or None when the config says `export=False`.
    model: the trained Keras model (`tfvae.models.vae.VAE` interface).
    trainer: the `tfvae.training.loop.Trainer` that trained it.
    resumed_from: the checkpoint training resumed from, or None.
  """
  metrics: dict
  metrics_path: str
  image_paths: dict
  model_dir: str
  export: Optional[Any]
  model: Any
  trainer: Any
  resumed_from: Optional[str] = None


def train_and_evaluate(config, data=None, encoder=None,
                       decoder=None) -> TrainResult:
  """Trains (resuming if possible), evaluates and exports, as `train.py` does.

  ```python
  import numpy as np
  import tfvae

  x = (np.random.default_rng(0).random((512, 8, 8, 1)) > 0.5).astype(
      np.float32)
  config = tfvae.config_from_flagfile(
      "configs/quickstart.flags", train_steps=20, hidden_dims=(16,),
      latent_dim=2, eval_iw_samples=10, model_dir="runs/api_example",
      export_dir="saved_models/api_example")
  result = tfvae.train_and_evaluate(config, data=tfvae.data.from_arrays(x))
  print(result.metrics["test_nll"], result.export.version_dir)
  ```

  Args:
    config: a validated `RunConfig` (e.g. from `config_from_flagfile`).
    data: optional splits from `tfvae.data.from_arrays(...)`, used instead of
      reading `config.data.dataset`.
    encoder: optional Keras body replacing the configured encoder network.
    decoder: optional Keras body replacing the configured decoder network.

  Returns:
    A `TrainResult`.

  Raises:
    TfvaeError: bad config values or data, a diverging run, or a failed
      export (each a one-line message naming the fix).
  """
  # Heavy imports here, so `import tfvae` and configs stay cheap.
  from tfvae.export import exporter  # pylint: disable=g-import-not-at-top
  from tfvae.training import experiment  # pylint: disable=g-import-not-at-top
  result = experiment.train_and_evaluate(config, data=data, encoder=encoder,
                                         decoder=decoder)
  exported = (exporter.export_run(result.trainer.model, config)
              if config.export.export and result.is_chief else None)
  return TrainResult(
      metrics=result.metrics, metrics_path=result.metrics_path,
      image_paths=result.image_paths, model_dir=config.train.model_dir,
      export=exported, model=result.trainer.model, trainer=result.trainer,
      resumed_from=result.resumed_from)


def load(path):
  """A trained model for inference, from an export or a run's folder.

  See `tfvae.loading.load`: `path` is an export base folder (its newest
  version), a version folder, or a run's `model_dir` (its latest export,
  else its latest checkpoint).

  ```python
  model = tfvae.load("saved_models/quickstart")
  codes = model.encode(x)["mean"]              # x: [N, 28, 28, 1] in [0, 1]
  scores = model.log_likelihood(x, num_samples=100)   # [N]
  ```

  Returns:
    A `tfvae.loading.LoadedModel`.

  Raises:
    ExportError: nothing loadable at `path`, with the fix.
  """
  from tfvae import loading  # pylint: disable=g-import-not-at-top
  return loading.load(path)
