"""tf.data pipelines: in-memory splits -> batches of float images in [0, 1].

The training stream is a pure function of the step: batch `s` holds the
examples at positions `[s * B, (s + 1) * B)` of epoch `s // steps_per_epoch`'s
permutation (a stateless `index_shuffle` seeded by the run seed and epoch) and
is binarized with a stateless draw seeded by the step. Resuming at step `s`
therefore continues the same data order with no batch repeated or skipped,
and runs with equal seeds see equal data whatever the distribution strategy.
"""

import dataclasses
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from tfvae.data import columns as columns_lib
from tfvae.errors import DataError

# The held-out validation split is the same for every run and seed.
_VALIDATION_SPLIT_SEED = 1234
_BINARIZE_STREAM = 7


@dataclasses.dataclass(frozen=True)
class Data:
  """The splits a run uses, as numpy arrays.

  Attributes:
    train_x: `[N, H, W, C]` uint8 (0..255) or float32 images, or `[N, D]`
      float32 vectors.
    train_y: `[N]` int32 labels or None.
    validation_x: `[V, H, W, C]`, held out of `train_x`.
    validation_y: `[V]` or None.
    test_x: `[M, H, W, C]`.
    test_y: `[M]` or None.
    num_classes: number of labels, or None.
    source: where the data was read from.
    columns: the `tfvae.data.columns.Column`s of vectors (None for images),
      described from the training split.
    class_names: the label of each class id, when the source had names.
  """
  train_x: np.ndarray
  train_y: Optional[np.ndarray]
  validation_x: np.ndarray
  validation_y: Optional[np.ndarray]
  test_x: np.ndarray
  test_y: Optional[np.ndarray]
  num_classes: Optional[int]
  source: str
  columns: Optional[Tuple[columns_lib.Column, ...]] = None
  class_names: Optional[Tuple[str, ...]] = None

  @property
  def data_shape(self) -> Tuple[int, ...]:
    """`(H, W, C)` of images or `(D,)` of vectors."""
    return tuple(int(d) for d in self.train_x.shape[1:])

  @property
  def is_vector(self) -> bool:
    return len(self.data_shape) == 1


def prepare(splits, validation_fraction, likelihood):
  """Holds out a validation split and checks the data fits the likelihood.

  Args:
    splits: a `tfvae.data.sources.Splits`.
    validation_fraction: share of the training split held out, in [0, 1).
    likelihood: `bernoulli` needs pixel values in [0, 1].

  Returns:
    A `Data`.

  Raises:
    DataError: data out of range for the likelihood, or too few examples.
  """
  if likelihood == "bernoulli":
    for name, x in (("training", splits.train_x), ("test", splits.test_x)):
      if x.dtype != np.uint8 and x.size and (x.min() < 0 or x.max() > 1):
        raise DataError(
            f"The {name} examples of {splits.source} range over "
            f"[{x.min():.3g}, {x.max():.3g}], but --likelihood=bernoulli "
            "needs values in [0, 1]; rescale the data or use "
            "--likelihood=gaussian.")
  num_train = len(splits.train_x)
  num_validation = int(round(validation_fraction * num_train))
  if validation_fraction > 0:
    num_validation = max(1, num_validation)
  if num_train - num_validation < 1:
    raise DataError(
        f"{splits.source} has {num_train} training examples, too few to "
        f"hold out --validation_fraction={validation_fraction}; add data or "
        "lower the fraction.")
  order = np.random.default_rng(_VALIDATION_SPLIT_SEED).permutation(num_train)
  held_out, kept = order[:num_validation], np.sort(order[num_validation:])
  labels = splits.train_y

  def take(indices):
    return None if labels is None else labels[indices]

  columns = None
  if splits.is_vector:
    columns = columns_lib.fit(splits.train_x[kept], splits.column_names,
                              splits.vocabularies)
    if likelihood == "tabular":
      where, lines = (splits.test_lines or
                      (f"The test split of {splits.source}", None))
      columns_lib.check_values(splits.test_x, columns, where, lines=lines)
  elif likelihood == "tabular":
    raise DataError(
        f"--likelihood=tabular models vectors [N, D], but {splits.source} "
        f"holds images {list(splits.train_x.shape[1:])}; use "
        "--likelihood=bernoulli or gaussian for images.")
  return Data(
      train_x=splits.train_x[kept], train_y=take(kept),
      validation_x=splits.train_x[held_out], validation_y=take(held_out),
      test_x=splits.test_x, test_y=splits.test_y,
      num_classes=splits.num_classes, source=splits.source, columns=columns,
      class_names=splits.class_names)


def to_unit_float(images):
  """uint8 pixel values -> float32 in [0, 1]; float images pass through."""
  if images.dtype == tf.uint8:
    return tf.cast(images, tf.float32) / 255.0
  return tf.cast(images, tf.float32)


def binarize(images, seed):
  """Draws binary pixels x ~ Bernoulli(images) with a stateless seed.

  Args:
    images: `[..., H, W, C]` float32 in [0, 1].
    seed: `[2]` integer stateless seed.

  Returns:
    float32 tensor of 0s and 1s, shaped like `images`.
  """
  noise = tf.random.stateless_uniform(tf.shape(images), seed=seed)
  return tf.cast(noise < images, tf.float32)


def steps_per_epoch(num_examples, batch_size):
  """Full batches per epoch (the remainder is dropped, different each epoch).

  Raises:
    DataError: when not even one batch fits.
  """
  if num_examples < batch_size:
    raise DataError(
        f"--batch_size={batch_size} is larger than the {num_examples} "
        "training examples; lower --batch_size.")
  return num_examples // batch_size


def train_dataset(images, labels, *, batch_size, seed, start_step,
                  total_steps, binarized):
  """The training stream from `start_step` up to `total_steps`.

  Args:
    images: `[N, H, W, C]` uint8 or float32 numpy array.
    labels: `[N]` int32 numpy array or None.
    batch_size: global batch size B.
    seed: run seed (data order and binarization).
    start_step: the first step to produce (resume point).
    total_steps: one past the last step to produce.
    binarized: binarize each batch freshly (dynamic binarization).

  Returns:
    `tf.data.Dataset` of dicts: `image` `[B, H, W, C]` float32 in [0, 1]
    and, with labels, `label` `[B]` int32.
  """
  num_examples = len(images)
  per_epoch = steps_per_epoch(num_examples, batch_size)
  images = tf.constant(images)
  labels = None if labels is None else tf.constant(labels, tf.int32)
  max_index = tf.constant(num_examples - 1, tf.int64)

  def batch_at(step):
    epoch = step // per_epoch
    positions = ((step % per_epoch) * batch_size
                 + tf.range(batch_size, dtype=tf.int64))
    indices = tf.random.experimental.index_shuffle(
        positions, seed=tf.stack([tf.cast(seed, tf.int64), epoch]),
        max_index=max_index)
    batch = {"image": to_unit_float(tf.gather(images, indices))}
    if binarized:
      batch["image"] = binarize(
          batch["image"], tf.stack([tf.cast(seed, tf.int64) * 7919
                                    + _BINARIZE_STREAM, step]))
    if labels is not None:
      batch["label"] = tf.gather(labels, indices)
    return batch

  dataset = tf.data.Dataset.range(start_step, total_steps)
  dataset = dataset.map(batch_at, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=True)
  return dataset.prefetch(tf.data.AUTOTUNE)


def eval_dataset(images, labels, *, batch_size, binarized, binarization_seed):
  """A finite evaluation stream, binarized once per example with a fixed seed.

  Example `i` is binarized with seed `(binarization_seed, i)`, so the binary
  test set is the same for every run, batch size and strategy.

  Args:
    images: `[N, H, W, C]` uint8 or float32 numpy array.
    labels: `[N]` int32 numpy array or None.
    batch_size: examples per batch (the last batch may be smaller).
    binarized: binarize the images.
    binarization_seed: the fixed seed of the binarization.

  Returns:
    `tf.data.Dataset` of dicts with `image` `[b, H, W, C]` and maybe `label`.
  """
  features = {"image": images}
  if labels is not None:
    features["label"] = labels.astype(np.int32)
  dataset = tf.data.Dataset.from_tensor_slices(features).enumerate()

  def convert(index, example):
    example = dict(example, image=to_unit_float(example["image"]))
    if binarized:
      example["image"] = binarize(
          example["image"], tf.stack([tf.constant(binarization_seed,
                                                  tf.int64), index]))
    return example

  dataset = dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=True)
  return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
