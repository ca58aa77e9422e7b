"""Trains the same run on one device and under MirroredStrategy on 2 CPUs.

Run as a script (TF's logical devices must be configured before TF starts);
prints one JSON line with the largest weight and metric differences. Used by
`mirrored_test.py`; `argv`: the clip norm, then optionally the model (its
discriminator's weights, when it has one, are compared too).
"""

import json
import sys
import tempfile

import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # pylint: disable=g-import-not-at-top
import numpy as np

from tfvae import config as config_lib
from tfvae.data.pipeline import Data
from tfvae.training.loop import Trainer
from tfvae.training.strategy import make_strategy


def train(strategy_name, clip_norm, model_dir, model="vae"):
  keras.utils.set_random_seed(3)
  rng = np.random.default_rng(0)
  images = (rng.random((256, 8, 8, 1)) > 0.5).astype(np.uint8) * 255
  data = Data(images[:200], None, images[200:216], None, images[216:], None,
              None, "random")
  config = config_lib.RunConfig(
      model=config_lib.ModelConfig(
          model=model, hidden_dims=(32,), latent_dim=4,
          **({"discriminator_hidden_dims": (16,)} if model == "aae" else {})),
      train=config_lib.TrainConfig(
          model_dir=model_dir, epochs=0, train_steps=12, batch_size=16,
          steps_per_loop=5, seed=3, clip_norm=clip_norm, progress=False,
          learning_rate=1e-2),
  ).validate()
  trainer = Trainer(config, data, make_strategy(strategy_name))
  validation = trainer.fit()
  auxiliary = [v for a in trainer.auxiliaries for v in a.network.weights]
  weights = [np.asarray(v.numpy()) for v in trainer.model.weights + auxiliary]
  return trainer, weights, validation


def main():
  clip_norm = float(sys.argv[1])
  model = sys.argv[2] if len(sys.argv) > 2 else "vae"
  with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
    single, single_weights, single_val = train("default", clip_norm, one,
                                               model)
    mirrored, mirrored_weights, mirrored_val = train("mirrored", clip_norm,
                                                     two, model)
  initial = max(float(np.max(np.abs(w))) for w in single_weights)
  print(json.dumps({
      "replicas": [single.num_replicas, mirrored.num_replicas],
      "steps": [int(single.step.numpy()), int(mirrored.step.numpy())],
      "num_weights": [len(single_weights), len(mirrored_weights)],
      "max_weight_diff": max(float(np.max(np.abs(a - b))) for a, b in
                             zip(single_weights, mirrored_weights)),
      "max_weight": initial,
      "validation_neg_elbo": [single_val["neg_elbo"],
                              mirrored_val["neg_elbo"]],
  }))


if __name__ == "__main__":
  main()
