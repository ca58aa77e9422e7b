"""Session-wide trained models for the export tests.

Three tiny runs are trained in-process once per session and exported once
each (version 1):

- `bernoulli`: MLP, Bernoulli pixels, 16x16x1;
- `gaussian`: MLP, Gaussian pixels with a learned per-pixel scale, 16x16x1;
- `conv`: conv encoder/decoder, Gaussian pixels, 32x32x3.

`trained` is parameterized over the three.
"""

import os

import pytest

from tests.export import export_utils

MODEL_NAMES = ("bernoulli", "gaussian", "conv")


@pytest.fixture(scope="session")
def export_root(tmp_path_factory):
  return str(tmp_path_factory.mktemp("export_tests"))


@pytest.fixture(scope="session")
def grey_npz(export_root):
  """256 grey 16x16 shapes."""
  return export_utils.write_shapes_npz(
      os.path.join(export_root, "grey.npz"), 256, 16, 1, seed=0)


@pytest.fixture(scope="session")
def colour_npz(export_root):
  """256 colour 32x32 shapes."""
  return export_utils.write_shapes_npz(
      os.path.join(export_root, "colour.npz"), 256, 32, 3, seed=1)


@pytest.fixture(scope="session")
def bernoulli(grey_npz, export_root):
  from tfvae.config import ModelConfig  # pylint: disable=g-import-not-at-top
  return export_utils.train_and_export(
      "bernoulli",
      ModelConfig(latent_dim=export_utils.LATENT_DIM, hidden_dims=(32,)),
      grey_npz, export_root)


@pytest.fixture(scope="session")
def gaussian(grey_npz, export_root):
  from tfvae.config import ModelConfig  # pylint: disable=g-import-not-at-top
  return export_utils.train_and_export(
      "gaussian",
      ModelConfig(latent_dim=export_utils.LATENT_DIM, hidden_dims=(32,),
                  likelihood="gaussian", learn_gaussian_scale=True),
      grey_npz, export_root)


@pytest.fixture(scope="session")
def conv(colour_npz, export_root):
  from tfvae.config import ModelConfig  # pylint: disable=g-import-not-at-top
  return export_utils.train_and_export(
      "conv",
      ModelConfig(latent_dim=export_utils.LATENT_DIM, hidden_dims=(8, 16),
                  encoder="conv", decoder="conv", likelihood="gaussian"),
      colour_npz, export_root)


@pytest.fixture(params=MODEL_NAMES)
def trained(request):
  """Each of the three trained models in turn.

  Function-scoped on purpose: a parameterized session fixture makes pytest
  regroup tests of every module by parameter, which sets module fixtures
  (e.g. the train.py run) up more than once.
  """
  return request.getfixturevalue(request.param)


@pytest.fixture(scope="session")
def all_trained(bernoulli, gaussian, conv):
  return {"bernoulli": bernoulli, "gaussian": gaussian, "conv": conv}
