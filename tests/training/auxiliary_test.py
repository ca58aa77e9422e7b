"""The loop's auxiliary objectives: own optimizer, same noise, exact resume.

A toy variant (registered for this module only) adds a critic that learns
to predict, from the posterior mean (gradient stopped), a quantity drawn
from the objective's stateless seed. Its loss does not reach the model's
loss, so the model must train exactly as a plain `vae` does, while the
critic trains by its own Adam, is checkpointed and resumes bit for bit.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae import auxiliary
from tfvae import config as config_lib
from tfvae.data import image_splits
from tfvae.models import registry
from tfvae.models.vae import VAE
from tfvae.training import experiment
from tfvae.training.loop import Trainer
from tests.models import zoo_harness

_NAME = "critic_toy_vae"


class _CriticVAE(VAE):
  """A vae plus a critic trained by an auxiliary objective."""

  OPTIONS = VAE.OPTIONS

  def __init__(self, config, data_shape, **kwargs):
    super().__init__(config, data_shape, **kwargs)
    self.critic = keras.layers.Dense(1, name="critic")
    self._objectives = (auxiliary.AuxiliaryObjective(
        name="critic", network=self.critic, loss_fn=self._critic_loss,
        terms=("loss", "target"), learning_rate=0.05),)

  def auxiliary_objectives(self):
    return self._objectives

  def _critic_loss(self, images, labels, noise, step, seed, training):
    del step, training
    code = tf.stop_gradient(self.encode_code(images, labels))
    target = tf.random.stateless_uniform(tf.shape(code)[:1], seed)
    prediction = self.critic(code)[:, 0]
    return {"loss": tf.square(prediction - target) + 0.0 * noise[:, 0],
            "target": target}


@pytest.fixture(scope="module", autouse=True)
def _registered():
  registry.register(_NAME)(_CriticVAE)
  yield
  registry._MODELS.pop(_NAME)  # pylint: disable=protected-access


def _data():
  images, labels = zoo_harness.make_shapes(200)
  return experiment.load_data(
      config_lib.RunConfig(), image_splits.make_splits(
          images[:160], labels[:160], images[160:], labels[160:],
          source="shapes"))


def _config(tmp_path, model, train_steps, name="run"):
  return config_lib.RunConfig(
      model=config_lib.ModelConfig(model=model, latent_dim=3,
                                   hidden_dims=(16,)),
      train=config_lib.TrainConfig(
          model_dir=str(tmp_path / name), epochs=0, train_steps=train_steps,
          batch_size=32, steps_per_loop=4, progress=False,
          learning_rate=1e-2)).validate()


def _trainer(config, data):
  keras.utils.set_random_seed(config.train.seed)
  trainer = Trainer(config, data)
  trainer.restore_or_initialize()
  return trainer


def _critic_and_model(trainer):
  critic = [v.numpy() for v in trainer.model.critic.trainable_variables]
  rest = [v.numpy() for v in trainer.model_variables]
  return critic, rest


@pytest.fixture(scope="module")
def data():
  return _data()


def test_critic_is_left_out_of_the_model_step(tmp_path, data):
  toy = _trainer(_config(tmp_path, _NAME, 10, "toy"), data)
  plain = _trainer(_config(tmp_path, "vae", 10, "plain"), data)
  critic_ids = {id(v) for v in toy.model.critic.trainable_variables}
  assert critic_ids and not critic_ids & {id(v) for v in toy.model_variables}
  before, _ = _critic_and_model(toy)
  toy.fit()
  plain.fit()
  after, toy_rest = _critic_and_model(toy)
  # The critic trained by its own optimizer ...
  assert toy.auxiliary_optimizers["critic"].iterations.numpy() == 10
  assert not np.allclose(before[0], after[0])
  # ... and the model trained exactly as the plain vae did.
  plain_rest = [v.numpy() for v in plain.model_variables]
  assert len(toy_rest) == len(plain_rest)
  for got, want in zip(toy_rest, plain_rest):
    np.testing.assert_array_equal(got, want)


def test_terms_are_reported_and_use_the_stateless_seed(tmp_path, data):
  trainer = _trainer(_config(tmp_path, _NAME, 8), data)
  assert trainer.metrics_names[-2:] == ("critic_loss", "critic_target")
  means, done, _ = trainer._train_loop(  # pylint: disable=protected-access
      iter(trainer.strategy.distribute_datasets_from_function(
          lambda ctx: _dataset(trainer))), tf.constant(8, tf.int64))
  assert int(done) == 8
  target = float(means["critic_target"])
  # Uniform(0, 1) targets averaged over 8 x 32 draws.
  assert 0.4 < target < 0.6, target
  assert float(means["critic_loss"]) > 0


def _dataset(trainer):
  from tfvae.data import pipeline  # pylint: disable=g-import-not-at-top
  return pipeline.train_dataset(
      trainer.data.train_x, trainer.data.train_y, batch_size=32, seed=0,
      start_step=0, total_steps=8, binarized=True)


def test_resume_is_exact_for_the_critic_and_its_optimizer(tmp_path, data):
  straight = _trainer(_config(tmp_path, _NAME, 12, "straight"), data)
  straight.fit()
  first = _trainer(_config(tmp_path, _NAME, 6, "resumed"), data)
  first.fit()
  resumed = _trainer(_config(tmp_path, _NAME, 12, "resumed"), data)
  assert int(resumed.step.numpy()) == 6
  assert resumed.auxiliary_optimizers["critic"].iterations.numpy() == 6
  resumed.fit()
  for got, want in zip(_critic_and_model(resumed), _critic_and_model(
      straight)):
    for a, b in zip(got, want):
      np.testing.assert_array_equal(a, b)
  slots = lambda t: [v.numpy() for v in t.auxiliary_optimizers[  # pylint: disable=g-long-lambda
      "critic"].variables]
  for a, b in zip(slots(resumed), slots(straight)):
    np.testing.assert_array_equal(a, b)
  names = [name for name, _ in tf.train.list_variables(
      resumed.manager.latest_checkpoint)]
  assert any(name.startswith("critic_optimizer/") for name in names), names

