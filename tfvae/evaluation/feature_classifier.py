"""A small image classifier whose penultimate layer is a feature space.

The classifier-feature Frechet distance (`tfvae.evaluation.sample_quality`)
compares real and generated images in the feature space of a classifier
trained on the run's own training split. Inception features (FID) are not
available offline and mean little on 28x28 grey images, so tfvae trains its
own: a compact conv net on the `[0, 1]` images as the input pipeline scales
them (grey or RGB, never binarized), labelled by the split's class ids:

  image `[H, W, C]` -> conv 3x3 stride 2 (16, 32, 64, ... channels; as many
  as halve the larger side to 8 or below, at least one) -> flatten ->
  dense 128 + ReLU (the features) -> dense `num_classes` (logits)

trained with Adam for `ClassifierSettings.epochs` epochs (and at least
`min_steps` steps) on at most `max_train_examples` training examples, with
fixed initializer seeds and a fixed example order (independent of the run's
seed, so equal data give equal classifiers). On Fashion-MNIST (55,000
training images) it trains in about 10 s on 2 CPU cores (11.5 CPU-seconds)
and reaches 87.2% test accuracy.

The trained classifier is saved as a Keras `.keras` file named by a
fingerprint of the training data (shape, dtype, count, a hash of a sample of
the images and of the labels) and of the classifier settings, so later runs
on the same data, such as the zoo's rows given one
`--feature_classifier_dir`, reuse the same classifier and their distances
are comparable. Files are written atomically (temp file + rename); a file
that does not load or does not fit the data is trained again.

#### References
Heusel, Ramsauer, Unterthiner, Nessler & Hochreiter (2017). GANs Trained by
a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium. NeurIPS.
"""

import dataclasses
import hashlib
import json
import math
import os
import time

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from tfvae.data import pipeline
from tfvae.data import streams

# Bumped when the architecture or training changes, so old files are not
# taken for new ones.
FORMAT_VERSION = 1
FILE_PREFIX = "classifier-"
FILE_SUFFIX = ".keras"
FEATURES_LAYER = "features"
# Images hashed into the fingerprint (evenly spaced; the first ones of a
# streamed split).
_HASHED_IMAGES = 256
# Convolutions stop once the larger side is at most this.
_MAX_FINAL_SIDE = 8
_READ_BATCH = 1000


@dataclasses.dataclass(frozen=True)
class ClassifierSettings:
  """How the feature classifier is built and trained (part of its key).

  Attributes:
    epochs: passes over the training examples (more when a small split
      needs them to reach `min_steps`).
    min_steps: Adam steps at least, so small splits are learnt too.
    batch_size: examples per Adam step.
    learning_rate: Adam's learning rate.
    feature_dim: width of the penultimate (feature) layer.
    base_channels: channels of the first convolution (doubled per layer).
    max_train_examples: train on at most this many (the first) training
      examples.
    seed: seed of the initializers and of the example order.
  """
  epochs: int = 2
  min_steps: int = 300
  batch_size: int = 128
  learning_rate: float = 1e-3
  feature_dim: int = 128
  base_channels: int = 16
  max_train_examples: int = 60_000
  seed: int = 0


def is_labelled_images(images, labels, num_classes):
  """Whether a split can train the classifier, and if not why.

  Args:
    images: a training split (`tfvae.data.pipeline.Data.train_x`).
    labels: its `[N]` labels, or None (a `RecordSplit` carries its own).
    num_classes: the data's number of classes, or None.

  Returns:
    `(True, None)` or `(False, reason)` with a short reason.
  """
  if len(images.shape) != 4:
    return False, "the data are vectors, not images"
  if not num_classes:
    return False, "the images have no labels to train a feature classifier on"
  if labels is None and not isinstance(images, streams.RecordSplit):
    return False, "the images have no labels to train a feature classifier on"
  return True, None


def to_unit(batch):
  """`[n, H, W, C]` stored values -> float32 in [0, 1] as the pipeline does."""
  if batch.dtype == np.uint8:
    return batch.astype(np.float32) / 255.0
  return np.asarray(batch, np.float32)


def read_examples(images, labels=None, count=None):
  """The first `count` examples of a split as stored, and their labels.

  Args:
    images: a numpy array or a streamed split.
    labels: `[N]` int labels or None (a `RecordSplit` carries its own).
    count: how many; None for all.

  Returns:
    `(x, y)`: `[n, H, W, C]` in the stored dtype (uint8 or float32) and
    `[n]` int32 labels or None.
  """
  count = len(images) if count is None else min(count, len(images))
  if not streams.is_streamed(images):
    return (images[:count],
            None if labels is None else np.asarray(labels[:count], np.int32))
  xs, ys = [], []
  dataset = pipeline.examples_dataset(images, labels).take(count)
  for batch in dataset.batch(_READ_BATCH):
    xs.append(batch["image"].numpy())
    if "label" in batch:
      ys.append(batch["label"].numpy().astype(np.int32))
  x = (np.concatenate(xs) if xs
       else np.zeros((0,) + tuple(images.shape[1:]), images.dtype))
  return x, (np.concatenate(ys) if ys else None)


def fingerprint(images, labels, num_classes, settings=ClassifierSettings()):
  """A hex key of the training data and the classifier settings.

  Args:
    images: the training split (array or streamed).
    labels: its `[N]` labels, or None (a `RecordSplit` carries its own).
    num_classes: number of classes.
    settings: a `ClassifierSettings`.

  Returns:
    A 16-character hex string.
  """
  digest = hashlib.sha256()
  header = {"version": FORMAT_VERSION, "shape": list(images.shape),
            "dtype": str(np.dtype(images.dtype)),
            "num_classes": int(num_classes),
            "settings": dataclasses.asdict(settings)}
  digest.update(json.dumps(header, sort_keys=True).encode())
  if streams.is_streamed(images):
    sample, sample_labels = read_examples(images, labels, _HASHED_IMAGES)
  else:
    positions = np.unique(np.linspace(0, len(images) - 1, _HASHED_IMAGES)
                          .astype(np.int64))
    sample = images[positions]
    sample_labels = None if labels is None else np.asarray(labels)
  digest.update(np.ascontiguousarray(sample).tobytes())
  if sample_labels is not None:
    digest.update(np.ascontiguousarray(sample_labels, np.int64).tobytes())
  return digest.hexdigest()[:16]


def build_classifier(data_shape, num_classes, settings=ClassifierSettings()):
  """The (untrained) classifier; see the module docstring.

  Args:
    data_shape: `(H, W, C)`.
    num_classes: number of classes.
    settings: a `ClassifierSettings`.

  Returns:
    A functional `keras.Model` mapping `[batch, H, W, C]` float32 images in
    [0, 1] to `[batch, num_classes]` logits; its layer `features` is the
    `[batch, feature_dim]` feature map.
  """
  seeds = iter(range(settings.seed * 1000, settings.seed * 1000 + 100))

  def init():
    return keras.initializers.GlorotUniform(seed=next(seeds))

  inputs = keras.Input(tuple(data_shape), dtype="float32")
  hidden, side, channels = inputs, max(data_shape[:2]), settings.base_channels
  while True:
    hidden = keras.layers.Conv2D(
        channels, 3, strides=2, padding="same", activation="relu",
        kernel_initializer=init(), dtype="float32")(hidden)
    side, channels = math.ceil(side / 2), channels * 2
    if side <= _MAX_FINAL_SIDE:
      break
  hidden = keras.layers.Flatten(dtype="float32")(hidden)
  features = keras.layers.Dense(
      settings.feature_dim, activation="relu", kernel_initializer=init(),
      name=FEATURES_LAYER, dtype="float32")(hidden)
  logits = keras.layers.Dense(num_classes, kernel_initializer=init(),
                              name="logits", dtype="float32")(features)
  return keras.Model(inputs, logits, name="feature_classifier")


class FeatureClassifier:
  """A trained classifier and its penultimate-layer features.

  Args:
    model: the Keras classifier (`build_classifier`).
    path: the `.keras` file it was saved to or loaded from.
    trained: whether this process trained it (False: loaded).
    train_seconds: seconds its training took here (None when loaded).
  """

  def __init__(self, model, path, trained, train_seconds=None):
    self.model = model
    self.path = path
    self.trained = trained
    self.train_seconds = train_seconds
    both = keras.Model(model.inputs, [
        model.get_layer(FEATURES_LAYER).output, model.outputs[0]])
    self._forward = tf.function(
        lambda images: both(images, training=False),
        input_signature=[tf.TensorSpec((None,) + tuple(model.input_shape[1:]),
                                       tf.float32)])

  @property
  def feature_dim(self):
    return int(self.model.get_layer(FEATURES_LAYER).output.shape[-1])

  def features_and_logits(self, images):
    """Features and logits of one batch.

    Args:
      images: `[n, H, W, C]` uint8 or float images (scaled as the pipeline
        does: uint8 / 255, floats as they are).

    Returns:
      `(features, logits)`: `[n, feature_dim]` float64 and
      `[n, num_classes]` float32 numpy arrays.
    """
    features, logits = self._forward(tf.constant(to_unit(images)))
    return features.numpy().astype(np.float64), logits.numpy()

  def features(self, images, batch_size=500):
    """`[n, feature_dim]` float64 features of `[n, H, W, C]` images, in
    batches of `batch_size`."""
    parts = [self.features_and_logits(images[i:i + batch_size])[0]
             for i in range(0, len(images), batch_size)]
    return (np.concatenate(parts) if parts
            else np.zeros((0, self.feature_dim)))


def classifier_path(directory, key):
  """Where the classifier of fingerprint `key` lives in `directory`."""
  return os.path.join(directory, f"{FILE_PREFIX}{key}{FILE_SUFFIX}")


def load_or_train(images, labels, num_classes, directory,
                  settings=ClassifierSettings()):
  """The classifier for a training split: loaded if saved, else trained.

  Args:
    images: the training split `[N, H, W, C]` (array or streamed).
    labels: its `[N]` int labels, or None for a `RecordSplit` (which
      carries them).
    num_classes: number of classes.
    directory: the folder of saved classifiers (created if missing).
    settings: a `ClassifierSettings`.

  Returns:
    A `FeatureClassifier`.
  """
  path = classifier_path(directory,
                         fingerprint(images, labels, num_classes, settings))
  data_shape = tuple(int(d) for d in images.shape[1:])
  if os.path.exists(path):
    model = _load(path, data_shape, num_classes)
    if model is not None:
      logging.info("Feature classifier: reusing %s.", path)
      return FeatureClassifier(model, path, trained=False)
  began = time.perf_counter()
  model = train(images, labels, num_classes, settings)
  seconds = time.perf_counter() - began
  os.makedirs(directory, exist_ok=True)
  # Keras names the format by the suffix, so the temp file keeps it.
  tmp = os.path.join(
      directory, f".{os.path.basename(path)}.{os.getpid()}.tmp{FILE_SUFFIX}")
  try:
    model.save(tmp)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  logging.info("Feature classifier: trained in %.1f s, saved %s.", seconds,
               path)
  return FeatureClassifier(model, path, trained=True, train_seconds=seconds)


def _load(path, data_shape, num_classes):
  """The classifier saved at `path`, or None if it is unreadable or does not
  fit the data (then it is trained again)."""
  try:
    model = keras.models.load_model(path, compile=False)
    fits = (tuple(model.input_shape[1:]) == tuple(data_shape)
            and model.output_shape[-1] == num_classes)
    model.get_layer(FEATURES_LAYER)
  except Exception as error:  # pylint: disable=broad-except
    # A partial or corrupt zip raises any of several types (BadZipFile,
    # OSError, ValueError, KeyError ...); all mean "train it again".
    logging.warning("Feature classifier %s does not load (%s: %s); training "
                    "it again.", path, type(error).__name__, error)
    return None
  if not fits:
    logging.warning("Feature classifier %s does not fit data %s with %d "
                    "classes; training it again.", path, data_shape,
                    num_classes)
    return None
  return model


def train(images, labels, num_classes, settings=ClassifierSettings()):
  """Trains a fresh classifier on the first `max_train_examples` examples.

  The example order is a fixed permutation per epoch (numpy, seeded by
  `settings.seed`), so neither the run's global seed nor tf.data's shuffle
  state changes the result.

  Args:
    images: the training split `[N, H, W, C]` (array or streamed).
    labels: `[N]` int labels, or None for a `RecordSplit`.
    num_classes: number of classes.
    settings: a `ClassifierSettings`.

  Returns:
    The trained `keras.Model` (logits).
  """
  x, y = read_examples(images, labels, settings.max_train_examples)
  if y is None:
    raise ValueError("The training split has no labels.")
  model = build_classifier(x.shape[1:], num_classes, settings)
  model.compile(
      optimizer=keras.optimizers.Adam(settings.learning_rate),
      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
      jit_compile=False)  # XLA on CPU was slower here.
  rng = np.random.default_rng(settings.seed)
  epochs = max(settings.epochs, math.ceil(
      settings.min_steps * settings.batch_size / len(x)))
  order = np.concatenate([rng.permutation(len(x)) for _ in range(epochs)])
  stored = tf.constant(x)
  label_values = tf.constant(y, tf.int32)

  def gather(indices):
    return (pipeline.to_unit_float(tf.gather(stored, indices)),
            tf.gather(label_values, indices))

  dataset = (tf.data.Dataset.from_tensor_slices(order)
             .batch(settings.batch_size)
             .map(gather, num_parallel_calls=tf.data.AUTOTUNE,
                  deterministic=True)
             .prefetch(tf.data.AUTOTUNE))
  model.fit(dataset, epochs=1, verbose=0, shuffle=False)
  return model
