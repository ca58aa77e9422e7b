"""Writes a dataset as sharded TFRecords: `python -m tfvae.data.to_tfrecord`.

  python -m tfvae.data.to_tfrecord --dataset=NAME [--data_dir=D]
      [--image_size=S] [--test_fraction=F] [--categorical_columns=a,b]
      [--label_column=L] --output_dir=OUT [--encoding=png|jpeg|raw]
      [--jpeg_quality=95] [--shard_size_mb=100 | --num_shards=N]
      [--workers=K] [--overwrite]

The data flags mean what they mean to `train.py`; train on the result with
`--dataset=tfrecord --data_dir=OUT`. The format is described in
`tfvae.data.tfrecord`.

`image_folder` trees are never decoded into memory as a whole: the files are
listed (and a test split held out exactly as `--dataset=image_folder` does),
then worker processes read, resize and encode them a chunk at a time, so
trees larger than memory convert. The other sources are loaded into memory
(they fit by construction) and encoded by worker threads. The workers return
serialized records (they never import TensorFlow); this process frames them
into the shards, in order.

The train split is written in a fixed shuffled order (`write_order`) and in
at least `MIN_SHARDS` shards when it has 16,000 examples or more, so the
streamed training order mixes classes even when the source lists them one
after another.

Images are stored as PNG when uint8 (lossless), raw when float32; `jpeg`
(uint8 grey or RGB) is smaller but lossy. Vectors are always a float list.
Each shard is written to `<file>.tmp` and renamed when complete, and
`manifest.json` last, so an interrupted conversion leaves no manifest.
"""

import collections
import concurrent.futures
import dataclasses
import json
import math
import multiprocessing
import os
import sys
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence
from typing import Tuple

from tfvae.cli import quiet_startup  # pylint: disable=g-bad-import-order

quiet_startup.default_log_level()

# pylint: disable=g-import-not-at-top; after setting TF's log level.
from absl import flags
import numpy as np

from tfvae.cli import absl_main
from tfvae.config import DataConfig
from tfvae.data import columns as columns_lib
from tfvae.data import image_folder
from tfvae.data import image_splits
from tfvae.data import tfrecord
from tfvae.errors import ConfigError
from tfvae.errors import TfvaeError
# pylint: enable=g-import-not-at-top

PROGRAM = "tfvae.data.to_tfrecord"
MANIFEST_NAME = tfrecord.MANIFEST_NAME
USER_ENCODINGS = ("png", "jpeg", "raw")
# The datasets `sources.DATASETS` registers (not imported for the help text:
# sources imports TensorFlow).
_DATASETS_HELP = "mnist, fashion_mnist, cifar10, npz, image_folder or csv"
# Examples encoded up front to estimate the bytes per record.
_SIZE_SAMPLE = 16
# Examples a worker encodes per task.
_CHUNK = 64
# Tasks queued per worker, bounding the records held in memory.
_TASKS_PER_WORKER = 2
# TFRecord framing per record: length, its CRC, the data's CRC.
_FRAMING_BYTES = 16


@dataclasses.dataclass(frozen=True)
class Result:
  """What `convert` wrote.

  Attributes:
    output_dir: the folder holding the shards and the manifest.
    manifest_path: the manifest file.
    counts: split -> number of examples.
    num_shards: split -> number of shards.
    total_bytes: bytes of all shards.
    seconds: wall time of the conversion.
  """
  output_dir: str
  manifest_path: str
  counts: Dict[str, int]
  num_shards: Dict[str, int]
  total_bytes: int
  seconds: float

  def summary(self) -> str:
    """One line: counts per split, shards, bytes, seconds."""
    splits = ", ".join(
        f"{split} {count} examples in {self.num_shards[split]} shard"
        f"{'' if self.num_shards[split] == 1 else 's'}"
        for split, count in self.counts.items())
    return (f"Wrote {self.output_dir}: {splits}; {self.total_bytes} bytes "
            f"({self.total_bytes / 2**20:.1f} MiB) in {self.seconds:.1f} s. "
            f"Train on it with --dataset=tfrecord "
            f"--data_dir={self.output_dir}.")


@dataclasses.dataclass(frozen=True)
class _Split:
  """A split's examples (arrays or image files) and labels."""
  name: str
  x: Optional[np.ndarray] = None          # [N, ...] examples, or
  files: Optional[Sequence[str]] = None   # N image files.
  y: Optional[np.ndarray] = None          # [N] int32 labels or None.

  def __len__(self):
    return len(self.x) if self.x is not None else len(self.files)

  def shuffled(self) -> "_Split":
    """The examples in `write_order(len(self))`."""
    order = write_order(len(self))
    y = None if self.y is None else self.y[order]
    if self.x is not None:
      return _Split(self.name, x=self.x[order], y=y)
    return _Split(self.name, files=[self.files[i] for i in order], y=y)

  def part(self, positions: np.ndarray) -> "_Split":
    """The examples at `positions` (sorted, contiguous for arrays)."""
    y = None if self.y is None else self.y[positions]
    if self.x is not None:  # A view: threads share the array.
      return _Split(self.name, x=self.x[positions[0]:positions[-1] + 1], y=y)
    return _Split(self.name, files=[self.files[i] for i in positions], y=y)


@dataclasses.dataclass(frozen=True)
class _Job:
  """How to encode every example."""
  encoding: str
  jpeg_quality: int
  image_size: int


# Shards a split of 1,000 x MIN_SHARDS records or more gets at least.
MIN_SHARDS = 16
# Seeds `write_order`, the same for every conversion.
WRITE_ORDER_SEED = 0


def convert(config: DataConfig, output_dir: str,
            encoding: Optional[str] = None, jpeg_quality: int = 95,
            shard_size_mb: float = 100.0, num_shards: Optional[int] = None,
            workers: Optional[int] = None, overwrite: bool = False) -> Result:
  """Writes the dataset `config` names as TFRecord shards and a manifest.

  Args:
    config: the dataset, as `train.py` would read it (`dataset`,
      `data_dir`, `image_size`, `test_fraction`, `categorical_columns`,
      `label_column`, `download`).
    output_dir: the folder to write; created if missing.
    encoding: 'png', 'jpeg' or 'raw'; default png for uint8 images, raw for
      float32 images. Vectors are always 'float_list'.
    jpeg_quality: JPEG quality 1..100.
    shard_size_mb: target size of a shard in MiB (estimated from encoding
      a few examples), unless `num_shards` is given.
    num_shards: shards per split (at most one per example).
    workers: parallel encoders (processes for image_folder, threads
      otherwise); default `os.cpu_count()`; 1 encodes in this process.
    overwrite: replace a dataset already converted into `output_dir`.

  Returns:
    The `Result`.

  Raises:
    ConfigError: bad arguments, or `output_dir` already holds a manifest and
      `overwrite` is False.
    DataError: the source data is missing or unreadable.
  """
  start = time.monotonic()
  output_dir = os.path.abspath(output_dir)
  _check_output(output_dir, overwrite)
  if encoding is not None and encoding not in USER_ENCODINGS:
    raise ConfigError(f"--encoding={encoding} is not one of "
                      f"{', '.join(USER_ENCODINGS)}.")
  if num_shards is not None and num_shards < 1:
    raise ConfigError(f"--num_shards={num_shards} must be >= 1.")
  if not 1 <= jpeg_quality <= 100:
    raise ConfigError(f"--jpeg_quality={jpeg_quality} must be in 1..100.")
  if shard_size_mb <= 0:
    raise ConfigError(f"--shard_size_mb={shard_size_mb} must be positive.")
  if config.dataset == "tfrecord":
    raise ConfigError("--dataset=tfrecord is already TFRecords; train on it "
                      "directly, or convert its original source.")
  if config.dataset == "image_folder":
    splits, metadata = _list_image_folder(config)
  else:
    splits, metadata = _load_arrays(config)
  splits = [split.shuffled() if split.name == "train" else split
            for split in splits]
  encoding = _choose_encoding(encoding, metadata)
  tfrecord.check_encoding(encoding, metadata["data_shape"], metadata["dtype"])
  job = _Job(encoding, jpeg_quality, config.image_size)
  record_bytes = None if num_shards else _estimate_bytes(splits[0], job)
  shards = []
  for split in splits:
    # At least MIN_SHARDS (of 1,000+ records): their order, permuted per
    # epoch, is what moves examples around the streamed epoch.
    k = num_shards or max(
        math.ceil(len(split) * record_bytes / (shard_size_mb * 2**20)),
        min(MIN_SHARDS, len(split) // 1000))
    k = max(1, min(k, len(split)))
    shards += [(split, index, k, positions) for index, positions in
               enumerate(np.array_split(np.arange(len(split)), k))]
  _remove_old(output_dir)
  os.makedirs(output_dir, exist_ok=True)
  entries = _write_shards(shards, output_dir, job,
                          workers or os.cpu_count() or 1)
  manifest = tfrecord.manifest_dict(
      encoding=encoding,
      splits={split.name: [e for (s, _, _, _), e in zip(shards, entries)
                           if s is split] for split in splits},
      **metadata)
  manifest_path = os.path.join(output_dir, MANIFEST_NAME)
  _write_json(manifest, manifest_path)
  return Result(
      output_dir=output_dir, manifest_path=manifest_path,
      counts={name: split["count"]
              for name, split in manifest["splits"].items()},
      num_shards={name: len(split["shards"])
                  for name, split in manifest["splits"].items()},
      total_bytes=sum(e["bytes"] for e in entries),
      seconds=time.monotonic() - start)


def write_order(num_examples: int) -> np.ndarray:
  """The order the train split's examples are written in (a fixed shuffle).

  Sources often list examples class by class (an image folder's sub-folders);
  shuffling once on writing mixes the classes across and within shards, so
  the streamed order (shards interleaved, windows shuffled) mixes them too.
  The test split keeps the source's order.

  Returns:
    `[num_examples]` int permutation: record i is source example
    `order[i]`.
  """
  return np.random.default_rng(WRITE_ORDER_SEED).permutation(num_examples)


def _check_output(output_dir: str, overwrite: bool) -> None:
  if os.path.exists(output_dir) and not os.path.isdir(output_dir):
    raise ConfigError(f"--output_dir={output_dir} is a file; point it to a "
                      "folder (it is created if missing).")
  manifest = os.path.join(output_dir, MANIFEST_NAME)
  if os.path.exists(manifest) and not overwrite:
    raise ConfigError(
        f"--output_dir={output_dir} already holds a converted dataset "
        f"({MANIFEST_NAME}); pass --overwrite to replace it, or choose "
        "another --output_dir.")


def _remove_old(output_dir: str) -> None:
  """Removes an old manifest (first) and then the shards it lists."""
  manifest = os.path.join(output_dir, MANIFEST_NAME)
  if not os.path.exists(manifest):
    return
  try:
    with open(manifest, encoding="utf-8") as f:
      splits = json.load(f).get("splits", {})
    files = [shard["file"] for split in splits.values()
             for shard in split["shards"]]
  except (OSError, ValueError, AttributeError, KeyError, TypeError):
    files = []  # An unreadable manifest: remove it alone.
  os.remove(manifest)
  for file in files:
    path = os.path.abspath(os.path.join(output_dir, str(file)))
    if os.path.dirname(path) == output_dir and os.path.isfile(path):
      os.remove(path)


def _load_arrays(config: DataConfig) -> Tuple[List[_Split], Dict[str, Any]]:
  """Loads an in-memory source; returns its splits and manifest metadata."""
  from tfvae.data import sources  # pylint: disable=g-import-not-at-top; slow.
  splits = sources.load_splits(config)
  columns = column_names = None
  if splits.is_vector:
    column_names = splits.column_names
    columns = columns_lib.fit(splits.train_x, splits.column_names,
                              splits.vocabularies)
  metadata = dict(
      source=splits.source, data_shape=splits.train_x.shape[1:],
      dtype=str(splits.train_x.dtype), num_classes=splits.num_classes,
      class_names=splits.class_names, column_names=column_names,
      columns=columns)
  return [_Split("train", x=np.asarray(splits.train_x), y=splits.train_y),
          _Split("test", x=np.asarray(splits.test_x), y=splits.test_y)
          ], metadata


def _list_image_folder(
    config: DataConfig) -> Tuple[List[_Split], Dict[str, Any]]:
  """Lists an image_folder tree's splits as files, as the source reads it.

  The splits, their order and their labels are those of
  `image_folder.load_image_folder`, which decodes every image; a held-out
  test split comes from `image_splits.hold_out_test` applied to the file
  indices instead of the images.
  """
  if config.image_size < 1:
    raise ConfigError(f"--image_size={config.image_size} must be positive.")
  # pylint: disable=protected-access; the same rules as the source.
  train_dir, test_dir = image_folder._split_folders(config.data_dir)
  train_files, train_classes = image_folder.list_images(train_dir)
  class_names = sorted(set(train_classes)) if train_classes else None
  train_y = image_folder._labels(train_classes, class_names, train_dir,
                                 train_dir)
  if test_dir is None:
    train_i, train_y, test_i, test_y = image_splits.hold_out_test(
        np.arange(len(train_files)), train_y, config.test_fraction, train_dir)
    test_files = [train_files[i] for i in test_i]
    train_files = [train_files[i] for i in train_i]
  else:
    test_files, test_classes = image_folder.list_images(test_dir)
    test_y = image_folder._labels(test_classes, class_names, test_dir,
                                  train_dir)
  # pylint: enable=protected-access
  metadata = dict(
      source=config.data_dir,
      data_shape=(config.image_size, config.image_size, 3), dtype="uint8",
      num_classes=len(class_names) if class_names else None,
      class_names=class_names, column_names=None, columns=None)
  return [_Split("train", files=train_files, y=train_y),
          _Split("test", files=test_files, y=test_y)], metadata


def _choose_encoding(encoding: Optional[str],
                     metadata: Dict[str, Any]) -> str:
  if len(metadata["data_shape"]) == 1:
    if encoding is not None:
      raise ConfigError(
          f"--encoding={encoding} is for images; {metadata['source']} holds "
          "vectors, which are always written as float lists; drop "
          "--encoding.")
    return "float_list"
  if encoding is not None:
    return encoding
  return "png" if metadata["dtype"] == "uint8" else "raw"


def _estimate_bytes(split: _Split, job: _Job) -> float:
  """Mean bytes of a record, from encoding a few evenly spaced examples."""
  positions = np.unique(np.linspace(0, len(split) - 1,
                                    min(_SIZE_SAMPLE, len(split))).astype(int))
  sizes = [len(tfrecord.example_bytes(x, y, job.encoding, job.jpeg_quality))
           for x, y in _examples(split, positions, job.image_size)]
  return float(np.mean(sizes)) + _FRAMING_BYTES


def _examples(split: _Split, positions: Iterable[int],
              image_size: int) -> Iterator[Tuple[np.ndarray, Optional[int]]]:
  """`(example, label)` pairs of the split's examples at `positions`."""
  for i in positions:
    label = None if split.y is None else int(split.y[i])
    if split.x is not None:
      yield split.x[i], label
    else:
      yield image_folder.read_image(split.files[i], image_size), label


def encode_records(part: _Split, job: _Job) -> List[bytes]:
  """Serializes the examples of `part`; what a worker runs.

  Args:
    part: a chunk of a split: arrays, or image files read with
      `image_folder.read_image(path, job.image_size)`.
    job: the encoding.

  Returns:
    One serialized `tf.train.Example` per example, in order.

  Raises:
    DataError: an unreadable image file.
  """
  return [tfrecord.example_bytes(x, y, job.encoding, job.jpeg_quality)
          for x, y in _examples(part, range(len(part)), job.image_size)]


def _write_shards(shards, output_dir: str, job: _Job,
                  workers: int) -> List[Dict[str, Any]]:
  """Writes the shards in order; returns their manifest entries.

  Workers encode chunks of each shard's examples; this process writes
  their records, each shard to `<file>.tmp` first, then renamed.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top; slow.

  tasks = [(shard, split.part(chunk)) for shard, (split, _, _, positions)
           in enumerate(shards)
           for chunk in np.array_split(positions,
                                       math.ceil(len(positions) / _CHUNK))]
  workers = max(1, min(workers, len(tasks)))
  if workers == 1:
    pool = None
  elif any(split.files is not None for split, _, _, _ in shards):
    # Processes: reading and encoding images holds the GIL. spawn, not
    # fork: this process has imported TensorFlow, unsafe to fork.
    pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"))
  else:
    pool = concurrent.futures.ThreadPoolExecutor(workers)
  results = _in_order(pool, tasks, job, workers * _TASKS_PER_WORKER)
  entries, tmp = [], None
  try:
    for shard, (split, index, num_shards, positions) in enumerate(shards):
      path = os.path.join(output_dir,
                          tfrecord.shard_name(split.name, index, num_shards))
      tmp = path + ".tmp"
      count = 0
      with tf.io.TFRecordWriter(tmp) as writer:
        while count < len(positions):
          task_shard, records = next(results)
          assert task_shard == shard, (task_shard, shard)
          for record in records:
            writer.write(record)
          count += len(records)
      os.replace(tmp, path)
      tmp = None
      entries.append({"file": os.path.basename(path), "count": count,
                      "bytes": os.path.getsize(path)})
  finally:
    if tmp is not None and os.path.exists(tmp):
      os.remove(tmp)
    if pool is not None:
      pool.shutdown(wait=True, cancel_futures=True)
  return entries


def _in_order(pool: Optional[concurrent.futures.Executor], tasks, job: _Job,
              window: int) -> Iterator[Tuple[int, List[bytes]]]:
  """`(shard, records)` of each task in order, `window` tasks in flight."""
  if pool is None:
    for shard, part in tasks:
      yield shard, encode_records(part, job)
    return
  pending = collections.deque()
  queue = iter(tasks)

  def submit_next():
    task = next(queue, None)
    if task is not None:
      pending.append((task[0], pool.submit(encode_records, task[1], job)))

  for _ in range(window):
    submit_next()
  while pending:
    shard, future = pending.popleft()
    submit_next()
    yield shard, future.result()


def _write_json(value: Dict[str, Any], path: str) -> None:
  """Writes `value` to `path` atomically (a temporary file, then a rename)."""
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(value, f, indent=2)
    f.write("\n")
  os.replace(tmp, path)


def _define_flags() -> List[flags.Flag]:
  """Defines the program's flags on `flags.FLAGS`; returns them."""
  holders = [
      flags.DEFINE_string(
          "dataset", None,
          f"Dataset to convert: {_DATASETS_HELP}.",
          required=True),
      flags.DEFINE_string(
          "data_dir", None,
          "Where the dataset's files are, as for train.py: for npz a .npz "
          "file or a folder with train.npz/test.npz, for csv a .csv file or "
          "folder, for image_folder its root."),
      flags.DEFINE_integer("image_size", 64,
                           "image_folder: side of the square images.",
                           lower_bound=1),
      flags.DEFINE_float(
          "test_fraction", 0.2,
          "Share held out as test set when the source has none.",
          lower_bound=0.0, upper_bound=1.0),
      flags.DEFINE_list("categorical_columns", [],
                        "csv: columns read as categories."),
      flags.DEFINE_string("label_column", None,
                          "csv: the column holding class labels."),
      flags.DEFINE_bool(
          "download", True,
          "Named datasets: try keras.datasets when no local copy is found."),
      flags.DEFINE_string(
          "output_dir", None,
          "Folder to write the shards and manifest.json to.", required=True),
      flags.DEFINE_enum(
          "encoding", None, USER_ENCODINGS,
          "Image encoding; default png for uint8, raw for float32 images. "
          "Vectors are always float lists."),
      flags.DEFINE_integer("jpeg_quality", 95, "--encoding=jpeg: quality.",
                           lower_bound=1, upper_bound=100),
      flags.DEFINE_float("shard_size_mb", 100.0,
                         "Target shard size in MiB."),
      flags.DEFINE_integer("num_shards", None,
                           "Shards per split instead of --shard_size_mb.",
                           lower_bound=1),
      flags.DEFINE_integer(
          "workers", None,
          "Parallel encoders (processes for image_folder, else threads); "
          "default the number of CPUs; 1 encodes in this process.",
          lower_bound=1),
      flags.DEFINE_bool(
          "overwrite", False,
          "Replace a dataset already converted into --output_dir."),
  ]
  flags.register_validator("shard_size_mb", lambda v: v > 0,
                           message="--shard_size_mb must be positive.")
  return [flags.FLAGS[holder.name] for holder in holders]


def main(argv):
  """Converts the dataset the parsed flags name.

  Args:
    argv: what is left of the command line after absl parsed the flags;
      only the program name is expected.
  """
  values = flags.FLAGS
  if len(argv) > 1:
    sys.exit(f"{PROGRAM}: error: unexpected arguments {argv[1:]}.")
  config = DataConfig(
      dataset=values.dataset, data_dir=values.data_dir,
      image_size=values.image_size, test_fraction=values.test_fraction,
      download=values.download,
      categorical_columns=tuple(values.categorical_columns),
      label_column=values.label_column)
  try:
    if values["num_shards"].present and values["shard_size_mb"].present:
      raise ConfigError("Pass --shard_size_mb or --num_shards, not both.")
    quiet_startup.import_tensorflow()
    result = convert(config, values.output_dir, encoding=values.encoding,
                     jpeg_quality=values.jpeg_quality,
                     shard_size_mb=values.shard_size_mb,
                     num_shards=values.num_shards, workers=values.workers,
                     overwrite=values.overwrite)
  except TfvaeError as e:
    sys.exit(f"{PROGRAM}: error: {e}")
  print(result.summary())


def run():
  """Defines the flags and runs `main` on the command line."""
  absl_main.run(main, _define_flags(), __doc__)


if __name__ == "__main__":
  run()
