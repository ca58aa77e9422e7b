"""The `tfrecord` format: sharded `tf.train.Example`s and their manifest.

`python -m tfvae.data.to_tfrecord` writes a dataset into a folder holding
`manifest.json` and, per split, shards named like
`train-00000-of-00004.tfrecord`. Each record is one example:

- images: `image` (bytes: an encoded PNG or JPEG, or the raw bytes of the
  `[H, W, C]` array in C order, little-endian) and `shape` (int64 `[H, W, C]`);
- vectors: `x` (float list of length D) and `shape` (int64 `[D]`);
- with classes, `label` (int64 class id).

The manifest says what the shards hold (shape, dtype, encoding, classes, the
vector columns fitted on the train split) and lists each split's shards with
their record counts and sizes in bytes:

  {"format": "tfvae-tfrecord/1", "source": "/data/faces",
   "data_shape": [64, 64, 3], "dtype": "uint8", "encoding": "png",
   "num_classes": 2, "class_names": ["cat", "dog"],
   "column_names": null, "columns": null,
   "splits": {"train": {"count": 800, "shards": [
                 {"file": "train-00000-of-00002.tfrecord", "count": 400,
                  "bytes": 4718592}, ...]},
              "test": {...}}}

`read_manifest` checks the manifest against the files (cheaply: sizes and
each shard's first record), `parse_fn` turns a serialized record into
tensors inside a `tf.data` pipeline, and `diagnose` scans a split record by
record to name the first bad one after a pipeline failed.

The write side (`example_bytes`, `shard_name`, `manifest_dict`) works without
TensorFlow, which the read side imports on first use: the writer's worker
processes encode records without paying TensorFlow's import (seconds and
hundreds of MB each); only the TFRecord framing needs it.
"""

import dataclasses
import io
import json
import os
import re
import struct
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from google.protobuf import message as protobuf_message
import numpy as np
from PIL import Image

from tfvae.data import columns as columns_lib
from tfvae.data.image_splits import describe_exception
from tfvae.errors import ConfigError, DataError

__all__ = ["FORMAT", "MANIFEST_NAME", "ENCODINGS", "Shard", "Manifest",
           "read_manifest", "parse_fn", "diagnose", "example_bytes",
           "shard_name", "manifest_dict", "encode_image", "check_encoding",
           "HOW_TO_WRITE"]

FORMAT = "tfvae-tfrecord/1"
MANIFEST_NAME = "manifest.json"
ENCODINGS = ("png", "jpeg", "raw", "float_list")
IMAGE_ENCODINGS = ("png", "jpeg", "raw")
DTYPES = ("uint8", "float32")
HOW_TO_WRITE = ("python -m tfvae.data.to_tfrecord --dataset=... "
                "--output_dir=...")

_FIELDS = ("format", "source", "data_shape", "dtype", "encoding",
           "num_classes", "class_names", "column_names", "columns", "splits")
_SPLIT_FIELDS = ("count", "shards")
_SHARD_FIELDS = ("file", "count", "bytes")
# TFRecord framing: uint64 length, uint32 CRC of it, data, uint32 CRC of it.
_HEADER_BYTES = 12
_FOOTER_BYTES = 4
_MAX_REASON_CHARS = 160
# Field numbers of the kinds of `tf.train.Feature`.
_BYTES_LIST, _FLOAT_LIST, _INT64_LIST = 1, 2, 3


@dataclasses.dataclass(frozen=True)
class Shard:
  """One TFRecord file of a split.

  Attributes:
    path: the file's absolute path.
    count: records it holds, as the manifest says.
    size_bytes: its size, as the manifest says.
  """
  path: str
  count: int
  size_bytes: int


@dataclasses.dataclass(frozen=True)
class Manifest:
  """A `manifest.json`, read and checked by `read_manifest`.

  Attributes:
    path: the manifest file's absolute path.
    source: where the data was converted from.
    data_shape: `(H, W, C)` of images or `(D,)` of vectors.
    dtype: 'uint8' or 'float32', the dtype `parse_fn` returns.
    encoding: how `image` is stored: 'png', 'jpeg', 'raw', or 'float_list'
      for vectors (feature `x`).
    num_classes: number of classes when records carry a `label`, else None.
    class_names: the name of each class id, when known.
    column_names: the D column names of vectors, when the source had them.
    columns: the vectors' `columns_lib.Column`s fitted on the train split
      (None for images).
    splits: split name -> its shards, in reading order.
  """
  path: str
  source: str
  data_shape: Tuple[int, ...]
  dtype: str
  encoding: str
  num_classes: Optional[int]
  class_names: Optional[Tuple[str, ...]]
  column_names: Optional[Tuple[str, ...]]
  columns: Optional[Tuple[columns_lib.Column, ...]]
  splits: Dict[str, Tuple[Shard, ...]]

  @property
  def folder(self) -> str:
    """The folder holding the manifest (and, usually, the shards)."""
    return os.path.dirname(self.path)

  @property
  def is_vector(self) -> bool:
    """True for `[D]` vectors, False for `[H, W, C]` images."""
    return len(self.data_shape) == 1

  def shards(self, split: str) -> Tuple[Shard, ...]:
    """The shards of `split`; DataError naming the splits there are."""
    if split not in self.splits:
      raise DataError(
          f"{self.path} has no {split!r} split (it has: "
          f"{', '.join(self.splits)}); write one with {HOW_TO_WRITE}.")
    return self.splits[split]

  def count(self, split: str) -> int:
    """The number of examples in `split`."""
    return sum(shard.count for shard in self.shards(split))

  def files(self, split: str) -> List[str]:
    """The absolute paths of `split`'s shards, in reading order."""
    return [shard.path for shard in self.shards(split)]


def shard_name(split: str, index: int, num_shards: int) -> str:
  """The file name of one shard, e.g. `train-00000-of-00004.tfrecord`."""
  return f"{split}-{index:05d}-of-{num_shards:05d}.tfrecord"


def example_bytes(x: np.ndarray, label: Optional[int], encoding: str,
                  jpeg_quality: int = 95) -> bytes:
  """Serializes one example as a `tf.train.Example` (without TensorFlow).

  Args:
    x: `[H, W, C]` image (uint8 for png/jpeg, C 1 or 3; uint8 or float32
      for raw) or `[D]` float32 vector (float_list).
    label: its class id, or None when the data has no classes.
    encoding: one of `ENCODINGS`.
    jpeg_quality: JPEG quality 1..100 (jpeg only).

  Returns:
    The serialized record, as `tf.train.Example.SerializeToString` would
    write it.

  Raises:
    ConfigError: an encoding that cannot hold `x`.
  """
  x = np.asarray(x)
  if encoding == "float_list":
    if x.ndim != 1:
      raise ConfigError(f"encoding float_list holds [D] vectors, not "
                        f"{list(x.shape)} arrays; use png, jpeg or raw.")
    data = ("x", _FLOAT_LIST, _field(1, x.astype("<f4").tobytes()))
  elif encoding in IMAGE_ENCODINGS:
    if x.ndim != 3:
      raise ConfigError(f"encoding {encoding} holds [H, W, C] images, not "
                        f"{list(x.shape)} arrays; use float_list for vectors.")
    data = ("image", _BYTES_LIST,
            _field(1, encode_image(x, encoding, jpeg_quality)))
  else:
    raise ConfigError(f"Unknown encoding {encoding!r}; use one of "
                      f"{', '.join(ENCODINGS)}.")
  features = [("shape", _INT64_LIST, _int64s(x.shape)), data]
  if label is not None:
    features.append(("label", _INT64_LIST, _int64s([int(label)])))
  # Example {Features features = 1}; Features {map<string, Feature> feature
  # = 1}, a map entry being {key = 1, value = 2}; Feature {oneof: BytesList
  # = 1, FloatList = 2, Int64List = 3}; each list holds its values in field
  # 1 (packed for numbers).
  entries = b"".join(
      _field(1, _field(1, name.encode()) + _field(2, _field(kind, values)))
      for name, kind, values in features)
  return _field(1, entries)


def encode_image(x: np.ndarray, encoding: str, jpeg_quality: int = 95
                 ) -> bytes:
  """The `image` feature of an `[H, W, C]` image.

  Args:
    x: the image; uint8 grey or RGB for png/jpeg, uint8 or float32 for raw.
    encoding: 'png', 'jpeg' or 'raw'.
    jpeg_quality: JPEG quality 1..100.

  Returns:
    PNG or JPEG file bytes, or the array's bytes (C order, little-endian).

  Raises:
    ConfigError: an image the encoding cannot hold.
  """
  if encoding == "raw":
    if x.dtype not in (np.uint8, np.float32):
      raise ConfigError(f"raw images are uint8 or float32, not {x.dtype}.")
    return np.ascontiguousarray(x, x.dtype.newbyteorder("<")).tobytes()
  if encoding not in ("png", "jpeg"):
    raise ConfigError(f"Unknown image encoding {encoding!r}; use one of "
                      f"{', '.join(IMAGE_ENCODINGS)}.")
  if x.dtype != np.uint8 or x.ndim != 3 or x.shape[-1] not in (1, 3):
    raise ConfigError(
        f"--encoding={encoding} stores uint8 grey or RGB images, not "
        f"{list(x.shape)} {x.dtype}; use --encoding=raw.")
  grey = x.shape[-1] == 1
  image = Image.fromarray(x[..., 0] if grey else x, "L" if grey else "RGB")
  out = io.BytesIO()
  if encoding == "png":
    image.save(out, "PNG")
  else:
    image.save(out, "JPEG", quality=int(jpeg_quality))
  return out.getvalue()


def check_encoding(encoding: str, data_shape: Sequence[int],
                   dtype: str) -> None:
  """Raises ConfigError unless `encoding` can store such examples."""
  shape = list(data_shape)
  if encoding not in ENCODINGS:
    raise ConfigError(f"Unknown encoding {encoding!r}; use one of "
                      f"{', '.join(ENCODINGS)}.")
  if (encoding == "float_list") != (len(shape) == 1):
    raise ConfigError(
        f"encoding {encoding} cannot store examples of shape {shape}: "
        "vectors [D] are written as float_list, images [H, W, C] as png, "
        "jpeg or raw.")
  if dtype not in DTYPES:
    raise ConfigError(f"dtype {dtype} is not one of {', '.join(DTYPES)}.")
  if encoding in ("png", "jpeg") and dtype != "uint8":
    raise ConfigError(
        f"--encoding={encoding} stores uint8 pixels but the images are "
        f"{dtype}; use --encoding=raw (the default for {dtype} images).")
  if encoding in ("png", "jpeg") and shape[-1] not in (1, 3):
    raise ConfigError(
        f"--encoding={encoding} stores grey or RGB images, not {shape[-1]} "
        "channels; use --encoding=raw.")
  if encoding == "float_list" and dtype != "float32":
    raise ConfigError(f"float_list vectors are float32, not {dtype}.")


def manifest_dict(source: str, data_shape: Sequence[int], dtype: str,
                  encoding: str, num_classes: Optional[int],
                  class_names: Optional[Sequence[str]],
                  column_names: Optional[Sequence[str]],
                  columns: Optional[Sequence[columns_lib.Column]],
                  splits: Dict[str, Sequence[Dict[str, Any]]]
                  ) -> Dict[str, Any]:
  """The JSON object of a manifest (what `to_tfrecord` writes).

  Args:
    source: where the data came from.
    data_shape: `[H, W, C]` or `[D]`.
    dtype: 'uint8' or 'float32'.
    encoding: one of `ENCODINGS`.
    num_classes: number of classes, or None.
    class_names: names of the classes, or None.
    column_names: names of vector columns, or None.
    columns: fitted vector columns, or None.
    splits: split name -> its shards as `{"file", "count", "bytes"}` dicts,
      `file` relative to the manifest's folder.

  Returns:
    A JSON-ready dict.
  """
  return {
      "format": FORMAT,
      "source": source,
      "data_shape": [int(d) for d in data_shape],
      "dtype": dtype,
      "encoding": encoding,
      "num_classes": None if num_classes is None else int(num_classes),
      "class_names": None if class_names is None else list(class_names),
      "column_names": None if column_names is None else list(column_names),
      "columns": columns_lib.to_dicts(columns),
      "splits": {
          name: {"count": int(sum(s["count"] for s in shards)),
                 "shards": [dict(s) for s in shards]}
          for name, shards in splits.items()},
  }


def read_manifest(data_dir: Optional[str]) -> Manifest:
  """Reads and checks a manifest and its shards (sizes and first records).

  Args:
    data_dir: the folder holding `manifest.json`, or the manifest file.

  Returns:
    The `Manifest`.

  Raises:
    ConfigError: `data_dir` unset or missing.
    DataError: no manifest, invalid JSON, an unknown format or field, no
      `train` split, a missing shard, a shard whose size differs from the
      manifest's, counts that do not add up, or a first record whose shape
      differs from `data_shape`.
  """
  path = _manifest_path(data_dir)
  try:
    with open(path, encoding="utf-8") as f:
      text = f.read()
  except (OSError, UnicodeDecodeError) as e:
    raise DataError(f"Cannot read {path} ({describe_exception(e)}); fix its "
                    f"permissions or rewrite it with {HOW_TO_WRITE}.") from e
  try:
    value = json.loads(text)
  except json.JSONDecodeError as e:
    raise DataError(
        f"{path} is not valid JSON ({e.msg} at line {e.lineno} column "
        f"{e.colno}); rewrite it with {HOW_TO_WRITE}.") from None
  manifest = _parse(value, path)
  for shards in manifest.splits.values():
    for shard in shards:
      _check_file(shard, manifest)
      if shard.count:
        _check_first_record(shard, manifest)
  return manifest


def parse_fn(manifest: Manifest) -> Callable[[Any], Dict[str, Any]]:
  """A `tf.data`-traceable parser of the manifest's records.

  Args:
    manifest: what the records hold.

  Returns:
    `parse(serialized)`: a `tf.string` scalar -> `{"image": data_shape
    tensor of manifest.dtype ([D] float32 for vectors), "label": int32
    scalar (only with classes)}`. A record of another shape, an undecodable
    image or a label out of range fails the pipeline with an
    `InvalidArgumentError` (call `diagnose` for a one-line account).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top; on first use.
  shape = list(manifest.data_shape)
  dtype = tf.as_dtype(manifest.dtype)
  num_classes = manifest.num_classes
  spec = {"shape": tf.io.FixedLenFeature([len(shape)], tf.int64)}
  if manifest.is_vector:
    spec["x"] = tf.io.FixedLenFeature(shape, tf.float32)
  else:
    spec["image"] = tf.io.FixedLenFeature([], tf.string)
  if num_classes is not None:
    spec["label"] = tf.io.FixedLenFeature([], tf.int64)
  encoding = manifest.encoding
  where = manifest.path

  def parse(serialized):
    features = tf.io.parse_single_example(serialized, spec)
    checks = [tf.debugging.assert_equal(
        features["shape"], tf.constant(shape, tf.int64),
        message=(f"a record's shape differs from data_shape {shape} of "
                 f"{where}"))]
    if encoding == "float_list":
      image = features["x"]
    elif encoding == "raw":
      image = tf.reshape(tf.io.decode_raw(features["image"], dtype), shape)
    else:
      image = tf.io.decode_image(features["image"], channels=shape[-1],
                                 dtype=tf.uint8, expand_animations=False)
      image = tf.ensure_shape(image, shape)
    result = {}
    if num_classes is not None:
      label = features["label"]
      checks.append(tf.debugging.assert_equal(
          tf.logical_and(label >= 0, label < num_classes), True,
          message=f"a record's label is outside 0..{num_classes - 1} "
                  f"({where})"))
      result["label"] = tf.cast(label, tf.int32)
    checks = [c for c in checks if c is not None]  # None when eager.
    with tf.control_dependencies(checks):
      result["image"] = tf.identity(image)
    return result

  return parse


def diagnose(manifest: Manifest, split: str) -> Optional[str]:
  """Finds the first problem of a split's shards, reading every record.

  Slow (it decodes each record); meant for after a streamed pipeline
  failed, to tell the user which file and record is at fault.

  Args:
    manifest: from `read_manifest`.
    split: e.g. 'train'.

  Returns:
    A one-line description of the first problem (a missing, resized,
    corrupt or truncated shard, a record that cannot be parsed or decoded or
    has the wrong shape or label, a record count that differs from the
    manifest), or None when every record is fine.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top; on first use.
  fix = _fix(manifest)
  parse = parse_fn(manifest)
  for shard in manifest.shards(split):
    name = shard.path
    if not os.path.isfile(name):
      return f"{name} is missing; {fix}."
    size = os.path.getsize(name)
    if size != shard.size_bytes:
      return (f"{name} is truncated or was rewritten: {size} bytes, the "
              f"manifest says {shard.size_bytes}; {fix}.")
    count = 0
    iterator = iter(tf.data.TFRecordDataset(name).map(
        lambda record: (record, parse(record))))
    while True:
      try:
        next(iterator)
      except StopIteration:
        break
      except tf.errors.DataLossError as e:
        return (f"{name}: record {count} is corrupt or truncated "
                f"({_short_reason(e)}); {fix}.")
      except tf.errors.OpError as e:
        problem = _record_problem(_nth_record(name, count), manifest)
        return (f"{name}: record {count} "
                f"{problem or 'cannot be parsed: ' + _short_reason(e)}; "
                f"{fix}.")
      count += 1
    if count != shard.count:
      return (f"{name} holds {count} records, the manifest says "
              f"{shard.count}; {fix}.")
  return None


def _varint(value: int) -> bytes:
  """Protocol buffers' base-128 varint (negative numbers as 64-bit)."""
  if value < 0:
    value += 1 << 64
  out = bytearray()
  while True:
    byte, value = value & 0x7F, value >> 7
    if not value:
      out.append(byte)
      return bytes(out)
    out.append(byte | 0x80)


def _field(number: int, payload: bytes) -> bytes:
  """A length-delimited protocol buffer field."""
  return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int64s(values) -> bytes:
  """An `Int64List`'s packed values."""
  return _field(1, b"".join(_varint(int(v)) for v in values))


def _manifest_path(data_dir: Optional[str]) -> str:
  """The manifest file of `data_dir` (a folder or the file itself)."""
  if not data_dir:
    raise ConfigError(
        "--data_dir must point to a folder written by "
        f"{HOW_TO_WRITE} (or its {MANIFEST_NAME}) when --dataset=tfrecord.")
  path = os.path.abspath(data_dir)
  if os.path.isfile(path):
    return path
  if not os.path.isdir(path):
    raise ConfigError(
        f"--data_dir={data_dir} does not exist; point it to a folder written "
        f"by {HOW_TO_WRITE}.")
  manifest = os.path.join(path, MANIFEST_NAME)
  if not os.path.isfile(manifest):
    raise DataError(
        f"{path} holds no {MANIFEST_NAME}; write the dataset there with "
        f"python -m tfvae.data.to_tfrecord --dataset=... --output_dir={path} "
        "(an interrupted conversion leaves shards but no manifest).")
  return manifest


def _parse(value: Any, path: str) -> Manifest:
  """Checks the manifest's JSON object and builds the `Manifest`."""
  fix = f"rewrite it with {HOW_TO_WRITE}"
  if not isinstance(value, dict):
    raise DataError(f"{path} holds a JSON {type(value).__name__}, not a "
                    f"manifest object; {fix}.")
  if value.get("format") != FORMAT:
    raise DataError(
        f"{path} has format {value.get('format')!r}; this tfvae reads "
        f"{FORMAT!r} manifests; {fix}.")
  _check_keys(value, _FIELDS, path, fix)
  source = _typed(value, "source", str, path, fix)
  shape = value["data_shape"]
  if (not isinstance(shape, list) or len(shape) not in (1, 3)
      or not all(_is_int(d) and d > 0 for d in shape)):
    raise DataError(f"{path} field data_shape is {shape!r}, not [H, W, C] "
                    f"or [D] of positive integers; {fix}.")
  dtype = value["dtype"]
  encoding = value["encoding"]
  try:
    check_encoding(encoding, shape, dtype)
  except ConfigError as e:
    raise DataError(f"{path}: {e} ({fix})") from None
  num_classes = value["num_classes"]
  if num_classes is not None and not (_is_int(num_classes)
                                      and num_classes > 0):
    raise DataError(f"{path} field num_classes is {num_classes!r}, not a "
                    f"positive integer or null; {fix}.")
  class_names = _names(value, "class_names", num_classes, path, fix)
  column_names = _names(value, "column_names",
                        shape[0] if len(shape) == 1 else None, path, fix)
  columns = value["columns"]
  if columns is not None:
    try:
      columns = columns_lib.from_dicts(columns)
    except (TypeError, AttributeError, ValueError) as e:
      raise DataError(f"{path} field columns is malformed "
                      f"({describe_exception(e)}); {fix}.") from None
    if len(shape) != 1 or len(columns) != shape[0]:
      raise DataError(f"{path} describes {len(columns)} columns for "
                      f"examples of shape {shape}; {fix}.")
  splits = value["splits"]
  if not isinstance(splits, dict) or "train" not in splits:
    raise DataError(f"{path} has no train split in its field splits; "
                    f"{fix}.")
  folder = os.path.dirname(path)
  return Manifest(
      path=path, source=source, data_shape=tuple(shape), dtype=dtype,
      encoding=encoding, num_classes=num_classes,
      class_names=class_names, column_names=column_names, columns=columns,
      splits={name: _parse_split(split, f"{path} split {name}", folder, fix)
              for name, split in splits.items()})


def _parse_split(value: Any, where: str, folder: str,
                 fix: str) -> Tuple[Shard, ...]:
  if not isinstance(value, dict):
    raise DataError(f"{where} is not an object with count and shards; "
                    f"{fix}.")
  _check_keys(value, _SPLIT_FIELDS, where, fix)
  count = _count(value, "count", where, fix)
  if not isinstance(value["shards"], list):
    raise DataError(f"{where} field shards is not a list; {fix}.")
  shards = []
  for index, shard in enumerate(value["shards"]):
    here = f"{where} shard {index}"
    if not isinstance(shard, dict):
      raise DataError(f"{here} is not an object with file, count and bytes; "
                      f"{fix}.")
    _check_keys(shard, _SHARD_FIELDS, here, fix)
    file = _typed(shard, "file", str, here, fix)
    shards.append(Shard(os.path.join(folder, file),
                        _count(shard, "count", here, fix),
                        _count(shard, "bytes", here, fix)))
  total = sum(s.count for s in shards)
  if total != count:
    raise DataError(
        f"{where} has count {count} but its shards hold {total} records "
        f"({' + '.join(str(s.count) for s in shards) or 'none'}); {fix}.")
  return tuple(shards)


def _check_keys(value: Dict[str, Any], fields: Sequence[str], where: str,
                fix: str) -> None:
  missing = [f for f in fields if f not in value]
  unknown = sorted(set(value) - set(fields))
  if missing:
    raise DataError(f"{where} lacks field(s) {', '.join(missing)}; {fix}.")
  if unknown:
    raise DataError(f"{where} has unknown field(s) {', '.join(unknown)} "
                    f"(known: {', '.join(fields)}); {fix}.")


def _typed(value: Dict[str, Any], name: str, kind: type, where: str,
           fix: str) -> Any:
  if not isinstance(value[name], kind):
    raise DataError(f"{where} field {name} is {value[name]!r}, not a "
                    f"{kind.__name__}; {fix}.")
  return value[name]


def _count(value: Dict[str, Any], name: str, where: str, fix: str) -> int:
  if not (_is_int(value[name]) and value[name] >= 0):
    raise DataError(f"{where} field {name} is {value[name]!r}, not an "
                    f"integer >= 0; {fix}.")
  return value[name]


def _names(value: Dict[str, Any], name: str, length: Optional[int],
           where: str, fix: str) -> Optional[Tuple[str, ...]]:
  names = value[name]
  if names is None:
    return None
  if (not isinstance(names, list) or not all(isinstance(n, str)
                                             for n in names)
      or len(names) != length):
    expected = f"{length} strings" if length is not None else "null"
    raise DataError(f"{where} field {name} is {names!r}, expected "
                    f"{expected}; {fix}.")
  return tuple(names)


def _is_int(value: Any) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _fix(manifest: Manifest) -> str:
  return (f"rewrite the shards with python -m tfvae.data.to_tfrecord "
          f"--dataset=... --output_dir={manifest.folder} --overwrite (they "
          f"were converted from {manifest.source})")


def _check_file(shard: Shard, manifest: Manifest) -> None:
  if not os.path.isfile(shard.path):
    raise DataError(f"{shard.path}, a shard listed in {manifest.path}, is "
                    f"missing; {_fix(manifest)}.")
  size = os.path.getsize(shard.path)
  if size != shard.size_bytes:
    raise DataError(
        f"{shard.path} is truncated or was rewritten: {size} bytes, the "
        f"manifest says {shard.size_bytes}; {_fix(manifest)}.")


def _check_first_record(shard: Shard, manifest: Manifest) -> None:
  """Checks record 0 of a shard: a parseable Example of the right shape."""
  try:
    with open(shard.path, "rb") as f:
      header = f.read(_HEADER_BYTES)
      length = (struct.unpack("<Q", header[:8])[0]
                if len(header) == _HEADER_BYTES else -1)
      if (length < 0
          or _HEADER_BYTES + length + _FOOTER_BYTES > shard.size_bytes):
        raise DataError(f"{shard.path} record 0 is truncated (not a TFRecord "
                        f"file?); {_fix(manifest)}.")
      record = f.read(length)
  except OSError as e:
    raise DataError(f"Cannot read {shard.path} ({describe_exception(e)}); "
                    "fix its permissions.") from e
  problem = _header_problem(record, manifest)
  if problem:
    raise DataError(f"{shard.path} record 0 {problem}; {_fix(manifest)}.")


def _header_problem(record: bytes, manifest: Manifest) -> Optional[str]:
  """What is wrong with a record's Example structure, shape and label."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top; on first use.
  try:
    example = tf.train.Example.FromString(record)
  except protobuf_message.DecodeError as e:
    return f"is not a tf.train.Example ({describe_exception(e)})"
  feature = example.features.feature
  data_key = "x" if manifest.is_vector else "image"
  for key in ("shape", data_key):
    if key not in feature:
      return (f"has no {key!r} feature (it has: "
              f"{', '.join(sorted(feature)) or 'none'}), so it is not a "
              f"{manifest.encoding} record of this dataset")
  shape = list(feature["shape"].int64_list.value)
  if shape != list(manifest.data_shape):
    return (f"has shape {shape} but the manifest says "
            f"{list(manifest.data_shape)} (shards of different datasets in "
            "one folder?)")
  if manifest.num_classes is not None:
    if "label" not in feature:
      return (f"has no label but the manifest says {manifest.num_classes} "
              "classes")
    labels = list(feature["label"].int64_list.value)
    if len(labels) != 1 or not 0 <= labels[0] < manifest.num_classes:
      return (f"has label {labels} outside 0..{manifest.num_classes - 1}")
  return None


def _record_problem(record: Optional[bytes],
                    manifest: Manifest) -> Optional[str]:
  """Describes why a record fails `parse_fn`; None if it cannot say."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top; on first use.
  if record is None:
    return None
  problem = _header_problem(record, manifest)
  if problem:
    return problem
  try:
    parse_fn(manifest)(tf.constant(record))
  except tf.errors.OpError as e:
    return f"cannot be decoded ({_short_reason(e)})"
  return None


def _nth_record(path: str, index: int) -> Optional[bytes]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top; on first use.
  try:
    for record in tf.data.TFRecordDataset(path).skip(index).take(1):
      return record.numpy()
  except tf.errors.OpError:
    return None
  return None


def _short_reason(e: Exception) -> str:
  """The gist of a TF error message: no node names, one line, short."""
  text = re.sub(r"\{\{[^}]*\}\}|\[\[.*?\]\]|\[Op:[^\]]*\].*", " ",
                getattr(e, "message", None) or str(e), flags=re.S)
  text = " ".join(text.split())
  if len(text) > _MAX_REASON_CHARS:
    text = text[:_MAX_REASON_CHARS - 3] + "..."
  return text or type(e).__name__
