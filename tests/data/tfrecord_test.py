"""Tests of `tfvae.data.tfrecord`: records, the manifest, parsing, diagnosis.

Every test writes its own few records under `tmp_path` with `example_bytes`
and `manifest_dict`, the pieces the writer (`to_tfrecord`) uses.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfvae.data import columns as columns_lib
from tfvae.data import tfrecord
from tfvae.errors import ConfigError, DataError


def _images(shape, dtype=np.uint8, n=6, seed=0):
  rng = np.random.default_rng(seed)
  if dtype == np.uint8:
    return rng.integers(0, 256, (n,) + shape).astype(np.uint8)
  return rng.normal(size=(n,) + shape).astype(np.float32)


def _smooth_images(shape, n=4):
  """Gradients (JPEG keeps them close); `[n, *shape]` uint8."""
  h, w, c = shape
  yy, xx = np.mgrid[0:h, 0:w]
  images = [(yy * 255 / h * (i % 2) + xx * 255 / w * (1 - i % 2))
            for i in range(n)]
  images = np.stack(images)[..., np.newaxis].repeat(c, axis=-1)
  return images.astype(np.uint8)


def _write(folder, splits, encoding, num_classes=None, num_shards=2,
           columns=None, column_names=None, class_names=None):
  """Writes `{split: (x, y)}` as shards + manifest; returns the manifest."""
  os.makedirs(folder, exist_ok=True)
  entries = {}
  for split, (x, y) in splits.items():
    entries[split] = []
    parts = np.array_split(np.arange(len(x)), num_shards)
    for index, positions in enumerate(parts):
      name = tfrecord.shard_name(split, index, num_shards)
      path = os.path.join(folder, name)
      with tf.io.TFRecordWriter(path) as writer:
        for i in positions:
          writer.write(tfrecord.example_bytes(
              x[i], None if y is None else y[i], encoding))
      entries[split].append({"file": name, "count": len(positions),
                             "bytes": os.path.getsize(path)})
  x = splits["train"][0]
  value = tfrecord.manifest_dict(
      source="test data", data_shape=x.shape[1:], dtype=str(x.dtype),
      encoding=encoding, num_classes=num_classes, class_names=class_names,
      column_names=column_names, columns=columns, splits=entries)
  path = os.path.join(folder, tfrecord.MANIFEST_NAME)
  with open(path, "w") as f:
    json.dump(value, f)
  return path


def _edit_manifest(path, edit):
  with open(path) as f:
    value = json.load(f)
  edit(value)
  with open(path, "w") as f:
    json.dump(value, f)


def _read_all(manifest, split):
  dataset = tf.data.TFRecordDataset(manifest.files(split)).map(
      tfrecord.parse_fn(manifest)).batch(1000)
  batches = list(dataset)
  return {k: np.concatenate([b[k].numpy() for b in batches])
          for k in batches[0]}


def _one_line(info):
  message = str(info.value)
  assert "\n" not in message, message
  return message


# ---- round trips ------------------------------------------------------------


@pytest.mark.parametrize("shape,encoding,dtype", [
    ((5, 4, 1), "png", np.uint8),
    ((5, 4, 3), "png", np.uint8),
    ((5, 4, 1), "raw", np.uint8),
    ((5, 4, 3), "raw", np.float32),
])
def test_images_round_trip_exactly(tmp_path, shape, encoding, dtype):
  train_x, test_x = _images(shape, dtype, n=7), _images(shape, dtype, n=3,
                                                        seed=1)
  train_y, test_y = np.arange(7) % 3, np.arange(3) % 3
  path = _write(tmp_path, {"train": (train_x, train_y),
                           "test": (test_x, test_y)}, encoding, num_classes=3)

  manifest = tfrecord.read_manifest(str(tmp_path))

  assert manifest.path == path
  assert manifest.data_shape == shape
  assert manifest.dtype == np.dtype(dtype).name
  assert (manifest.count("train"), manifest.count("test")) == (7, 3)
  assert not manifest.is_vector
  for split, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
    read = _read_all(manifest, split)
    assert read["image"].dtype == dtype
    np.testing.assert_array_equal(read["image"], x)
    assert read["label"].dtype == np.int32
    np.testing.assert_array_equal(read["label"], y)


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_round_trips_approximately(tmp_path, channels):
  x = _smooth_images((16, 16, channels))
  _write(tmp_path, {"train": (x, None)}, "jpeg", num_shards=1)

  read = _read_all(tfrecord.read_manifest(str(tmp_path)), "train")

  assert set(read) == {"image"}
  assert read["image"].shape == x.shape and read["image"].dtype == np.uint8
  assert np.abs(read["image"].astype(float) - x).mean() < 3


def test_vectors_round_trip_with_columns(tmp_path):
  x = np.array([[0.5, 1, 2], [-1.25, 0, 0], [3, 1, 1]], np.float32)
  columns = columns_lib.fit(x, ("a", "b", "c"), {2: ("u", "v", "w")})
  _write(tmp_path, {"train": (x, None)}, "float_list", num_shards=2,
         columns=columns, column_names=("a", "b", "c"))

  manifest = tfrecord.read_manifest(
      os.path.join(tmp_path, tfrecord.MANIFEST_NAME))
  read = _read_all(manifest, "train")

  assert manifest.is_vector and manifest.encoding == "float_list"
  assert manifest.columns == columns
  assert manifest.column_names == ("a", "b", "c")
  assert read["image"].dtype == np.float32
  np.testing.assert_array_equal(read["image"], x)


def test_parse_fn_output_spec(tmp_path):
  x = _images((6, 5, 3), n=4)
  _write(tmp_path, {"train": (x, np.arange(4))}, "png", num_classes=4,
         class_names=("a", "b", "c", "d"))
  manifest = tfrecord.read_manifest(str(tmp_path))

  dataset = tf.data.TFRecordDataset(manifest.files("train")).map(
      tfrecord.parse_fn(manifest))

  assert manifest.class_names == ("a", "b", "c", "d")
  assert dataset.element_spec == {
      "image": tf.TensorSpec([6, 5, 3], tf.uint8),
      "label": tf.TensorSpec([], tf.int32)}


def test_parse_fn_fails_on_a_record_of_another_shape(tmp_path):
  good = tfrecord.example_bytes(np.zeros((4, 4, 1), np.uint8), None, "raw")
  # Same number of bytes, another shape: a silent reshape would accept it.
  bad = tfrecord.example_bytes(np.zeros((2, 8, 1), np.uint8), None, "raw")
  _write(tmp_path, {"train": (np.zeros((1, 4, 4, 1), np.uint8), None)}, "raw",
         num_shards=1)
  manifest = tfrecord.read_manifest(str(tmp_path))

  dataset = tf.data.Dataset.from_tensor_slices([good, bad]).map(
      tfrecord.parse_fn(manifest))

  with pytest.raises(tf.errors.InvalidArgumentError, match="shape"):
    list(dataset)


def test_example_bytes_refuses_what_the_encoding_cannot_hold():
  with pytest.raises(ConfigError, match="raw"):
    tfrecord.example_bytes(np.zeros((2, 2, 1), np.float32), None, "png")
  with pytest.raises(ConfigError, match="float_list"):
    tfrecord.example_bytes(np.zeros((2, 2, 1), np.uint8), None, "float_list")


def test_example_bytes_is_a_tf_train_example():
  x = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
  vector = np.array([0.5, -2.0, 3e9], np.float32)

  image_example = tf.train.Example.FromString(
      tfrecord.example_bytes(x, 300, "raw"))
  vector_example = tf.train.Example.FromString(
      tfrecord.example_bytes(vector, None, "float_list"))

  assert image_example == tf.train.Example(features=tf.train.Features(
      feature={
          "image": tf.train.Feature(
              bytes_list=tf.train.BytesList(value=[x.tobytes()])),
          "shape": tf.train.Feature(
              int64_list=tf.train.Int64List(value=[2, 2, 3])),
          "label": tf.train.Feature(
              int64_list=tf.train.Int64List(value=[300]))}))
  assert vector_example == tf.train.Example(features=tf.train.Features(
      feature={
          "x": tf.train.Feature(float_list=tf.train.FloatList(value=vector)),
          "shape": tf.train.Feature(
              int64_list=tf.train.Int64List(value=[3]))}))


def test_shard_name():
  assert tfrecord.shard_name("train", 3, 12) == "train-00003-of-00012.tfrecord"


# ---- read_manifest errors ---------------------------------------------------


@pytest.fixture
def written(tmp_path):
  """A valid two-shard png dataset; returns its manifest path."""
  x = _images((4, 4, 1), n=8)
  return _write(tmp_path / "data", {"train": (x, None),
                                    "test": (x[:2], None)}, "png")


def test_missing_folder_is_a_config_error(tmp_path):
  with pytest.raises(ConfigError) as info:
    tfrecord.read_manifest(str(tmp_path / "nowhere"))
  assert "does not exist" in _one_line(info)
  with pytest.raises(ConfigError):
    tfrecord.read_manifest(None)


def test_missing_manifest_says_how_to_write_one(tmp_path):
  with pytest.raises(DataError) as info:
    tfrecord.read_manifest(str(tmp_path))
  message = _one_line(info)
  assert "manifest.json" in message
  assert "python -m tfvae.data.to_tfrecord --dataset=" in message
  assert f"--output_dir={tmp_path}" in message


def test_bad_json_names_the_file_and_position(written):
  with open(written, "w") as f:
    f.write('{"format": "tfvae-tfrecord/1",\n  "source": }')
  with pytest.raises(DataError) as info:
    tfrecord.read_manifest(written)
  message = _one_line(info)
  assert written in message and "line 2 column" in message


@pytest.mark.parametrize("edit,expected", [
    (lambda m: m.update(format="other/2"), "format 'other/2'"),
    (lambda m: m.update(extra=1), "unknown field(s) extra"),
    (lambda m: m.pop("dtype"), "lacks field(s) dtype"),
    (lambda m: m["splits"].pop("train"), "no train split"),
    (lambda m: m["splits"]["train"].update(count=99),
     "count 99 but its shards hold 8"),
    (lambda m: m.update(encoding="jpeg", dtype="float32"), "raw"),
    (lambda m: m.update(num_classes=2, class_names=["a"]), "class_names"),
])
def test_bad_manifest_fields(written, edit, expected):
  _edit_manifest(written, edit)
  with pytest.raises(DataError) as info:
    tfrecord.read_manifest(written)
  assert expected in _one_line(info)


def test_missing_shard_is_named(written):
  shard = os.path.join(os.path.dirname(written),
                       tfrecord.shard_name("train", 1, 2))
  os.remove(shard)
  with pytest.raises(DataError) as info:
    tfrecord.read_manifest(written)
  message = _one_line(info)
  assert shard in message and "missing" in message


def test_truncated_shard_is_named_with_its_sizes(written):
  shard = os.path.join(os.path.dirname(written),
                       tfrecord.shard_name("train", 0, 2))
  size = os.path.getsize(shard)
  with open(shard, "r+b") as f:
    f.truncate(size - 10)
  with pytest.raises(DataError) as info:
    tfrecord.read_manifest(written)
  message = _one_line(info)
  assert shard in message
  assert (f"is truncated or was rewritten: {size - 10} bytes, the manifest "
          f"says {size}") in message
  assert "python -m tfvae.data.to_tfrecord" in message


def test_shards_of_another_shape_are_caught_by_their_first_record(tmp_path):
  folder = tmp_path / "mixed"
  path = _write(folder, {"train": (_images((4, 4, 1), n=4), None)}, "png")
  other = _write(tmp_path / "other",
                 {"train": (_images((5, 5, 1), n=4), None)}, "png")
  intruder = os.path.join(os.path.dirname(other),
                          tfrecord.shard_name("train", 1, 2))
  target = os.path.join(folder, tfrecord.shard_name("train", 1, 2))
  os.replace(intruder, target)
  _edit_manifest(path, lambda m: m["splits"]["train"]["shards"][1].update(
      bytes=os.path.getsize(target)))

  with pytest.raises(DataError) as info:
    tfrecord.read_manifest(path)

  assert (f"{target} record 0 has shape [5, 5, 1] but the manifest says "
          "[4, 4, 1]") in _one_line(info)


# ---- diagnose ---------------------------------------------------------------


def _raw_dataset(folder, n=10):
  """One raw shard of n equal-sized records; returns (manifest, record size)."""
  x = _images((4, 4, 3), n=n)
  path = _write(folder, {"train": (x, np.arange(n) % 2)}, "raw",
                num_classes=2, num_shards=1)
  record = tfrecord.example_bytes(x[0], 0, "raw")
  return path, len(record) + 16


def test_diagnose_finds_nothing_wrong_in_good_shards(written):
  manifest = tfrecord.read_manifest(written)
  assert tfrecord.diagnose(manifest, "train") is None
  assert tfrecord.diagnose(manifest, "test") is None


def test_diagnose_names_the_record_with_a_flipped_byte(tmp_path):
  path, record_size = _raw_dataset(tmp_path)
  manifest = tfrecord.read_manifest(path)
  shard = manifest.files("train")[0]
  offset = 6 * record_size + record_size // 2  # Inside record 6's data.
  with open(shard, "r+b") as f:
    f.seek(offset)
    byte = f.read(1)
    f.seek(offset)
    f.write(bytes([byte[0] ^ 0xFF]))

  # Sizes still match: read_manifest is content with the file.
  problem = tfrecord.diagnose(tfrecord.read_manifest(path), "train")

  assert problem.startswith(f"{shard}: record 6 is corrupt or truncated (")
  assert "corrupted record" in problem and "\n" not in problem
  assert "python -m tfvae.data.to_tfrecord" in problem


def test_diagnose_names_a_truncated_last_record(tmp_path):
  path, record_size = _raw_dataset(tmp_path)
  shard = tfrecord.read_manifest(path).files("train")[0]
  with open(shard, "r+b") as f:
    f.truncate(10 * record_size - 5)
  _edit_manifest(path, lambda m: m["splits"]["train"]["shards"][0].update(
      bytes=os.path.getsize(shard)))

  problem = tfrecord.diagnose(tfrecord.read_manifest(path), "train")

  assert problem.startswith(f"{shard}: record 9 is corrupt or truncated")


def test_diagnose_finds_a_count_that_differs_from_the_manifest(tmp_path):
  path, _ = _raw_dataset(tmp_path)

  def claim_more(value):
    value["splits"]["train"]["count"] = 11
    value["splits"]["train"]["shards"][0]["count"] = 11

  _edit_manifest(path, claim_more)
  manifest = tfrecord.read_manifest(path)
  problem = tfrecord.diagnose(manifest, "train")

  assert problem.startswith(
      f"{manifest.files('train')[0]} holds 10 records, the manifest says 11;")


def test_diagnose_names_a_record_of_another_shape(tmp_path):
  path, _ = _raw_dataset(tmp_path, n=4)
  shard = tfrecord.read_manifest(path).files("train")[0]
  x = _images((4, 4, 3), n=4)
  with tf.io.TFRecordWriter(shard) as writer:
    for i in range(4):
      image = x[i] if i != 2 else np.zeros((2, 8, 3), np.uint8)
      writer.write(tfrecord.example_bytes(image, 0, "raw"))
  _edit_manifest(path, lambda m: m["splits"]["train"]["shards"][0].update(
      bytes=os.path.getsize(shard)))

  problem = tfrecord.diagnose(tfrecord.read_manifest(path), "train")

  assert problem.startswith(
      f"{shard}: record 2 has shape [2, 8, 3] but the manifest says "
      "[4, 4, 3]")


def test_diagnose_names_an_undecodable_image(tmp_path):
  path = _write(tmp_path, {"train": (_images((4, 4, 1), n=3), None)}, "png",
                num_shards=1)
  shard = tfrecord.read_manifest(path).files("train")[0]
  not_png = tf.train.Example(features=tf.train.Features(feature={
      "image": tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[b"not an image"])),
      "shape": tf.train.Feature(
          int64_list=tf.train.Int64List(value=[4, 4, 1]))}))
  with tf.io.TFRecordWriter(shard) as writer:
    writer.write(tfrecord.example_bytes(np.zeros((4, 4, 1), np.uint8), None,
                                        "png"))
    writer.write(not_png.SerializeToString())

  _edit_manifest(path, lambda m: m["splits"]["train"]["shards"][0].update(
      bytes=os.path.getsize(shard)))
  problem = tfrecord.diagnose(tfrecord.read_manifest(path), "train")

  assert problem.startswith(f"{shard}: record 1 cannot be decoded (")
