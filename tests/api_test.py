"""The public Python API: `import tfvae`, `config_from_flagfile`,
`train_and_evaluate`."""

import dataclasses
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tfvae
from tests.conftest import REPO_ROOT
from tests.models import zoo_harness
from tfvae import api
from tfvae.errors import ConfigError

QUICKSTART = os.path.join(REPO_ROOT, "configs", "quickstart.flags")


# ---- import tfvae ------------------------------------------------------------


def test_import_is_lazy_and_cheap():
  script = f"""
import json, sys
import tfvae
names = [tfvae.RunConfig, tfvae.DataConfig, tfvae.ModelConfig,
         tfvae.TrainConfig, tfvae.EvalConfig, tfvae.ExportConfig]
config = tfvae.config_from_flagfile({QUICKSTART!r}, epochs=1)
from absl import flags
print(json.dumps({{
    "loaded": [m for m in ("tensorflow", "tensorflow_probability", "keras",
                           "tfvae.models", "tfvae.training")
               if m in sys.modules],
    "global_flags": "latent_dim" in flags.FLAGS,
    "epochs": config.train.epochs, "version": tfvae.__version__}}))
"""
  done = subprocess.run([sys.executable, "-c", script], capture_output=True,
                        text=True, cwd=REPO_ROOT, timeout=120, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  report = json.loads(done.stdout.strip().splitlines()[-1])
  assert report == {"loaded": [], "global_flags": False, "epochs": 1,
                    "version": tfvae.__version__}


def test_public_names():
  for name in ("RunConfig", "DataConfig", "ModelConfig", "TrainConfig",
               "EvalConfig", "ExportConfig", "config_from_flagfile",
               "train_and_evaluate", "load", "data", "__version__"):
    assert name in dir(tfvae), name
    assert getattr(tfvae, name) is not None
  assert tfvae.RunConfig is tfvae.config.RunConfig
  assert tfvae.train_and_evaluate is api.train_and_evaluate
  assert hasattr(tfvae.data, "from_arrays")
  with pytest.raises(AttributeError, match="no_such_name"):
    tfvae.no_such_name  # pylint: disable=pointless-statement


# ---- config_from_flagfile ----------------------------------------------------


def test_reads_flagfile_like_train_py():
  config = tfvae.config_from_flagfile(QUICKSTART)
  assert isinstance(config, tfvae.RunConfig)
  assert config.model.hidden_dims == (512, 256)
  assert config.model.latent_dim == 32
  assert config.data.dataset == "fashion_mnist"
  assert config.train.model_dir == "runs/quickstart"
  assert config.eval.eval_iw_samples == 1000
  assert config.train.batch_size == 128
  # Flags the file does not set keep train.py's defaults.
  assert config.train.seed == 0 and config.export.export is True
  with pytest.raises(dataclasses.FrozenInstanceError):
    config.train.epochs = 3


@pytest.mark.parametrize("path", sorted(glob.glob(
    os.path.join(REPO_ROOT, "configs", "*.flags"))), ids=os.path.basename)
def test_every_shipped_flagfile_reads(path):
  config = tfvae.config_from_flagfile(path, epochs=1)
  assert config.train.epochs == 1


def test_overrides_are_field_names_with_python_values():
  config = tfvae.config_from_flagfile(
      QUICKSTART, epochs=1, model_dir="runs/x", hidden_dims=(64,),
      learning_rate=1, export_dir=None, batch_norm=True,
      flow_hidden_dims=[8, 8], eval_iw_samples=10)
  assert config.train.epochs == 1
  assert config.train.model_dir == "runs/x" and config.run_name == "x"
  assert config.model.hidden_dims == (64,)
  assert config.model.flow_hidden_dims == (8, 8)
  assert config.train.learning_rate == 1.0
  assert isinstance(config.train.learning_rate, float)
  assert config.model.batch_norm is True
  assert config.eval.eval_iw_samples == 10
  assert config.model.latent_dim == 32  # From the file.
  # A string is read as the flag would be.
  assert tfvae.config_from_flagfile(
      QUICKSTART, hidden_dims="64,32").model.hidden_dims == (64, 32)


def test_unknown_override_is_named():
  with pytest.raises(ConfigError, match=r"epoch=1.*did you mean epochs"):
    tfvae.config_from_flagfile(QUICKSTART, epoch=1)


@pytest.mark.parametrize("overrides, match", [
    ({"latent_dim": "8"}, "latent_dim='8' must be an int"),
    ({"export": "no"}, "export='no' must be a bool"),
    ({"epochs": True}, "epochs=True must be an int"),
    ({"hidden_dims": 5}, "hidden_dims=5 must be a sequence"),
])
def test_override_of_the_wrong_type(overrides, match):
  with pytest.raises(ConfigError, match=match):
    tfvae.config_from_flagfile(QUICKSTART, **overrides)


def test_overrides_are_validated():
  with pytest.raises(ConfigError, match="Nothing to train"):
    tfvae.config_from_flagfile(QUICKSTART, epochs=0)
  with pytest.raises(ConfigError, match="--latent_dim=0 must be positive"):
    tfvae.config_from_flagfile(QUICKSTART, latent_dim=0)
  with pytest.raises(ConfigError, match="likelihood"):
    tfvae.config_from_flagfile(QUICKSTART, likelihood="poisson")


def test_missing_flagfile(tmp_path):
  path = str(tmp_path / "nope.flags")
  with pytest.raises(ConfigError) as error:
    tfvae.config_from_flagfile(path)
  message = str(error.value)
  assert path in message and "\n" not in message


@pytest.mark.parametrize("line, match", [
    ("--no_such_flag=3", r"unknown flag --no_such_flag"),
    ("--latnet_dim=3", r"unknown flag --latnet_dim \(did you mean "
                       r"--latent_dim\?\)"),
    ("--epochs=-1", r"--epochs must be >= 0"),
    ("--epochs=many", r"--epochs=many"),
    ("--flagfile=missing.flags", r"missing.flags"),
])
def test_bad_flag_in_file_is_one_line(tmp_path, line, match):
  path = tmp_path / "bad.flags"
  path.write_text(f"# A comment.\n--model=vae\n{line}\n")
  with pytest.raises(ConfigError, match=match) as error:
    tfvae.config_from_flagfile(path)
  assert str(path) in str(error.value)
  assert "\n" not in str(error.value)


# ---- train_and_evaluate ------------------------------------------------------


def _tiny_config(root, **overrides):
  values = dict(train_steps=20, epochs=0, hidden_dims=(16,), latent_dim=2,
                batch_size=32, steps_per_loop=10, eval_iw_samples=5,
                progress=False, images=False,
                model_dir=os.path.join(root, "run"),
                export_dir=os.path.join(root, "export"))
  values.update(overrides)
  return tfvae.config_from_flagfile(QUICKSTART, **values)


def test_passes_data_and_networks_through_and_exports(monkeypatch):
  from tfvae.export import exporter  # pylint: disable=g-import-not-at-top
  from tfvae.training import experiment  # pylint: disable=g-import-not-at-top
  seen = {}

  class FakeTrainer:
    model = object()

  def fake_train(config, **kwargs):
    seen["train"] = (config, kwargs)
    return experiment.RunResult(FakeTrainer(), {"test_nll": 1.0},
                                "m/metrics.json", {"samples": "m/s.png"})

  def fake_export(model, config):
    seen["export"] = (model, config)
    return "exported"

  monkeypatch.setattr(experiment, "train_and_evaluate", fake_train)
  monkeypatch.setattr(exporter, "export_run", fake_export)
  config = tfvae.config_from_flagfile(QUICKSTART, model_dir="m")
  data, encoder, decoder = object(), object(), object()
  result = tfvae.train_and_evaluate(config, data=data, encoder=encoder,
                                    decoder=decoder)
  assert seen["train"] == (config, {"data": data, "encoder": encoder,
                                    "decoder": decoder})
  assert seen["export"] == (FakeTrainer.model, config)
  assert result.export == "exported"
  assert result.model is FakeTrainer.model
  assert result.metrics == {"test_nll": 1.0}
  assert result.metrics_path == "m/metrics.json"
  assert result.image_paths == {"samples": "m/s.png"}
  assert result.model_dir == "m"
  seen.clear()
  result = tfvae.train_and_evaluate(dataclasses.replace(
      config, export=dataclasses.replace(config.export, export=False)))
  assert "export" not in seen and result.export is None
  assert seen["train"][1] == {"data": None, "encoder": None, "decoder": None}


def test_trains_on_arrays_evaluates_and_exports(tmp_path):
  images, labels = zoo_harness.make_shapes(300)
  config = _tiny_config(str(tmp_path))
  result = tfvae.train_and_evaluate(
      config, data=tfvae.data.from_arrays(images, labels))
  assert isinstance(result, api.TrainResult)
  assert result.metrics["step"] == 20
  assert np.isfinite(result.metrics["test_nll"])
  with open(result.metrics_path) as f:
    assert json.load(f)["step"] == 20
  assert result.model_dir == config.train.model_dir
  assert result.model is result.trainer.model
  assert result.export.version == 1
  assert result.export.version_dir == str(tmp_path / "export" / "1")
  assert os.path.isfile(os.path.join(result.export.version_dir,
                                     "saved_model.pb"))
  # The same call again resumes (nothing left to train) and evaluates; with
  # export=False nothing is exported.
  again = tfvae.train_and_evaluate(
      api.with_overrides(config, export=False),
      data=tfvae.data.from_arrays(images, labels))
  assert again.export is None
  assert again.resumed_from is not None
  assert again.metrics["step"] == 20
