"""One run end to end: data -> training (or resume) -> evaluation -> outputs.

`train_and_evaluate` is what `train.py` calls; tests call it with a
`RunConfig` directly.
"""

import dataclasses
import os
import sys
import time

from absl import logging
import numpy as np
import keras
import tensorflow as tf

from tfvae import models
from tfvae.data import pipeline
from tfvae.data import sources
from tfvae.data import streams
from tfvae.errors import ConfigError
from tfvae.evaluation import disentanglement
from tfvae.evaluation import images as images_lib
from tfvae.evaluation import report
from tfvae.evaluation import sample_quality
from tfvae.evaluation import scatter
from tfvae.evaluation import tabular
from tfvae.networks import custom
from tfvae.training import run_lock
from tfvae.training import run_state
from tfvae.training import strategy as strategy_lib
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
    is_chief: False on the other workers of a multi-worker run, which
      train but write no metrics, pictures or exports (`metrics` is then
      empty and `metrics_path` None).
  """
  trainer: Trainer
  metrics: dict
  metrics_path: str
  image_paths: dict
  resumed_from: str = None
  is_chief: bool = True


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
  # A multi-worker task is known from TF_CONFIG before TensorFlow starts.
  task = (strategy_lib.task_name(strategy) if strategy is not None
          else strategy_lib.configured_task(config.train.strategy))
  with run_lock.RunLock(model_dir, task):
    if config.train.restart and task == run_lock.CHIEF:
      # Before the strategy exists: creating it waits for every worker, so
      # none restores a checkpoint that is about to be removed.
      run_state.clear_outputs(model_dir)
    if strategy is None:
      strategy = strategy_lib.make_strategy(config.train.strategy,
                                            config.train.worker_timeout_s)
    return _train_and_evaluate(config, strategy, data, encoder, decoder)


def _train_and_evaluate(config, strategy, data, encoder, decoder):
  """`train_and_evaluate` once the run folder is locked."""
  model_dir = config.train.model_dir
  keras.utils.set_random_seed(config.train.seed)
  encoder, decoder = custom.fresh_copy(encoder), custom.fresh_copy(decoder)
  data = load_data(config, data)
  # Before training: metrics asked for that cannot be computed are an error.
  disentanglement.check_before_training(
      config.eval, getattr(data, "ground_truth", None),
      models.get(config.model.model), config.model.model)
  trainer = Trainer(config, data, strategy, encoder=encoder, decoder=decoder)
  if trainer.manager.latest_checkpoint:
    run_state.check_resumable(config, model_dir)
  resumed_from = trainer.restore_or_initialize()
  if resumed_from:
    logging.info("Resuming from %s at step %d.", resumed_from,
                 int(trainer.step.numpy()))
  if trainer.is_chief:
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
  if not trainer.is_chief:
    logging.info("Finished training at step %d; the chief evaluates and "
                 "exports.", int(trainer.step.numpy()))
    return RunResult(trainer, {}, None, {}, resumed_from, is_chief=False)
  changed = trainer.model.after_training(pipeline.eval_dataset(
      data.train_x, data.train_y, batch_size=config.eval.eval_batch_size,
      binarized=trainer.binarized,
      binarization_seed=config.eval.test_binarization_seed),
      seed=config.train.seed)
  if changed:
    trainer.save()
  metrics, image_paths = evaluate(trainer, data)
  metrics_path = report.write_metrics(metrics, model_dir)
  return RunResult(trainer, metrics, metrics_path, image_paths, resumed_from)


def evaluation_progress(config, num_examples):
  """The test evaluation's progress bar, or None when stdout is not a
  terminal (or `--noprogress`), as for training.

  Prints what is evaluated first: the k-sample log p(x) of the quickstart
  takes over a minute on a CPU.
  """
  if not (config.train.progress and sys.stdout.isatty()):
    return None
  k = config.eval.eval_iw_samples
  print(f"Evaluating {num_examples} test examples"
        + (f" (log p(x) with {k} importance samples each)" if k else ""))
  return keras.utils.Progbar(num_examples, unit_name="example")


def evaluate(trainer, data):
  """Final test evaluation, pictures and the metrics dict.

  Returns:
    `(metrics, image_paths)`.
  """
  config = trainer.config
  test_x, test_y = data.test_x, data.test_y
  if config.eval.eval_max_examples and (
      config.eval.eval_max_examples < len(test_x)):
    test_x = test_x[:config.eval.eval_max_examples]
    test_y = None if test_y is None else test_y[:len(test_x)]
  dataset = pipeline.eval_dataset(
      test_x, test_y, batch_size=config.eval.eval_batch_size,
      binarized=trainer.binarized,
      binarization_seed=config.eval.test_binarization_seed)
  began = time.perf_counter()
  results = trainer.evaluator.evaluate(
      dataset, config.eval.eval_iw_samples,
      progress=evaluation_progress(config, len(test_x)))
  step = int(trainer.step.numpy())
  image_paths, traversal = {}, None
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
    traversal = images_lib.traversal_rows(usage, results["code_variance"])
    image_paths = images_lib.write_all(
        trainer.model, first["image"].numpy(), usage, images_dir, writer,
        step, seed=config.train.seed, test_labels=(
            first["label"].numpy() if "label" in first else None),
        num_classes=data.num_classes, rows=traversal)
    logging.info("traversals.png: %s.", traversal.caption())
  if config.eval.images and results["labels"] is not None:
    image_paths["latent_scatter"] = images_lib.write_picture(
        scatter.latent_scatter(results["codes"], results["labels"],
                               data.class_names),
        images_dir, "latent_scatter", writer, step)
  frechet = sample_quality.evaluate_model(
      trainer.model, data, test_x, test_y,
      num_samples=config.eval.frechet_samples,
      classifier_dir=sample_quality.classifier_dir_for(
          config.eval, config.train.model_dir),
      seed=config.train.seed, batch_size=config.eval.eval_batch_size)
  with writer.as_default(step=step):
    for name in ("sample_frechet_distance", "frechet_reference"):
      if frechet[name] is not None:
        tf.summary.scalar(f"test/{name}", frechet[name])
  # None unless the data have known factors (and the model a code for them).
  factors = disentanglement.evaluate_model(
      trainer.model, config.model.model, getattr(data, "ground_truth", None),
      config.eval, trainer.binarized)
  if factors is not None:
    disentanglement.write_summaries(factors, writer, step)
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
      "kl_per_layer": results["kl_per_layer"],
      "active_units_per_layer": results["active_units_per_layer"],
      "has_likelihood_bound": trainer.model.has_likelihood_bound,
      "active_units": results["active_units"],
      "code_dim": len(results["code_variance"]),
      "test_nll_exact": results["nll_exact"],
      "code_usage": results["code_usage"],
      "traversals": None if traversal is None else traversal.as_dict(),
      "eval_iw_samples": config.eval.eval_iw_samples,
      "eval_seconds": time.perf_counter() - began,
      "train_img_per_s": trainer.train_images_per_second,
      "train_seconds": trainer.train_seconds,
      "trivial_nll": baseline,
      **frechet,
  }
  if factors is not None:
    metrics["disentanglement"] = factors
  return metrics, image_paths


def trivial_nll(train_x, test_x, binarized, likelihood):
  """-log p(x) per example under independent per-pixel marginals.

  The baseline a model must beat: Bernoulli pixels with the training
  set's mean intensity (for binarized data), or for Gaussian likelihoods
  Gaussians with each pixel's training mean and std, or for discretized
  logistics a categorical over the 256 values of each subpixel (training
  counts with add-one smoothing: an exact discrete log-probability). Not
  defined (None) for a Bernoulli likelihood on non-binarized data. All are
  functions of per-pixel statistics of the splits, so streamed splits are
  read once, in batches; their training statistics come from the first
  `TRIVIAL_MAX_TRAIN` examples.

  Args:
    train_x: `[N, H, W, C]` uint8 or float training images, or a streamed
      split.
    test_x: `[M, H, W, C]` test images, or a streamed split.
    binarized: whether images are binarized (Bernoulli likelihood).
    likelihood: `bernoulli`, `gaussian` or `discretized_logistic`.

  Returns:
    float nats per example, or None.
  """
  if likelihood == "bernoulli" and not binarized:
    return None
  if streams.is_streamed(train_x) and len(train_x) > TRIVIAL_MAX_TRAIN:
    train_x = train_x[:TRIVIAL_MAX_TRAIN]
  if likelihood == "discretized_logistic":
    return _categorical_nll(train_x, test_x)
  train_mean, train_square = _moments(train_x)
  test_mean, test_square = _moments(test_x)
  if likelihood == "bernoulli":
    p = np.clip(train_mean, 1e-6, 1 - 1e-6)
    # Expected log-likelihood of binarized test images: E[x] = pixel value.
    per_pixel = test_mean * np.log(p) + (1 - test_mean) * np.log1p(-p)
  else:
    std = np.maximum(np.sqrt(np.maximum(train_square - train_mean**2, 0)),
                     1e-3)
    squared_error = test_square - 2 * train_mean * test_mean + train_mean**2
    per_pixel = (-0.5 * squared_error / std**2 - np.log(std)
                 - 0.5 * np.log(2 * np.pi))
  return float(-per_pixel.sum())


# Training examples a streamed split's trivial baseline is fitted on.
TRIVIAL_MAX_TRAIN = 20_000
_MOMENT_BATCH = 100


def _batches(x):
  """The examples of an array or a streamed split, `_MOMENT_BATCH` at once,
  as stored (uint8 or float)."""
  if streams.is_streamed(x):
    return (batch["image"].numpy() for batch in
            pipeline.examples_dataset(x).batch(_MOMENT_BATCH))
  return (x[i:i + _MOMENT_BATCH] for i in range(0, len(x), _MOMENT_BATCH))


def _eight_bit(batch):
  """`[b, D]` int64 8-bit values of a batch (uint8, or floats v / 255)."""
  if batch.dtype != np.uint8:
    batch = np.clip(np.round(np.asarray(batch, np.float64) * 255.0), 0, 255)
  return np.asarray(batch, np.int64).reshape(len(batch), -1)


def _categorical_nll(train_x, test_x):
  """-log p(x) per test example under per-subpixel categoricals over the
  256 values, fitted to `train_x` with add-one smoothing."""
  counts = None
  for batch in _batches(train_x):
    values = _eight_bit(batch)
    offsets = 256 * np.arange(values.shape[1])
    found = np.bincount((values + offsets).reshape(-1),
                        minlength=256 * values.shape[1])
    counts = found if counts is None else counts + found
  log_p = np.log((counts.reshape(-1, 256) + 1.0) / (len(train_x) + 256.0))
  total = 0.0
  for batch in _batches(test_x):
    values = _eight_bit(batch)
    total += log_p[np.arange(values.shape[1]), values].sum()
  return float(-total / len(test_x))


def _moments(x):
  """Per-pixel mean and mean square (float64) of unit-scaled examples."""
  total = square = None
  for batch in _batches(x):
    scale = 255.0 if batch.dtype == np.uint8 else 1.0
    batch = np.asarray(batch, np.float64) / scale  # As the pipeline does.
    total = batch.sum(0) if total is None else total + batch.sum(0)
    square = ((batch**2).sum(0) if square is None
              else square + (batch**2).sum(0))
  return total / len(x), square / len(x)
