"""tf.data pipelines: splits -> batches of float images in [0, 1].

The training stream is a pure function of the step: batch `s` holds the
examples at positions `[s * B, (s + 1) * B)` of epoch `s // steps_per_epoch`'s
permutation (a stateless `index_shuffle` seeded by the run seed and epoch) and
is binarized with a stateless draw seeded by the step. Resuming at step `s`
therefore continues the same data order with no batch repeated or skipped,
and runs with equal seeds see equal data whatever the distribution strategy
and the number of workers: each worker's pipeline produces its rows of the
global batch. Streamed TFRecord splits keep the same contract with their own
per-epoch order (`tfvae.data.streams`).
"""

import dataclasses
import re
from typing import Any, Optional, Tuple

import numpy as np
import tensorflow as tf

from tfvae.data import columns as columns_lib
from tfvae.data import streams
from tfvae.data import tfrecord
from tfvae.errors import DataError

# The held-out validation split is the same for every run and seed.
_VALIDATION_SPLIT_SEED = 1234
_BINARIZE_STREAM = 7


@dataclasses.dataclass(frozen=True)
class Data:
  """The splits a run uses, as numpy arrays.

  Attributes:
    train_x: `[N, H, W, C]` uint8 (0..255) or float32 images, or `[N, D]`
      float32 vectors; or a streamed split (`tfvae.data.streams`) of
      images.
    train_y: `[N]` int32 labels or None (a `streams.RecordSplit` carries
      its labels in its records).
    validation_x: `[V, H, W, C]`, held out of `train_x`.
    validation_y: `[V]` or None.
    test_x: `[M, H, W, C]`.
    test_y: `[M]` or None.
    num_classes: number of labels, or None.
    source: where the data was read from.
    columns: the `tfvae.data.columns.Column`s of vectors (None for images),
      described from the training split.
    class_names: the label of each class id, when the source had names.
    ground_truth: the generative model of data with known factors (a
      `tfvae.data.shapes.Shapes`), or None.
    train_factors: `[N, F]` int64 factor indices aligned with `train_x`,
      when `ground_truth` is set; likewise `validation_factors` `[V, F]`
      and `test_factors` `[M, F]`.
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
  ground_truth: Optional[Any] = None
  train_factors: Optional[np.ndarray] = None
  validation_factors: Optional[np.ndarray] = None
  test_factors: Optional[np.ndarray] = None

  @property
  def data_shape(self) -> Tuple[int, ...]:
    """`(H, W, C)` of images or `(D,)` of vectors."""
    return tuple(int(d) for d in self.train_x.shape[1:])

  @property
  def is_vector(self) -> bool:
    return len(self.data_shape) == 1

  @property
  def is_streamed(self) -> bool:
    """Whether the examples are read from disk while training."""
    return streams.is_streamed(self.train_x)


def prepare(splits, validation_fraction, likelihood):
  """Holds out a validation split and checks the data fits the likelihood.

  Args:
    splits: a `tfvae.data.sources.Splits`.
    validation_fraction: share of the training split held out, in [0, 1).
    likelihood: `bernoulli` needs pixel values in [0, 1];
      `discretized_logistic` images of 8-bit values (uint8, or v / 255).

  Returns:
    A `Data`.

  Raises:
    DataError: data out of range for the likelihood, or too few examples.
  """
  if likelihood == "bernoulli":
    for name, x in (("training", splits.train_x), ("test", splits.test_x)):
      if streams.is_streamed(x):
        continue  # Checked as they are read.
      if x.dtype != np.uint8 and x.size and (x.min() < 0 or x.max() > 1):
        raise DataError(
            f"The {name} examples of {splits.source} range over "
            f"[{x.min():.3g}, {x.max():.3g}], but --likelihood=bernoulli "
            "needs values in [0, 1]; rescale the data or use "
            "--likelihood=gaussian.")
  if likelihood == "discretized_logistic":
    _check_eight_bit(splits)
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
  labels, factors = splits.train_y, splits.train_factors

  def take(indices, values=labels):
    return None if values is None else values[indices]

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
      class_names=splits.class_names, ground_truth=splits.ground_truth,
      train_factors=take(kept, factors),
      validation_factors=take(held_out, factors),
      test_factors=splits.test_factors)


# Largest distance (in 8-bit levels) of a float pixel from the grid v / 255.
_EIGHT_BIT_TOLERANCE = 1e-3
# Examples of a streamed float split checked for 8-bit values (its first).
_EIGHT_BIT_STREAM_CHECK = 256
_CHECK_CHUNK = 2**22


def _check_eight_bit(splits):
  """Rejects data that are not 8-bit images (uint8, or floats v / 255).

  Raises:
    DataError: vectors, or a float pixel out of [0, 1] or off the grid.
  """
  if splits.is_vector:
    raise DataError(
        f"--likelihood=discretized_logistic models 8-bit images [N, H, W, "
        f"C], but {splits.source} holds vectors "
        f"{list(splits.train_x.shape[1:])}; use --likelihood=gaussian or "
        "tabular for vectors.")
  for name, x in (("training", splits.train_x), ("test", splits.test_x)):
    if x.dtype == np.uint8 or not len(x):
      continue
    if streams.is_streamed(x):
      x = np.concatenate([batch["image"].numpy() for batch in (
          examples_dataset(x).take(_EIGHT_BIT_STREAM_CHECK).batch(64))])
    flat = np.asarray(x).reshape(-1)
    low, high, off, at = np.inf, -np.inf, 0.0, 0.0
    for start in range(0, flat.size, _CHECK_CHUNK):
      chunk = np.asarray(flat[start:start + _CHECK_CHUNK], np.float64)
      low, high = min(low, chunk.min()), max(high, chunk.max())
      levels = np.abs(chunk * 255.0 - np.round(chunk * 255.0))
      if levels.max() > off:
        off, at = float(levels.max()), float(chunk[np.argmax(levels)])
    if low < 0 or high > 1:
      raise DataError(
          f"The {name} examples of {splits.source} range over "
          f"[{low:.3g}, {high:.3g}], but --likelihood=discretized_logistic "
          "needs 8-bit values v / 255 in [0, 1]; store uint8 images or "
          "v / 255, or use --likelihood=gaussian.")
    if off > _EIGHT_BIT_TOLERANCE:
      raise DataError(
          f"The {name} examples of {splits.source} are not 8-bit values "
          f"v / 255 (e.g. {at:.6g} is {off:.3g} levels off the grid), but "
          "--likelihood=discretized_logistic models 8-bit pixels; store "
          "uint8 images or v / 255, or use --likelihood=gaussian.")


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
                  total_steps, binarized, shuffle_buffer=10_000,
                  input_context=None):
  """The training stream from `start_step` up to `total_steps`.

  Step `s`'s global batch is the same whatever the number of workers and
  replicas: with an `input_context` (`strategy.distribute_datasets_from_
  function`) each input pipeline produces its own rows of it, split into
  one batch per local replica, in replica order.

  Args:
    images: `[N, H, W, C]` uint8 or float32 numpy array, or a streamed split
      (`tfvae.data.streams.FileImages` or `RecordSplit`).
    labels: `[N]` int32 numpy array or None (a `RecordSplit` carries its
      own labels).
    batch_size: global batch size B.
    seed: run seed (data order and binarization).
    start_step: the first step to produce (resume point).
    total_steps: one past the last step to produce.
    binarized: binarize each batch freshly (dynamic binarization).
    shuffle_buffer: records shuffled together per window (`RecordSplit`).
    input_context: a `tf.distribute.InputContext`, or None for one pipeline
      feeding one replica.

  Returns:
    `tf.data.Dataset` of dicts: `image` `[b, H, W, C]` float32 in [0, 1]
    and, with labels, `label` `[b]` int32, where b is B divided by the
    number of replicas.
  """
  per_epoch = steps_per_epoch(len(images), batch_size)
  pipelines = input_context.num_input_pipelines if input_context else 1
  pipeline_id = input_context.input_pipeline_id if input_context else 0
  replicas = (input_context.num_replicas_in_sync // pipelines
              if input_context else 1)
  rows = batch_size // pipelines  # This pipeline's rows of a global batch.
  first_row = pipeline_id * rows
  steps = tf.data.Dataset.range(start_step, total_steps)
  if isinstance(images, streams.RecordSplit):
    batches = _record_batches(images, batch_size, seed, start_step,
                              total_steps, per_epoch, shuffle_buffer,
                              first_row, rows)
  else:
    batches = _indexed_batches(images, labels, batch_size, seed, steps,
                               per_epoch, first_row, rows)
  batches = tf.data.Dataset.zip(steps, batches)

  def finish(step, batch):
    batch = dict(batch, image=to_unit_float(batch["image"]))
    if binarized:
      global_shape = tf.concat([[batch_size], tf.shape(batch["image"])[1:]],
                               axis=0)
      noise = tf.random.stateless_uniform(
          global_shape, seed=tf.stack([tf.cast(seed, tf.int64) * 7919
                                       + _BINARIZE_STREAM, step]))
      batch["image"] = tf.cast(
          noise[first_row:first_row + rows] < batch["image"], tf.float32)
    if replicas > 1:
      batch = {name: tf.reshape(value, tf.concat(
          [[replicas, rows // replicas], tf.shape(value)[1:]], axis=0))
               for name, value in batch.items()}
    return batch

  dataset = batches.map(finish, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=True)
  if replicas > 1:
    dataset = dataset.unbatch()
  return dataset.prefetch(tf.data.AUTOTUNE)


def _epoch_indices(step, num_examples, batch_size, seed, per_epoch):
  """`[B]` int64: the example indices of global batch `step`."""
  epoch = step // per_epoch
  positions = ((step % per_epoch) * batch_size
               + tf.range(batch_size, dtype=tf.int64))
  return tf.random.experimental.index_shuffle(
      positions, seed=tf.stack([tf.cast(seed, tf.int64), epoch]),
      max_index=num_examples - 1)


def _indexed_batches(images, labels, batch_size, seed, steps, per_epoch,
                     first_row, rows):
  """Batches of examples that can be read by index: arrays and files."""
  num_examples = len(images)
  labels = None if labels is None else tf.constant(labels, tf.int32)

  def indices_at(step):
    return _epoch_indices(step, num_examples, batch_size, seed,
                          per_epoch)[first_row:first_row + rows]

  if isinstance(images, streams.FileImages):
    def read(index):
      example = {"image": images.read(index)}
      if labels is not None:
        example["label"] = tf.gather(labels, index)
      return example

    return (steps.map(indices_at).unbatch()
            .map(read, num_parallel_calls=tf.data.AUTOTUNE,
                 deterministic=True).batch(rows))
  images = tf.constant(images)

  def gather(step):
    indices = indices_at(step)
    batch = {"image": tf.gather(images, indices)}
    if labels is not None:
      batch["label"] = tf.gather(labels, indices)
    return batch

  return steps.map(gather, num_parallel_calls=tf.data.AUTOTUNE,
                   deterministic=True)


def _record_batches(split, batch_size, seed, start_step, total_steps,
                    per_epoch, shuffle_buffer, first_row, rows):
  """Batches of a `RecordSplit`: epochs of windowed-shuffled records."""
  per_epoch_records = per_epoch * batch_size
  epochs = tf.data.Dataset.range(start_step // per_epoch,
                                 -(-total_steps // per_epoch))
  records = epochs.flat_map(lambda epoch: split.epoch_records(
      seed, epoch, shuffle_buffer).take(per_epoch_records))
  records = records.skip((start_step % per_epoch) * batch_size)
  parse = split.parse()
  return (records.batch(batch_size, drop_remainder=True)
          .map(lambda batch: batch[first_row:first_row + rows]).unbatch()
          .map(parse, num_parallel_calls=tf.data.AUTOTUNE,
               deterministic=True)
          .batch(rows, drop_remainder=True))


def eval_dataset(images, labels, *, batch_size, binarized, binarization_seed):
  """A finite evaluation stream, binarized once per example with a fixed seed.

  Example `i` is binarized with seed `(binarization_seed, i)`, so the binary
  test set is the same for every run, batch size and strategy.

  Args:
    images: `[N, H, W, C]` uint8 or float32 numpy array, or a streamed
      split.
    labels: `[N]` int32 numpy array or None.
    batch_size: examples per batch (the last batch may be smaller).
    binarized: binarize the images.
    binarization_seed: the fixed seed of the binarization.

  Returns:
    `tf.data.Dataset` of dicts with `image` `[b, H, W, C]` and maybe `label`.
  """
  dataset = examples_dataset(images, labels).enumerate()

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


def examples_dataset(images, labels=None):
  """The examples of a split in their order, undecoded values as stored.

  Args:
    images: a numpy array or a streamed split (`tfvae.data.streams`).
    labels: `[N]` int32 numpy array or None.

  Returns:
    `tf.data.Dataset` of dicts `image` (uint8 or float32) and maybe `label`.
  """
  if isinstance(images, streams.RecordSplit):
    parse = images.parse()
    return images.records().map(
        lambda _, record: parse(record),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  if isinstance(images, streams.FileImages):
    label_values = None if labels is None else tf.constant(labels, tf.int32)

    def read(index):
      example = {"image": images.read(index)}
      if label_values is not None:
        example["label"] = tf.gather(label_values, index)
      return example

    return tf.data.Dataset.range(len(images)).map(
        read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  features = {"image": images}
  if labels is not None:
    features["label"] = labels.astype(np.int32)
  return tf.data.Dataset.from_tensor_slices(features)


def describe_read_error(images, error):
  """The `DataError` for a streamed split that failed to read, or None.

  Args:
    images: the split being read (arrays give None: their errors are not
      about reading).
    error: the `tf.errors.OpError` the pipeline raised.

  Returns:
    A one-line `DataError` naming the file (and record), or None.
  """
  if not streams.is_streamed(images):
    return None
  first_line = (error.message or str(error)).strip().splitlines()[0]
  if isinstance(images, streams.RecordSplit):
    problem = tfrecord.diagnose(images.manifest, images.split)
    return DataError(problem or (
        f"Reading the {images.split} records of {images.manifest.path} "
        f"failed ({first_line}); check the shards, or rewrite them with "
        "python -m tfvae.data.to_tfrecord."))
  # numpy_function passes on `read_image`'s DataError text.
  found = re.search(r"DataError: (.*)", error.message or "")
  return DataError(found.group(1) if found else
                   f"Reading the training images failed ({first_line}).")
