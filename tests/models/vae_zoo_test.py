"""`vae` and `beta_vae` through the shared zoo checks."""

import pytest

from tests.models import zoo_harness
from tfvae.config import ModelConfig

CONFIGS = {
    "vae": ModelConfig(model="vae", hidden_dims=(64,), latent_dim=4),
    "beta_vae": ModelConfig(model="beta_vae", beta=2.0, hidden_dims=(64,),
                            latent_dim=4),
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
