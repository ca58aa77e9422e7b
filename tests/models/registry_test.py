"""Tests of `tfvae.models.registry`."""

import pytest

from tfvae import models
from tfvae.config import ModelConfig
from tfvae.errors import ConfigError
from tfvae.models.beta_vae import BetaVAE
from tfvae.models.vae import VAE


def test_registered_names():
  assert {"vae", "beta_vae"} <= set(models.names())
  assert models.names() == sorted(models.names())


def test_get_returns_class():
  assert models.get("vae") is VAE
  assert models.get("beta_vae") is BetaVAE


def test_get_unknown_lists_registered_names():
  with pytest.raises(ConfigError) as error:
    models.get("no_such_model")
  message = str(error.value)
  assert "--model='no_such_model'" in message
  for name in models.names():
    assert name in message


def test_build_checks_config():
  with pytest.raises(ConfigError, match="beta_vae"):
    models.build(ModelConfig(model="vae", beta=4.0), (4, 4, 1))
  model = models.build(ModelConfig(model="beta_vae", beta=4.0,
                                   hidden_dims=(4,), latent_dim=2),
                       (4, 4, 1), num_classes=3)
  assert isinstance(model, BetaVAE)
  assert model.num_classes == 3


@pytest.mark.parametrize("model, flag, value, users", [
    ("vae", "tc_weight", 3.0, "factor_vae"),
    ("factor_vae", "dip_lambda_od", 2.0, "dip_vae"),
    ("dip_vae", "discriminator_learning_rate", 1e-3, "factor_vae"),
])
def test_variant_option_on_another_model_is_one_line_error(model, flag, value,
                                                           users):
  config = ModelConfig(**{"model": model, flag: value})
  with pytest.raises(ConfigError) as error:
    models.build(config, (4, 4, 1))
  message = str(error.value)
  assert "\n" not in message
  assert message.startswith(f"--{flag}={value} does not apply to "
                            f"--model={model}"), message
  assert users in message
