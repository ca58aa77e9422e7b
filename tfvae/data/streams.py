"""Examples read from disk while training: image files and TFRecord shards.

Two kinds of split stand in for the in-memory arrays of `Splits`/`Data`
when a dataset is larger than memory. Both quack like the arrays where the
rest of tfvae looks at them (`len`, `shape`, `dtype`, `ndim`, indexing by an
array of positions or a leading slice), so holding out validation and test
examples works on them unchanged:

* `FileImages`: one image file per example (`image_folder` above
  `--max_in_memory_mb`). Files can be read in any order, so the training
  order is the same stateless permutation per epoch as for arrays, and the
  decoded pixels are those `tfvae.data.image_folder.read_image` gives: a
  streamed run equals the in-memory run of the same folder.
* `RecordSplit`: a split of TFRecord shards (`--dataset=tfrecord`), read
  sequentially. Its training order per epoch is a stateless function of
  (seed, epoch): the shards in a permuted order, interleaved record by
  record, then shuffled in windows of `--shuffle_buffer` records by a
  stateless permutation of each window. Resuming at step `s` rebuilds the
  epoch's order and skips the records of the steps already done (they are
  read but not decoded), so the stream continues exactly.

Which examples a split holds is a sorted selection of positions (a mask over
the manifest's record order, or a list of files), so selections compose.
"""

import numpy as np
import tensorflow as tf

from tfvae.data import image_folder
from tfvae.data import tfrecord

_SHARD_STREAM = 101
_WINDOW_STREAM = 103
# Shards read at once by the interleave.
_MAX_OPEN_SHARDS = 16


class FileImages:
  """Image files decoded on demand to `[S, S, 3]` uint8 (see module doc).

  Args:
    paths: the image files, one per example.
    size: side S the images are resized and cropped to.
  """

  ndim = 4
  dtype = np.dtype(np.uint8)

  def __init__(self, paths, size):
    self.paths = np.asarray(paths, dtype=object)
    self.size = int(size)

  def __len__(self):
    return len(self.paths)

  @property
  def shape(self):
    return (len(self.paths), self.size, self.size, 3)

  @property
  def size_bytes(self):
    """Bytes the decoded images would take in memory."""
    return len(self.paths) * self.size * self.size * 3

  def __getitem__(self, index):
    return FileImages(self.paths[index], self.size)

  def read(self, position):
    """Decodes the file at `position` (a scalar int64 tensor) in tf.data."""
    paths = tf.constant(self.paths.astype(str))
    size = self.size

    def read_numpy(path):
      return image_folder.read_image(path.decode(), size)

    image = tf.numpy_function(read_numpy, [tf.gather(paths, position)],
                              tf.uint8, stateful=False)
    image.set_shape((size, size, 3))
    return image

  def load(self):
    """All images as a `[N, S, S, 3]` uint8 array (for small selections)."""
    return image_folder.read_images(list(self.paths), self.size)


class RecordSplit:
  """The records of one manifest split, or a selection of them.

  Args:
    manifest: a `tfvae.data.tfrecord.Manifest`.
    split: the split's name in the manifest (`train`, `test`, ...).
    mask: `[count]` bool, which record positions belong to this selection;
      None for all.
  """

  def __init__(self, manifest, split, mask=None):
    self.manifest = manifest
    self.split = split
    self.shards = manifest.splits[split]
    self.num_records = sum(shard.count for shard in self.shards)
    self.mask = (np.ones(self.num_records, bool) if mask is None
                 else np.asarray(mask, bool))
    self.ndim = 1 + len(manifest.data_shape)
    self.dtype = np.dtype(manifest.dtype)

  def __len__(self):
    return int(self.mask.sum())

  @property
  def shape(self):
    return (len(self),) + tuple(manifest_shape(self.manifest))

  def positions(self):
    """`[len]` int64: the record positions of this selection, in order."""
    return np.flatnonzero(self.mask)

  def __getitem__(self, index):
    """A sub-selection by positions into this one (an array or a slice)."""
    chosen = self.positions()[index]
    mask = np.zeros(self.num_records, bool)
    mask[chosen] = True
    return RecordSplit(self.manifest, self.split, mask)

  def _shard_table(self):
    paths = tf.constant([shard.path for shard in self.shards])
    counts = np.array([shard.count for shard in self.shards], np.int64)
    offsets = tf.constant(np.concatenate([[0], np.cumsum(counts)[:-1]]),
                          tf.int64)
    return paths, offsets

  def records(self, shard_order=None):
    """`(position, serialized)` of the selected records.

    Args:
      shard_order: `[num_shards]` int tensor, the order to read shards in
        (interleaved record by record); None reads them one after another
        in manifest order.

    Returns:
      `tf.data.Dataset` of `(int64 position, tf.string record)`.
    """
    paths, offsets = self._shard_table()
    mask = tf.constant(self.mask)

    def read_shard(path, offset):
      return tf.data.TFRecordDataset(path).enumerate(start=offset)

    if shard_order is None:
      shards = tf.data.Dataset.from_tensor_slices((paths, offsets))
      records = shards.flat_map(read_shard)
    else:
      shards = tf.data.Dataset.from_tensor_slices(
          (tf.gather(paths, shard_order), tf.gather(offsets, shard_order)))
      records = shards.interleave(
          read_shard, cycle_length=min(len(self.shards), _MAX_OPEN_SHARDS),
          block_length=1, num_parallel_calls=tf.data.AUTOTUNE,
          deterministic=True)
    return records.filter(lambda position, _: tf.gather(mask, position))

  def epoch_records(self, seed, epoch, window):
    """One epoch's training order of serialized records (see module doc).

    Args:
      seed: run seed.
      epoch: int64 scalar tensor.
      window: records shuffled together (`--shuffle_buffer`).

    Returns:
      `tf.data.Dataset` of tf.string records.
    """
    seed = tf.cast(seed, tf.int64)
    num_shards = len(self.shards)
    order = tf.random.experimental.index_shuffle(
        tf.range(num_shards, dtype=tf.int64),
        seed=tf.stack([seed * 7919 + _SHARD_STREAM, epoch]),
        max_index=num_shards - 1)
    records = self.records(order).map(lambda _, record: record)

    def shuffle_window(index, batch):
      size = tf.shape(batch, out_type=tf.int64)[0]
      permutation = tf.random.experimental.index_shuffle(
          tf.range(size), seed=tf.stack([seed * 7919 + _WINDOW_STREAM,
                                         epoch * 2**32 + index]),
          max_index=size - 1)
      return tf.gather(batch, permutation)

    return (records.batch(window).enumerate().map(shuffle_window)
            .unbatch())

  def parse(self):
    """The manifest's record parser: record -> `{"image", "label"?}`."""
    return tfrecord.parse_fn(self.manifest)

  def load(self):
    """All selected examples as numpy `(x, y or None)` (small splits)."""
    parse = self.parse()
    xs, ys = [], []
    for batch in self.records().map(lambda _, record: parse(record)).batch(
        1024):
      xs.append(batch["image"].numpy())
      if "label" in batch:
        ys.append(batch["label"].numpy())
    x = np.concatenate(xs) if xs else np.zeros(self.shape, self.dtype)
    return x, (np.concatenate(ys) if ys else None)


def manifest_shape(manifest):
  return tuple(int(d) for d in manifest.data_shape)


def is_streamed(x):
  """Whether `x` is a streamed split rather than an in-memory array."""
  return isinstance(x, (FileImages, RecordSplit))
