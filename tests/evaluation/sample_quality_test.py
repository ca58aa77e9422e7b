"""Tests of the classifier-feature Frechet distance and its classifier."""

import os

import numpy as np
import pytest

from tests.models import tiny
from tfvae.data import pipeline
from tfvae.evaluation import feature_classifier
from tfvae.evaluation import sample_quality

# Enough Adam steps for the toy set below in about a second.
FAST = feature_classifier.ClassifierSettings(epochs=3, batch_size=32)
NUM_CLASSES = 3


def _random_rotation(dim, rng):
  q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
  return q * np.sign(np.diag(r))


# ---- The distance ------------------------------------------------------------


def test_diagonal_gaussians_closed_form():
  mean_a, mean_b = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 1.0])
  var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
  expected = (np.sum((mean_a - mean_b)**2)
              + np.sum((np.sqrt(var_a) - np.sqrt(var_b))**2))
  assert sample_quality.frechet_distance_from_moments(
      mean_a, np.diag(var_a), mean_b, np.diag(var_b)) == pytest.approx(
          expected, rel=1e-12)


def test_non_commuting_2x2_closed_form():
  # Tr (A^1/2 B A^1/2)^1/2 = sqrt(tr(AB) + 2 sqrt(det A det B)) for 2x2.
  cov_a = np.array([[2.0, 0.8], [0.8, 1.0]])
  cov_b = np.array([[0.5, -0.3], [-0.3, 3.0]])
  cross = np.sqrt(np.trace(cov_a @ cov_b)
                  + 2 * np.sqrt(np.linalg.det(cov_a) * np.linalg.det(cov_b)))
  expected = 1.0 + np.trace(cov_a) + np.trace(cov_b) - 2 * cross
  assert sample_quality.frechet_distance_from_moments(
      [1.0, 0.0], cov_a, [0.0, 0.0], cov_b) == pytest.approx(expected,
                                                             rel=1e-12)


def test_large_samples_match_the_exact_moments():
  rng = np.random.default_rng(0)
  rotation = _random_rotation(3, rng)
  var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 0.5])
  mean_b = np.array([1.0, 0.0, -1.0])
  a = rng.normal(size=(200_000, 3)) * np.sqrt(var_a) @ rotation.T
  b = (rng.normal(size=(200_000, 3)) * np.sqrt(var_b) @ rotation.T
       + mean_b)
  expected = (mean_b @ mean_b
              + np.sum((np.sqrt(var_a) - np.sqrt(var_b))**2))
  assert sample_quality.frechet_distance(a, b) == pytest.approx(expected,
                                                                abs=0.03)


def test_identical_symmetric_and_invariant():
  rng = np.random.default_rng(1)
  a = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6))
  b = rng.gamma(2.0, size=(400, 6))
  assert sample_quality.frechet_distance(a, a) == pytest.approx(0, abs=1e-8)
  forward = sample_quality.frechet_distance(a, b)
  assert forward > 1
  assert sample_quality.frechet_distance(b, a) == pytest.approx(forward,
                                                                rel=1e-9)
  rotation, shift = _random_rotation(6, rng), rng.normal(size=6) * 10
  assert sample_quality.frechet_distance(
      a @ rotation + shift, b @ rotation + shift) == pytest.approx(
          forward, rel=1e-9)


def test_rank_deficient_inputs_are_finite_and_non_negative():
  rng = np.random.default_rng(2)
  # Fewer examples than dimensions, dead (constant) units, equal sets.
  few = rng.normal(size=(5, 20))
  dead = np.concatenate([rng.normal(size=(50, 3)), np.zeros((50, 7))], 1)
  for a, b in ((few, rng.normal(size=(8, 20))), (dead, dead[::-1]),
               (few, few), (dead, np.zeros((50, 10)))):
    value = sample_quality.frechet_distance(a, b)
    assert np.isfinite(value) and value >= 0
  assert sample_quality.frechet_distance(few, few) == pytest.approx(0,
                                                                    abs=1e-8)
  # Everything lies in a 3-d subspace: the distance is that subspace's.
  assert sample_quality.frechet_distance(dead, dead + 1) == pytest.approx(
      10.0, rel=1e-9)


def test_needs_two_examples():
  with pytest.raises(ValueError):
    sample_quality.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))


# ---- The classifier ----------------------------------------------------------


def _toy(count, seed):
  """`[count, 8, 8, 1]` uint8: class c lights rows 3c..3c+1; plus noise."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, NUM_CLASSES, count).astype(np.int32)
  images = rng.uniform(0, 0.3, (count, 8, 8, 1))
  for c in range(NUM_CLASSES):
    images[labels == c, 3 * c:3 * c + 2] += 0.7
  return np.round(images * 255).astype(np.uint8), labels


@pytest.fixture(scope="module")
def toy():
  train_x, train_y = _toy(600, seed=0)
  test_x, test_y = _toy(300, seed=1)
  return train_x, train_y, test_x, test_y


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory, toy):
  """A folder that holds the toy set's classifier (trained once)."""
  folder = str(tmp_path_factory.mktemp("classifiers"))
  train_x, train_y, _, _ = toy
  trained = feature_classifier.load_or_train(train_x, train_y, NUM_CLASSES,
                                             folder, FAST)
  assert trained.trained and trained.train_seconds > 0
  return folder


def test_learns_a_separable_set(toy, classifier_dir):
  train_x, train_y, test_x, test_y = toy
  classifier = feature_classifier.load_or_train(
      train_x, train_y, NUM_CLASSES, classifier_dir, FAST)
  features, logits = classifier.features_and_logits(test_x)
  assert features.shape == (300, FAST.feature_dim)
  assert features.dtype == np.float64
  assert (logits.argmax(-1) == test_y).mean() > 0.95
  assert classifier.features(test_x, batch_size=7) == pytest.approx(features,
                                                                    abs=1e-5)


def test_is_cached_and_reused(toy, classifier_dir, monkeypatch):
  train_x, train_y, test_x, _ = toy

  def no_training(*args, **kwargs):
    raise AssertionError("trained again")

  first = feature_classifier.load_or_train(train_x, train_y, NUM_CLASSES,
                                           classifier_dir, FAST)
  monkeypatch.setattr(feature_classifier, "train", no_training)
  again = feature_classifier.load_or_train(train_x, train_y, NUM_CLASSES,
                                           classifier_dir, FAST)
  assert not again.trained and again.path == first.path
  np.testing.assert_allclose(again.features(test_x), first.features(test_x))
  assert [n for n in os.listdir(classifier_dir) if "tmp" in n] == []


def test_a_corrupt_file_is_trained_again(toy, tmp_path):
  train_x, train_y, test_x, _ = toy
  folder = str(tmp_path)
  key = feature_classifier.fingerprint(train_x, train_y, NUM_CLASSES, FAST)
  path = feature_classifier.classifier_path(folder, key)
  with open(path, "wb") as f:
    f.write(b"PK\x03\x04 half a zip file")
  classifier = feature_classifier.load_or_train(train_x, train_y,
                                                NUM_CLASSES, folder, FAST)
  assert classifier.trained
  reloaded = feature_classifier.load_or_train(train_x, train_y, NUM_CLASSES,
                                              folder, FAST)
  assert not reloaded.trained
  np.testing.assert_allclose(reloaded.features(test_x[:10]),
                             classifier.features(test_x[:10]))


def test_fingerprint_follows_data_and_settings(toy):
  train_x, train_y, _, _ = toy
  key = feature_classifier.fingerprint(train_x, train_y, NUM_CLASSES, FAST)
  assert key == feature_classifier.fingerprint(train_x.copy(),
                                               train_y.copy(), NUM_CLASSES,
                                               FAST)
  changed_image = train_x.copy()
  changed_image[0, 0, 0, 0] ^= 1  # Image 0 is always in the hashed sample.
  changed_labels = train_y.copy()
  changed_labels[5] = (changed_labels[5] + 1) % NUM_CLASSES
  others = [
      feature_classifier.fingerprint(changed_image, train_y, NUM_CLASSES,
                                     FAST),
      feature_classifier.fingerprint(train_x, changed_labels, NUM_CLASSES,
                                     FAST),
      feature_classifier.fingerprint(train_x[:-1], train_y[:-1], NUM_CLASSES,
                                     FAST),
      feature_classifier.fingerprint(train_x.astype(np.float32) / 255,
                                     train_y, NUM_CLASSES, FAST),
      feature_classifier.fingerprint(train_x, train_y, NUM_CLASSES,
                                     feature_classifier.ClassifierSettings()),
  ]
  assert len(set(others + [key])) == len(others) + 1


def test_grows_convolutions_with_the_image_size():
  for shape, convolutions in (((4, 4, 1), 1), ((28, 28, 1), 2),
                              ((32, 32, 3), 2), ((64, 48, 3), 3)):
    model = feature_classifier.build_classifier(shape, 10)
    assert sum("conv" in layer.name for layer in model.layers) == (
        convolutions), shape
    assert model.get_layer("features").output.shape[-1] == 128


# ---- The figure of a model ---------------------------------------------------


def _data(train_x, train_y, test_x, test_y, num_classes=NUM_CLASSES):
  return pipeline.Data(train_x=train_x, train_y=train_y,
                       validation_x=train_x[:0], validation_y=None,
                       test_x=test_x, test_y=test_y, num_classes=num_classes,
                       source="toy")


class RealImages:
  """A fake conditional model whose samples are fresh real images.

  Sample i of a call is an unused image of class `labels[i]` from a pool
  drawn like (but apart from) the training and test images.
  """

  conditional = True

  def __init__(self):
    images, labels = _toy(3000, seed=100)
    self.pools = {c: list(images[labels == c]) for c in range(NUM_CLASSES)}
    self.seen_labels = []

  def sample(self, num_samples, seed, labels=None):
    del seed
    labels = np.asarray(labels)
    assert len(labels) == num_samples
    self.seen_labels.append(labels)
    return np.stack([self.pools[c].pop() for c in labels]).astype(
        np.float32) / 255


def _evaluate(model, toy, classifier_dir, **kwargs):
  train_x, train_y, test_x, test_y = toy
  return sample_quality.evaluate_model(
      model, _data(train_x, train_y, test_x, test_y),
      num_samples=kwargs.pop("num_samples", 10_000),
      classifier_dir=classifier_dir, batch_size=128, settings=FAST,
      **kwargs)


def test_real_images_score_about_the_reference(toy, classifier_dir):
  fake = RealImages()
  metrics = _evaluate(fake, toy, classifier_dir)
  assert set(metrics) == set(sample_quality.METRIC_KEYS)
  assert metrics["frechet_samples"] == 300  # Capped by the test examples.
  assert metrics["feature_classifier_accuracy"] > 0.95
  assert metrics["frechet_seconds"] > 0
  reference = metrics["frechet_reference"]
  assert 0 < reference
  assert metrics["sample_frechet_distance"] < 2 * reference, metrics
  # Conditional models draw the test images' labels, in batches.
  np.testing.assert_array_equal(np.concatenate(fake.seen_labels), toy[3])
  assert [len(labels) for labels in fake.seen_labels] == [128, 128, 44]
  # Noise is far from real images.
  noise = _evaluate(NoiseModel(), toy, classifier_dir)
  assert noise["sample_frechet_distance"] > 10 * reference, noise
  assert noise["frechet_reference"] == pytest.approx(reference)


class NoiseModel:
  conditional = False

  def sample(self, num_samples, seed, labels=None):
    assert labels is None
    rng = np.random.default_rng(int(np.asarray(seed)[1]))
    return rng.uniform(-1, 2, (num_samples, 8, 8, 1)).astype(np.float32)


def test_a_tiny_model_gives_finite_repeatable_numbers(tmp_path):
  # tests/models/tiny.py's VAE on 4x4 images, untrained.
  rng = np.random.default_rng(3)
  images = (rng.random((200,) + tiny.IMAGE_SHAPE) > 0.5).astype(np.float32)
  labels = (images[:, 0, 0, 0] > 0).astype(np.int32)
  data = _data(images[:150], labels[:150], images[150:], labels[150:],
               num_classes=2)
  model = tiny.build("vae", latent_dim=2)
  results = [sample_quality.evaluate_model(
      model, data, num_samples=40, classifier_dir=str(tmp_path), seed=5,
      batch_size=16, settings=FAST) for _ in range(2)]
  for key in ("sample_frechet_distance", "frechet_reference",
              "feature_classifier_accuracy"):
    assert np.isfinite(results[0][key]), results[0]
    assert results[0][key] == pytest.approx(results[1][key], rel=1e-6)
  assert results[0]["frechet_samples"] == 40
  assert len(os.listdir(tmp_path)) == 1  # One classifier, reused.


def test_not_computed_for_vectors_unlabelled_images_or_zero_samples(toy,
                                                                   tmp_path):
  train_x, train_y, test_x, test_y = toy
  cases = [
      (_data(train_x, None, test_x, None, num_classes=None), 100),
      (_data(np.zeros((50, 4), np.float32), train_y[:50],
             np.zeros((20, 4), np.float32), test_y[:20]), 100),
      (_data(train_x, train_y, test_x, test_y), 0),
  ]
  for data, num_samples in cases:
    metrics = sample_quality.evaluate_model(
        NoiseModel(), data, num_samples=num_samples,
        classifier_dir=str(tmp_path))
    assert metrics == dict.fromkeys(sample_quality.METRIC_KEYS)
  assert not os.listdir(tmp_path)
