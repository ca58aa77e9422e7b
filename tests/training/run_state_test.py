"""Tests of `tfvae.training.run_state`: resume checks and --restart cleanup."""

import dataclasses
import json
import os

import pytest

from tfvae.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from tfvae.errors import ConfigError
from tfvae.training import run_state


def _config(model_dir, model=None, data=None, **train):
  return RunConfig(
      data=data or DataConfig(),
      model=model or ModelConfig(hidden_dims=(64, 32), latent_dim=8),
      train=TrainConfig(**dict(dict(model_dir=str(model_dir), epochs=5,
                                    batch_size=32, seed=1), **train)))


@pytest.fixture
def saved(tmp_path):
  config = _config(tmp_path)
  run_state.write_config(config, str(tmp_path), (28, 28, 1), 10)
  return config


def test_write_config_writes_json(tmp_path, saved):
  saved_dict = run_state.read_config_dict(str(tmp_path))
  assert saved_dict["model"]["latent_dim"] == 8
  assert saved_dict["model"]["hidden_dims"] == [64, 32]
  assert saved_dict["train"]["batch_size"] == 32
  assert saved_dict["data_shape"] == [28, 28, 1]
  assert saved_dict["num_classes"] == 10
  assert os.listdir(tmp_path) == [run_state.CONFIG_FILE]


def test_read_config_dict_none_without_file(tmp_path):
  assert run_state.read_config_dict(str(tmp_path)) is None
  run_state.check_resumable(_config(tmp_path), str(tmp_path))


def test_same_config_resumes(tmp_path, saved):
  run_state.check_resumable(saved, str(tmp_path))


@pytest.mark.parametrize("changes", [
    dict(epochs=50), dict(train_steps=1000), dict(learning_rate=3e-4),
    dict(restart=True, steps_per_loop=7, checkpoint_steps=100)])
def test_loop_length_changes_resume(tmp_path, saved, changes):
  run_state.check_resumable(dataclasses.replace(
      saved, train=dataclasses.replace(saved.train, **changes)),
                            str(tmp_path))


@pytest.mark.parametrize("section, field, value", [
    ("model", "latent_dim", 16),
    ("model", "hidden_dims", (64,)),
    ("model", "likelihood", "gaussian"),
    ("train", "seed", 2),
    ("train", "batch_size", 64),
    ("data", "dataset", "mnist"),
    ("data", "binarize", False),
])
def test_changed_settings_refuse_to_resume(tmp_path, saved, section, field,
                                           value):
  changed = dataclasses.replace(
      saved, **{section: dataclasses.replace(getattr(saved, section),
                                             **{field: value})})
  with pytest.raises(ConfigError) as error:
    run_state.check_resumable(changed, str(tmp_path))
  message = str(error.value)
  assert f"--{field}=" in message
  assert "--restart" in message
  assert str(tmp_path) in message


def test_latent_dim_message_names_both_values(tmp_path, saved):
  changed = dataclasses.replace(
      saved, model=dataclasses.replace(saved.model, latent_dim=3))
  with pytest.raises(ConfigError, match="--latent_dim=8, not --latent_dim=3"):
    run_state.check_resumable(changed, str(tmp_path))


def test_clear_outputs_removes_only_run_outputs(tmp_path, saved):
  for folder in ("checkpoints", "train", "eval", "images"):
    os.makedirs(tmp_path / folder / "sub")
    (tmp_path / folder / "sub" / "file").write_text("x")
  (tmp_path / "metrics.json").write_text(json.dumps({"a": 1}))
  keep = ("notes.txt", "my_export")
  (tmp_path / "notes.txt").write_text("keep me")
  os.makedirs(tmp_path / "my_export")
  run_state.clear_outputs(str(tmp_path))
  assert sorted(os.listdir(tmp_path)) == sorted(keep)
  assert (tmp_path / "notes.txt").read_text() == "keep me"
  assert run_state.read_config_dict(str(tmp_path)) is None


def test_clear_outputs_on_empty_folder(tmp_path):
  run_state.clear_outputs(str(tmp_path))
  assert os.listdir(tmp_path) == []


def _edit_saved(model_dir, edit):
  path = os.path.join(str(model_dir), run_state.CONFIG_FILE)
  with open(path) as f:
    saved = json.load(f)
  edit(saved["model"])
  with open(path, "w") as f:
    json.dump(saved, f)


def test_stale_options_of_other_variants_do_not_block_resume(tmp_path,
                                                             saved):
  def edit(model):
    model["adversarial_weight"] = 1.0  # An aae default that changed since.
    del model["tc_weight"]  # A field the run predates.
  _edit_saved(tmp_path, edit)
  run_state.check_resumable(saved, str(tmp_path))
  # The model's own options still count, saved or missing.
  with pytest.raises(ConfigError, match="--latent_dim=8, not --latent_dim=4"):
    run_state.check_resumable(dataclasses.replace(saved, model=dataclasses
                                                  .replace(saved.model,
                                                           latent_dim=4)),
                              str(tmp_path))
  _edit_saved(tmp_path, lambda model: model.pop("free_bits"))
  with pytest.raises(ConfigError, match="--free_bits=None, not "
                     "--free_bits=0.5"):
    run_state.check_resumable(dataclasses.replace(saved, model=dataclasses
                                                  .replace(saved.model,
                                                           free_bits=0.5)),
                              str(tmp_path))


def test_model_settings_drop_other_variants_options():
  settings = run_state.model_settings(dict(
      model="vae", latent_dim=3, adversarial_weight=1.0, free_bits=0.5))
  assert settings == dict(model="vae", latent_dim=3, free_bits=0.5)
  assert run_state.model_settings(dict(model="aae", adversarial_weight=1.0))[
      "adversarial_weight"] == 1.0
