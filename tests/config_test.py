"""Tests of `tfvae.config`: validation messages and the dict round trip."""

import dataclasses
import json

import pytest

from tfvae.config import (DataConfig, EvalConfig, ModelConfig, RunConfig,
                          TrainConfig)
from tfvae.errors import ConfigError


def _with(section, **changes):
  config = RunConfig()
  return dataclasses.replace(
      config, **{section: dataclasses.replace(getattr(config, section),
                                              **changes)})


def test_defaults_are_valid():
  config = RunConfig()
  assert config.validate() is config


@pytest.mark.parametrize("section, changes", [
    ("train", dict(epochs=0, train_steps=100)),
    ("train", dict(kl_schedule="cyclical", kl_cycle_ratio=0.25)),
    ("model", dict(hidden_dims=(8, 4), activation="leaky_relu",
                   dropout=0.5, free_bits=0.0, beta=0.0)),
    ("data", dict(validation_fraction=0.0)),
])
def test_valid_variations(section, changes):
  _with(section, **changes).validate()


@pytest.mark.parametrize("section, field, value", [
    ("model", "latent_dim", 0),
    ("model", "latent_dim", -3),
    ("train", "batch_size", 0),
    ("train", "batch_size", -1),
    ("train", "learning_rate", 0.0),
    ("train", "steps_per_loop", 0),
    ("eval", "eval_iw_samples", 0),
    ("eval", "eval_batch_size", -5),
    ("model", "gaussian_scale", 0.0),
    ("train", "kl_cycles", 0),
    ("train", "checkpoints_to_keep", 0),
    ("data", "image_size", 0),
    ("model", "capacity_steps", 0),
    ("model", "logistic_mixtures", 0),
    ("model", "latent_layers", 0),
    ("model", "categorical_latents", 0),
    ("model", "categories", 0),
    ("model", "sampler_components", 0),
    ("model", "discriminator_learning_rate", 0.0),
    ("eval", "disentanglement_samples", 0),
])
def test_non_positive_values_rejected(section, field, value):
  with pytest.raises(ConfigError, match=f"--{field}={value} must be positive"):
    _with(section, **{field: value}).validate()


@pytest.mark.parametrize("section, field, value", [
    ("train", "epochs", -1),
    ("train", "train_steps", -10),
    ("train", "clip_norm", -0.5),
    ("train", "weight_decay", -1e-4),
    ("train", "kl_warmup_steps", -1),
    ("model", "free_bits", -0.1),
    ("model", "beta", -1.0),
    ("model", "capacity_max", -2.0),
    ("model", "gamma", -1.0),
    ("eval", "eval_max_examples", -1),
    ("train", "seed", -1),
    ("train", "checkpoint_steps", -1),
    ("model", "continuous_latent_dim", -1),
    ("model", "temperature_anneal_rate", -1.0),
    ("eval", "frechet_samples", -1),
    ("data", "shapes_samples", -1),
    ("model", "tc_weight", -1.0),
    ("model", "dip_lambda_od", -1.0),
    ("model", "dip_lambda_d", -1.0),
    ("model", "adversarial_weight", -1.0),
    ("model", "gan_weight", -1.0),
    ("model", "pixel_weight", -1.0),
])
def test_negative_values_rejected(section, field, value):
  with pytest.raises(ConfigError, match=f"--{field}={value} must be >= 0"):
    _with(section, **{field: value}).validate()


@pytest.mark.parametrize("section, field, value", [
    ("model", "likelihood", "poisson"),
    ("model", "encoder", "resnet"),
    ("model", "decoder", "transformer"),
    ("model", "activation", "tanh"),
    ("train", "kl_schedule", "step"),
    ("train", "strategy", "tpu"),
    ("model", "sampler", "flow"),
    ("model", "dip_type", "iii"),
])
def test_bad_choices_rejected(section, field, value):
  with pytest.raises(ConfigError) as error:
    _with(section, **{field: value}).validate()
  message = str(error.value)
  assert f"--{field}={value!r}" in message
  assert "is not one of" in message


def test_bad_choice_lists_the_choices():
  with pytest.raises(ConfigError, match="bernoulli, gaussian"):
    _with("model", likelihood="poisson").validate()


@pytest.mark.parametrize("section, field, value", [
    ("model", "dropout", 1.0),
    ("model", "dropout", 1.5),
    ("model", "dropout", -0.1),
    ("data", "validation_fraction", 1.0),
    ("data", "test_fraction", 1.0),
    ("train", "kl_cycle_ratio", 1.0),
])
def test_fractions_must_be_below_one(section, field, value):
  with pytest.raises(ConfigError,
                     match=rf"--{field}={value} must be in \[0, 1\)"):
    _with(section, **{field: value}).validate()


@pytest.mark.parametrize("hidden_dims", [(0,), (64, -1)])
def test_hidden_dims_must_be_positive(hidden_dims):
  with pytest.raises(ConfigError, match="--hidden_dims="):
    _with("model", hidden_dims=hidden_dims).validate()


@pytest.mark.parametrize("latent_dims", [(0,), (16, -2)])
def test_latent_dims_must_be_positive(latent_dims):
  with pytest.raises(ConfigError, match="--latent_dims="):
    _with("model", latent_dims=latent_dims).validate()


def test_logistic_mixtures_need_the_discretized_logistic():
  with pytest.raises(ConfigError, match="--logistic_mixtures=5 applies to "
                     "--likelihood=discretized_logistic"):
    _with("model", logistic_mixtures=5).validate()
  _with("model", logistic_mixtures=5,
        likelihood="discretized_logistic").validate()


def test_temperature_floor_below_start():
  with pytest.raises(ConfigError, match="--temperature_min=2.0 is above"):
    _with("model", temperature_min=2.0).validate()


def test_cyclical_needs_rising_ratio():
  with pytest.raises(ConfigError, match="--kl_cycle_ratio=0"):
    _with("train", kl_schedule="cyclical", kl_cycle_ratio=0.0).validate()
  # A zero ratio is harmless for other schedules.
  _with("train", kl_schedule="linear", kl_cycle_ratio=0.0).validate()


def test_nothing_to_train_rejected():
  with pytest.raises(ConfigError, match="--epochs or --train_steps"):
    _with("train", epochs=0, train_steps=0).validate()


def test_unknown_disentanglement_metric_names_the_flag_and_choices():
  with pytest.raises(ConfigError) as error:
    _with("eval", disentanglement_metrics=("mig", "modularity")).validate()
  message = str(error.value)
  assert message.startswith("--disentanglement_metrics='modularity'")
  assert "beta_vae, factor_vae, mig, dci, sap" in message
  assert "\n" not in message
  _with("eval", disentanglement_metrics=("mig", "dci")).validate()


@pytest.mark.parametrize("dims", [(0,), (64, -1)])
def test_discriminator_hidden_dims_must_be_positive(dims):
  with pytest.raises(ConfigError, match="--discriminator_hidden_dims"):
    _with("model", discriminator_hidden_dims=dims).validate()


def test_run_name():
  assert _with("train", model_dir="runs/mnist_vae/").run_name == "mnist_vae"
  assert _with("train", model_dir="/").run_name == "model"


def test_from_dict_inverts_asdict_through_json():
  config = RunConfig(
      data=DataConfig(dataset="mnist", validation_fraction=0.2),
      model=ModelConfig(hidden_dims=(64, 32), latent_dim=8, beta=2.0,
                        model="beta_vae", batch_norm=True,
                        discriminator_hidden_dims=(8, 4)),
      train=TrainConfig(batch_size=16, seed=3),
      eval=EvalConfig(eval_iw_samples=50,
                      disentanglement_metrics=("mig", "sap")))
  values = json.loads(json.dumps(dataclasses.asdict(config)))
  values["data_shape"] = [28, 28, 1]  # Extra keys are ignored.
  assert RunConfig.from_dict(values) == config
