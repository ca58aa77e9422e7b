"""A run's folder is enough to rebuild its trained model (what export uses).

`run_state.load_trained_model(model_dir)` rebuilds the model from
`config.json` and the latest checkpoint; `python -m tfvae.export` exports
what it returns. Checked in-process on the shared Bernoulli run.
"""

import pytest

from tests.integration import conftest


@pytest.fixture(scope="module")
def reloaded(bernoulli_run):
  from tfvae.training import run_state  # pylint: disable=g-import-not-at-top

  return run_state.load_trained_model(bernoulli_run.model_dir)


def test_reloaded_config_and_step(reloaded, shapes_dir):
  model, config, step = reloaded
  assert step == conftest.TRAIN_STEPS
  assert config.model.latent_dim == 8
  assert config.model.hidden_dims == (128,)
  assert config.data.data_dir == shapes_dir
  assert model.data_shape == (28, 28, 1)


def test_reloaded_model_reproduces_test_metrics(reloaded, bernoulli_run):
  # pylint: disable=g-import-not-at-top
  from tfvae.data import pipeline
  from tfvae.evaluation.likelihood import Evaluator
  from tfvae.training import experiment
  # pylint: enable=g-import-not-at-top

  model, config, _ = reloaded
  data = experiment.load_data(config)
  dataset = pipeline.eval_dataset(
      data.test_x, data.test_y, batch_size=config.eval.eval_batch_size,
      binarized=True, binarization_seed=config.eval.test_binarization_seed)
  # The run's evaluation used the same stateless noise (seeded by the run
  # seed and batch index), so equal weights give equal numbers.
  results = Evaluator(model, seed=config.train.seed).evaluate(dataset)
  metrics = bernoulli_run.metrics
  assert results["num_examples"] == metrics["test_examples"]
  for key in ("neg_elbo", "distortion", "rate", "reconstruction_mse"):
    assert results[key] == pytest.approx(metrics[f"test_{key}"],
                                         rel=1e-4), key
