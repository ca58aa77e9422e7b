"""Sample quality: the classifier-feature Frechet distance.

The Frechet distance between Gaussians fitted to two sets of features, with
means mu and covariances S, in closed form (Dowson & Landau 1982; FID's
convention: the squared 2-Wasserstein distance d^2):

  d^2 = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a^{1/2} S_b S_a^{1/2})^{1/2})

computed in float64 from symmetric eigendecompositions (negative rounding
eigenvalues clipped to 0, so rank-deficient covariances are fine).

`evaluate_model` applies it as FID does (Heusel et al. 2017), but in the
feature space of a small classifier tfvae trains on the run's own training
split (`tfvae.evaluation.feature_classifier`), not Inception's: it is a
*classifier-feature Frechet distance*, not FID, and its values are not
comparable with published FIDs, nor across datasets or classifier settings.
It compares N = min(`--frechet_samples`, test examples) real test images
(the `[0, 1]` images, not binarized) with N model samples (pixel means of
p(x|z), z from the prior, clipped to the data's range, [0, 1]; conditional
models draw the N test images' labels, so the label distributions match).
Its floor is `frechet_reference`, the same distance between N training
images (a fixed random choice) and the N test images: a model whose samples
were as good as real data would score about that. Lower is better; a small
N biases both upwards, and the classifier was trained on the training
images, which can shift the floor a little.

#### References
Dowson & Landau (1982). The Frechet Distance between Multivariate Normal
Distributions. Journal of Multivariate Analysis 12(3).
Heusel, Ramsauer, Unterthiner, Nessler & Hochreiter (2017). GANs Trained by
a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium. NeurIPS.
"""

import os
import time

from absl import logging
import numpy as np
import tensorflow as tf

from tfvae.data import pipeline
from tfvae.data import sources
from tfvae.evaluation import feature_classifier

# The keys `evaluate_model` adds to metrics.json (None when not computed).
METRIC_KEYS = ("sample_frechet_distance", "frechet_reference",
               "frechet_samples", "feature_classifier_accuracy",
               "frechet_seconds")
# Stateless seed stream of the samples, apart from the pictures' ([seed, 0]).
_SAMPLE_STREAM = 1_000_003
# Fixed seed choosing the reference's training images (the same every run).
_REFERENCE_SEED = 2017
DEFAULT_DIR_NAME = "feature_classifier"


def moments(features):
  """Mean and covariance (float64, unbiased) of `[n, d]` features, n >= 2."""
  features = np.asarray(features, np.float64)
  if features.ndim != 2 or len(features) < 2:
    raise ValueError(f"Need features [n >= 2, d], got {features.shape}.")
  return features.mean(0), np.atleast_2d(np.cov(features, rowvar=False))


def _psd_sqrt(matrix):
  """The symmetric square root of a positive semi-definite matrix."""
  values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
  return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance_from_moments(mean_a, cov_a, mean_b, cov_b):
  """The Frechet distance of N(mean_a, cov_a) and N(mean_b, cov_b).

  Args:
    mean_a: `[d]` mean.
    cov_a: `[d, d]` positive semi-definite covariance.
    mean_b: `[d]` mean.
    cov_b: `[d, d]` covariance.

  Returns:
    float >= 0, the squared 2-Wasserstein distance (what FID reports).
  """
  mean_a, mean_b = (np.asarray(m, np.float64) for m in (mean_a, mean_b))
  cov_a, cov_b = (np.asarray(c, np.float64) for c in (cov_a, cov_b))
  root_a = _psd_sqrt(cov_a)
  middle = root_a @ cov_b @ root_a
  cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0,
                          None)).sum()
  difference = mean_a - mean_b
  value = (difference @ difference + np.trace(cov_a) + np.trace(cov_b)
           - 2 * cross)
  return float(max(value, 0.0))


def frechet_distance(features_a, features_b):
  """The Frechet distance between Gaussians fitted to two feature sets.

  Args:
    features_a: `[n, d]` features, n >= 2.
    features_b: `[m, d]` features, m >= 2.

  Returns:
    float >= 0.
  """
  return frechet_distance_from_moments(*moments(features_a),
                                       *moments(features_b))


def not_computed():
  """The metrics when the figure is not computed: every key None."""
  return dict.fromkeys(METRIC_KEYS)


def model_sampler(model, seed):
  """`sample(count, index, labels)` for a `tfvae.models.vae.VAE`.

  Batch `index` is drawn with the stateless seed `[seed, stream + 2 index]`
  (`model.sample` also uses the next one), so the samples are a function of
  the run's seed.

  Returns:
    A function of `(count, index, labels)` returning `[count, H, W, C]`
    pixel means; `labels` `[count]` int32 or None.
  """
  def sample(count, index, labels):
    # Eager: big batches keep the per-call overhead small, and any object
    # with the `sample` interface works (a traced call would need TF ops).
    seed_pair = tf.constant([seed, _SAMPLE_STREAM + 2 * index], tf.int32)
    labels = None if labels is None else tf.constant(labels, tf.int32)
    return np.asarray(model.sample(count, seed_pair, labels))

  return sample


def sample_frechet(sample, classifier, train_x, test_images, test_labels,
                   batch_size=500, conditional=False):
  """The figure for a sampler, against real test images and its floor.

  Args:
    sample: `(count, index, labels) -> [count, H, W, C]` images scaled
      like the data's `[0, 1]` pixels (see `model_sampler`); called in
      batches of at most `batch_size`, `index` counting them.
    classifier: a `feature_classifier.FeatureClassifier`.
    train_x: the training split (array or streamed), for the reference.
    test_images: `[N, H, W, C]` real test images as stored (uint8 or float).
    test_labels: `[N]` int32 labels of `test_images`.
    batch_size: images per sampling and feature batch.
    conditional: pass `test_labels` to `sample` (conditional models).

  Returns:
    dict with `sample_frechet_distance`, `frechet_reference`,
    `frechet_samples` (N) and `feature_classifier_accuracy` (on the N test
    images).
  """
  count = len(test_images)
  real, correct = [], 0
  for start in range(0, count, batch_size):
    features, logits = classifier.features_and_logits(
        test_images[start:start + batch_size])
    real.append(features)
    correct += int((logits.argmax(-1)
                    == test_labels[start:start + batch_size]).sum())
  real = np.concatenate(real)
  # Samples are clipped to the range of the data ([0, 1] unless float
  # images go beyond it), as pictures of them would be.
  low, high = 0.0, 1.0
  if test_images.dtype != np.uint8 and count:
    low = min(low, float(test_images.min()))
    high = max(high, float(test_images.max()))
  positions = np.sort(np.random.default_rng(_REFERENCE_SEED).choice(
      len(train_x), min(count, len(train_x)), replace=False))
  train_images, _ = feature_classifier.read_examples(train_x[positions])
  reference = classifier.features(train_images, batch_size)
  del train_images
  generated = []
  for index, start in enumerate(range(0, count, batch_size)):
    size = min(batch_size, count - start)
    labels = test_labels[start:start + size] if conditional else None
    images = np.clip(np.asarray(sample(size, index, labels), np.float32),
                     low, high)
    generated.append(classifier.features(images, batch_size))
  generated = np.concatenate(generated)
  return {
      "sample_frechet_distance": _finite(frechet_distance(real, generated)),
      "frechet_reference": _finite(frechet_distance(reference, real)),
      "frechet_samples": count,
      "feature_classifier_accuracy": correct / count,
  }


def _finite(value):
  if not np.isfinite(value):
    logging.warning("The classifier-feature Frechet distance is not finite "
                    "(%s): the samples hold NaN or Inf.", value)
    return None
  return value


def evaluate_model(model, data, test_x=None, test_y=None, *,
                   num_samples=10_000, classifier_dir, seed=0,
                   batch_size=500,
                   settings=feature_classifier.ClassifierSettings()):
  """The classifier-feature Frechet distance of a trained model's samples.

  Trains (or reuses) the feature classifier of `data`'s training split in
  `classifier_dir`, then compares `num_samples` samples with as many real
  test images (see the module docstring). Vectors, unlabelled images and
  `num_samples=0` give None values (logged, not an error).

  Args:
    model: a trained model with the `tfvae.models.vae.VAE` interface.
    data: the run's `tfvae.data.pipeline.Data`.
    test_x: the test images evaluated (default `data.test_x`).
    test_y: their labels (default `data.test_y`).
    num_samples: N before capping by the test examples; 0 skips.
    classifier_dir: the folder of saved feature classifiers.
    seed: the run's seed (of the samples).
    batch_size: images per sampling and feature batch.
    settings: the classifier's `feature_classifier.ClassifierSettings`.

  Returns:
    dict of `METRIC_KEYS`: `sample_frechet_distance`, `frechet_reference`
    (training vs test images), `frechet_samples` (N),
    `feature_classifier_accuracy` (on the N test images) and
    `frechet_seconds` (the time it all took, classifier training included).
  """
  metrics = not_computed()
  if not num_samples:
    return metrics
  if test_x is None:
    test_x, test_y = data.test_x, data.test_y
  usable, reason = feature_classifier.is_labelled_images(
      data.train_x, data.train_y, data.num_classes)
  if usable and len(test_x) < 2:
    usable, reason = False, "fewer than 2 test images"
  if not usable:
    logging.info("No classifier-feature Frechet distance: %s.", reason)
    return metrics
  began = time.perf_counter()
  test_images, test_labels = feature_classifier.read_examples(
      test_x, test_y, num_samples)
  if test_labels is None:
    logging.info("No classifier-feature Frechet distance: the test images "
                 "have no labels.")
    return metrics
  classifier = feature_classifier.load_or_train(
      data.train_x, data.train_y, data.num_classes, classifier_dir,
      settings)
  metrics.update(sample_frechet(
      model_sampler(model, seed), classifier, data.train_x, test_images,
      test_labels, batch_size=batch_size, conditional=model.conditional))
  metrics["frechet_seconds"] = time.perf_counter() - began
  logging.info(
      "Classifier-feature Frechet distance of %d samples: %s (training vs "
      "test images: %s; classifier test accuracy %.3f) in %.1f s.",
      metrics["frechet_samples"], metrics["sample_frechet_distance"],
      metrics["frechet_reference"], metrics["feature_classifier_accuracy"],
      metrics["frechet_seconds"])
  return metrics


def classifier_dir_for(eval_config, model_dir):
  """`--feature_classifier_dir`, or `<model_dir>/feature_classifier`."""
  return (eval_config.feature_classifier_dir
          or os.path.join(model_dir, DEFAULT_DIR_NAME))


def evaluate_run(model_dir, num_samples=None, classifier_dir=None):
  """The figure for a finished run, from its config and latest checkpoint.

  Args:
    model_dir: the run's folder (holds `config.json` and checkpoints).
    num_samples: N; None takes the run's `--frechet_samples`.
    classifier_dir: None takes the run's `--feature_classifier_dir`
      (default `<model_dir>/feature_classifier`).

  Returns:
    dict of `METRIC_KEYS` (see `evaluate_model`).

  Raises:
    ExportError: the folder has no config or checkpoint.
    DataError: the run's data cannot be read.
  """
  # Imported here: evaluation does not otherwise reach into training.
  from tfvae.training import run_state  # pylint: disable=g-import-not-at-top

  model, config, _ = run_state.load_trained_model(model_dir)
  data = pipeline.prepare(sources.load_splits(config.data),
                          config.data.validation_fraction,
                          config.model.likelihood)
  test_x, test_y = data.test_x, data.test_y
  if config.eval.eval_max_examples:
    test_x = test_x[:config.eval.eval_max_examples]
    test_y = None if test_y is None else test_y[:len(test_x)]
  return evaluate_model(
      model, data, test_x, test_y,
      num_samples=(config.eval.frechet_samples if num_samples is None
                   else num_samples),
      classifier_dir=classifier_dir or classifier_dir_for(config.eval,
                                                          model_dir),
      seed=config.train.seed, batch_size=config.eval.eval_batch_size)
