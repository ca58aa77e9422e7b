"""Model registry: variant name -> model class, and the options check."""

from tfvae.config import ModelConfig
from tfvae.errors import ConfigError

# ModelConfig fields that only some variants use (declared in their OPTIONS).
VARIANT_OPTIONS = (
    "beta", "capacity_max", "capacity_steps", "gamma", "free_bits",
    "iw_samples", "conditioning", "prior", "prior_components",
    "posterior_flow", "flow_layers", "flow_hidden_dims", "mmd_weight",
    "mmd_kernel", "info_alpha", "num_embeddings", "embedding_dim", "commitment_cost",
    "vq_ema_decay", "code_prior_layers", "code_prior_channels")
_DEFAULTS = ModelConfig()

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


def check_options(config):
  """Rejects variant-specific options the chosen variant does not use.

  An option left at its default is fine; one set to another value must be
  in the variant's `OPTIONS`, or it would be silently ignored.

  Raises:
    ConfigError: naming the flag and the variants that use it.
  """
  cls = get(config.model)
  for name in VARIANT_OPTIONS:
    value = getattr(config, name)
    if value != getattr(_DEFAULTS, name) and name not in cls.OPTIONS:
      users = [n for n in names() if name in _MODELS[n].OPTIONS]
      shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
      raise ConfigError(
          f"--{name}={shown} does not apply to --model={config.model}; it is "
          f"used by: {', '.join(users) or 'no model'}. Drop the flag or "
          "choose one of those models.")
  cls.check_config(config)


def build(config, data_shape, num_classes=None):
  """Checks `config` against the variant and builds its (unbuilt) model.

  Args:
    config: a `ModelConfig`.
    data_shape: `(H, W, C)` of the data.
    num_classes: number of labels in the data, or None.

  Returns:
    The model; call `build_from_shape()` to create its variables.
  """
  check_options(config)
  return get(config.model)(config, data_shape, num_classes=num_classes)
