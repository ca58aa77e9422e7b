"""One run end to end: data -> training (or resume) -> evaluation -> outputs.

`train_and_evaluate` is what `train.py` calls; tests call it with a
`RunConfig` directly.
"""

import dataclasses
import os
import time

from absl import logging
import numpy as np
import keras
import tensorflow as tf

from tfvae.data import pipeline
from tfvae.data import sources
from tfvae.errors import ConfigError
from tfvae.evaluation import images as images_lib
from tfvae.evaluation import report
from tfvae.evaluation import scatter
from tfvae.evaluation import tabular
from tfvae.networks import custom
from tfvae.training import run_state
from tfvae.training.loop import Trainer

# The dataset name recorded for data passed as arrays.
ARRAYS_DATASET = "arrays"


@dataclasses.dataclass
class RunResult:
  """What a finished run produced.

  Attributes:
    trainer: the `Trainer` holding the trained model.
    metrics: the dict written to `metrics.json`.
    metrics_path: where it was written.
    image_paths: picture name -> PNG path.
    resumed_from: the checkpoint training resumed from, or None.
  """
  trainer: Trainer
  metrics: dict
  metrics_path: str
  image_paths: dict
  resumed_from: str = None


def load_data(config, splits=None):
  """Reads and prepares the data `config` asks for (or the given `splits`)."""
  if splits is None:
    splits = sources.load_splits(config.data)
  return pipeline.prepare(splits, config.data.validation_fraction,
                          config.model.likelihood)


def train_and_evaluate(config, strategy=None, data=None, encoder=None,
                       decoder=None):
  """Trains (resuming if possible), evaluates on the test split, writes outputs.

  Args:
    config: a validated `RunConfig`.
    strategy: optional `tf.distribute.Strategy` overriding the config's.
    data: `tfvae.data.from_arrays(...)` splits to use instead of
      `config.data.dataset` (recorded as the dataset `arrays`).
    encoder: a custom Keras encoder body (see `tfvae.networks.custom`).
    decoder: a custom Keras decoder body.

  Returns:
    A `RunResult`.

  Raises:
    TfvaeError: for bad flags, data, or a diverging run.
  """
  model_dir = config.train.model_dir
  existing = model_dir  # The deepest part of model_dir that exists.
  while existing and not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if existing and not os.path.isdir(existing):
    raise ConfigError(f"--model_dir={model_dir}: {existing} is a file, not a "
                      "folder; choose a folder path.")
  if data is not None:
    config = dataclasses.replace(config, data=dataclasses.replace(
        config.data, dataset=ARRAYS_DATASET))
  keras.utils.set_random_seed(config.train.seed)
  encoder, decoder = custom.fresh_copy(encoder), custom.fresh_copy(decoder)
  if config.train.restart:
    run_state.clear_outputs(model_dir)
  data = load_data(config, data)
  os.makedirs(model_dir, exist_ok=True)
  trainer = Trainer(config, data, strategy, encoder=encoder, decoder=decoder)
  if trainer.manager.latest_checkpoint:
    run_state.check_resumable(config, model_dir)
  resumed_from = trainer.restore_or_initialize()
  if resumed_from:
    logging.info("Resuming from %s at step %d.", resumed_from,
                 int(trainer.step.numpy()))
  run_state.write_config(
      config, model_dir, data.data_shape, data.num_classes,
      columns=data.columns, class_names=data.class_names,
      custom_networks=[side for side, body in (("encoder", encoder),
                                               ("decoder", decoder))
                       if body is not None])
  try:
    trainer.fit()
  except KeyboardInterrupt:
    path = trainer.save()
    raise KeyboardInterrupt(
        f"Interrupted; saved {path}. Run the same command to resume.")
  changed = trainer.model.after_training(pipeline.eval_dataset(
      data.train_x, data.train_y, batch_size=config.eval.eval_batch_size,
      binarized=trainer.binarized,
      binarization_seed=config.eval.test_binarization_seed))
  if changed:
    trainer.save()
  metrics, image_paths = evaluate(trainer, data)
  metrics_path = report.write_metrics(metrics, model_dir)
  return RunResult(trainer, metrics, metrics_path, image_paths, resumed_from)


def evaluate(trainer, data):
  """Final test evaluation, pictures and the metrics dict.

  Returns:
    `(metrics, image_paths)`.
  """
  config = trainer.config
  test_x, test_y = data.test_x, data.test_y
  if config.eval.eval_max_examples:
    test_x = test_x[:config.eval.eval_max_examples]
    test_y = None if test_y is None else test_y[:len(test_x)]
  dataset = pipeline.eval_dataset(
      test_x, test_y, batch_size=config.eval.eval_batch_size,
      binarized=trainer.binarized,
      binarization_seed=config.eval.test_binarization_seed)
  began = time.perf_counter()
  results = trainer.evaluator.evaluate(dataset, config.eval.eval_iw_samples)
  step = int(trainer.step.numpy())
  image_paths = {}
  writer = tf.summary.create_file_writer(
      os.path.join(config.train.model_dir, "eval"))
  with writer.as_default(step=step):
    for name in ("neg_elbo", "nll", "bits_per_dim", "distortion", "rate",
                 "reconstruction_mse", "active_units"):
      if results[name] is not None:
        tf.summary.scalar(f"test/{name}", results[name])
  images_dir = os.path.join(config.train.model_dir, "images")
  if config.eval.images and not data.is_vector:
    first = next(iter(dataset.unbatch().batch(40)))
    usage = results["kl_per_dim"] or results["code_variance"]
    image_paths = images_lib.write_all(
        trainer.model, first["image"].numpy(), usage, images_dir, writer,
        step, seed=config.train.seed, test_labels=(
            first["label"].numpy() if "label" in first else None),
        num_classes=data.num_classes)
  if config.eval.images and test_y is not None:
    image_paths["latent_scatter"] = images_lib.write_picture(
        scatter.latent_scatter(results["codes"], test_y[:len(
            results["codes"])], data.class_names),
        images_dir, "latent_scatter", writer, step)
  writer.flush()
  if data.is_vector and config.model.likelihood == "tabular":
    baseline = tabular.trivial_nll(data.train_x, test_x, data.columns)
  else:
    baseline = trivial_nll(data.train_x, test_x, trainer.binarized,
                           config.model.likelihood)
  metrics = {
      "step": step,
      "model": config.model.model,
      "dataset": config.data.dataset,
      "data_source": data.source,
      "data_shape": list(data.data_shape),
      "latent_dim": config.model.latent_dim,
      "likelihood": config.model.likelihood,
      "test_examples": results["num_examples"],
      "test_neg_elbo": results["neg_elbo"],
      "test_nll": results["nll"],
      "test_bits_per_dim": (None if data.is_vector
                            else results["bits_per_dim"]),
      "test_distortion": results["distortion"],
      "test_rate": results["rate"],
      "test_reconstruction_mse": results["reconstruction_mse"],
      "test_column_errors": results["column_errors"],
      "kl_per_dim": results["kl_per_dim"],
      "has_likelihood_bound": trainer.model.has_likelihood_bound,
      "active_units": results["active_units"],
      "code_dim": len(results["code_variance"]),
      "eval_iw_samples": config.eval.eval_iw_samples,
      "eval_seconds": time.perf_counter() - began,
      "train_img_per_s": trainer.train_images_per_second,
      "trivial_nll": baseline,
  }
  return metrics, image_paths


def trivial_nll(train_x, test_x, binarized, likelihood):
  """-log p(x) per example under independent per-pixel marginals.

  The baseline a model must beat: Bernoulli pixels with the training
  set's mean intensity (for binarized data), or for Gaussian likelihoods
  Gaussians with each pixel's training mean and std. Not defined (None) for
  a Bernoulli likelihood on non-binarized data.

  Args:
    train_x: `[N, H, W, C]` uint8 or float training images.
    test_x: `[M, H, W, C]` test images.
    binarized: whether images are binarized (Bernoulli likelihood).
    likelihood: `bernoulli` or `gaussian`.

  Returns:
    float nats per example, or None.
  """
  def unit(x):  # As the pipeline does: uint8 / 255, floats unchanged.
    scale = 255.0 if np.asarray(x).dtype == np.uint8 else 1.0
    return np.asarray(x, np.float64) / scale

  train, test = unit(train_x), unit(test_x)
  if likelihood == "bernoulli":
    if not binarized:
      return None
    p = np.clip(train.mean(axis=0), 1e-6, 1 - 1e-6)
    # Expected log-likelihood of binarized test images: E[x] = pixel value.
    per_pixel = test * np.log(p) + (1 - test) * np.log1p(-p)
  else:
    mean, std = train.mean(axis=0), np.maximum(train.std(axis=0), 1e-3)
    per_pixel = (-0.5 * ((test - mean) / std)**2 - np.log(std)
                 - 0.5 * np.log(2 * np.pi))
  return float(-per_pixel.reshape(len(test), -1).sum(axis=1).mean())
