"""`vae` with a mixture prior, a VampPrior and an IAF posterior flow, through
the shared zoo checks."""

import pytest

from tests.models import zoo_harness
from tfvae.config import ModelConfig
from tfvae.errors import ConfigError
from tfvae.models import registry
import tfvae.models  # pylint: disable=unused-import  # Registers variants.

CONFIGS = {
    "mixture": ModelConfig(model="vae", hidden_dims=(64,), latent_dim=4,
                           prior="mixture", prior_components=5),
    "vamp": ModelConfig(model="vae", hidden_dims=(64,), latent_dim=4,
                        prior="vamp", prior_components=10),
    "iaf": ModelConfig(model="vae", hidden_dims=(64,), latent_dim=4,
                       posterior_flow="iaf", flow_layers=2,
                       flow_hidden_dims=(32,)),
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def run(request, tmp_path_factory):
  return zoo_harness.train_variant(CONFIGS[request.param],
                                   tmp_path_factory.mktemp(request.param))


def test_learns(run):
  zoo_harness.assert_learns(run)
  assert run.metrics["test_nll"] <= run.metrics["test_neg_elbo"] + 0.5


def test_exports_and_serves(run, tmp_path):
  zoo_harness.assert_serves(run, tmp_path)
  zoo_harness.assert_loads(run)
  zoo_harness.assert_tflite_runs(run)


def test_ae_rejects_vamp_prior():
  if "ae" not in registry.names():
    pytest.skip("no `ae` variant registered yet")
  with pytest.raises(ConfigError, match="prior"):
    registry.check_options(ModelConfig(model="ae", prior="vamp"))
