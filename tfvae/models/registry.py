"""Model registry: variant name -> model class, and the options check."""

from tfvae import samplers
from tfvae.config import ModelConfig
from tfvae.errors import ConfigError

# ModelConfig fields that only some variants use (declared in their OPTIONS).
VARIANT_OPTIONS = (
    "beta", "capacity_max", "capacity_steps", "gamma", "free_bits",
    "iw_samples", "conditioning", "prior", "prior_components",
    "posterior_flow", "flow_layers", "flow_hidden_dims", "mmd_weight",
    "mmd_kernel", "info_alpha", "num_embeddings", "embedding_dim", "commitment_cost",
    "vq_ema_decay", "code_prior_layers", "code_prior_channels",
    "latent_layers", "latent_dims", "categorical_latents", "categories",
    "temperature_start", "temperature_min", "temperature_anneal_rate",
    "continuous_latent_dim", "continuous_capacity_max",
    "categorical_capacity_max", "tc_weight", "dip_type", "dip_lambda_od",
    "dip_lambda_d", "adversarial_weight", "gan_weight", "pixel_weight",
    "discriminator_hidden_dims", "discriminator_learning_rate")
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
  in the variant's `OPTIONS`, or it would be silently ignored. Then the
  variant's own `check_config` runs, and `--sampler`/`--sampler_components`
  are checked against its capabilities (`tfvae.samplers.check_config`).

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
  samplers.check_config(config, cls)


def check_data(config, data_shape, encoder_body=None, decoder_body=None):
  """Rejects a variant, network or prior that cannot take these data.

  Raises:
    ConfigError: naming the flag and the fix.
  """
  cls = get(config.model)
  if (encoder_body is not None or decoder_body is not None) and (
      not cls.accepts_custom_networks):
    raise ConfigError(
        f"--model={config.model} builds its own networks and takes no custom "
        "encoder/decoder; use a Gaussian-latent model (e.g. vae) with them.")
  if len(data_shape) != 1:
    return
  if not cls.accepts_vectors:
    raise ConfigError(
        f"--model={config.model} needs images [N, H, W, C]; these data are "
        f"vectors [N, {data_shape[0]}]. Choose another --model (e.g. vae).")
  for side, body in (("encoder", encoder_body), ("decoder", decoder_body)):
    if body is None and getattr(config, side) == "conv":
      raise ConfigError(
          f"--{side}=conv needs images [N, H, W, C]; these data are vectors "
          f"[N, {data_shape[0]}]. Use --{side}=mlp.")
  if config.prior == "vamp":
    raise ConfigError(
        "--prior=vamp learns pseudo-inputs in [0, 1] images; with vectors "
        "use --prior=normal or --prior=mixture.")


def build(config, data_shape, num_classes=None, columns=None,
          encoder_body=None, decoder_body=None):
  """Checks `config` against the variant and builds its (unbuilt) model.

  Args:
    config: a `ModelConfig`.
    data_shape: `(H, W, C)` of images or `(D,)` of vectors.
    num_classes: number of labels in the data, or None.
    columns: the vector data's `tfvae.data.columns.Column`s, or None.
    encoder_body: a custom Keras encoder body, or None.
    decoder_body: a custom Keras decoder body, or None.

  Returns:
    The model; call `build_from_shape()` to create its variables.
  """
  check_options(config)
  check_data(config, data_shape, encoder_body, decoder_body)
  extra = {name: value for name, value in (
      ("columns", columns), ("encoder_body", encoder_body),
      ("decoder_body", decoder_body)) if value is not None}
  return get(config.model)(config, data_shape, num_classes=num_classes,
                           **extra)
