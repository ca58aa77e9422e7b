"""Model registry: variant name -> model class."""

from tfvae.errors import ConfigError

_MODELS = {}


def register(name):
  """Class decorator adding a model variant under `name`."""
  def decorator(cls):
    _MODELS[name] = cls
    return cls
  return decorator


def names():
  """Registered variant names, sorted."""
  return sorted(_MODELS)


def get(name):
  """The class registered as `name`.

  Raises:
    ConfigError: naming what is registered.
  """
  if name not in _MODELS:
    raise ConfigError(f"--model={name!r} is not registered; choose one of: "
                      f"{', '.join(names())}.")
  return _MODELS[name]


def build(config, image_shape, num_classes=None):
  """Checks `config` against the variant and builds its (unbuilt) model.

  Args:
    config: a `ModelConfig`.
    image_shape: `(H, W, C)` of the data.
    num_classes: number of labels in the data, or None.

  Returns:
    The model; call `build_from_shape()` to create its variables.
  """
  cls = get(config.model)
  cls.check_config(config)
  return cls(config, image_shape, num_classes=num_classes)
