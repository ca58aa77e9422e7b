"""Tests of `tfvae.data.to_tfrecord`, the writer of the `tfrecord` format.

The command line runs as a subprocess a few times (each pays TensorFlow's
import); the rest calls `convert` in this process with one worker. Every test
writes its own small data under a temporary folder.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from tests.conftest import REPO_ROOT
from tests.integration import shapes
from tfvae.config import DataConfig
from tfvae.data import columns as columns_lib
from tfvae.data import image_folder
from tfvae.data import sources
from tfvae.data import tfrecord
from tfvae.data import to_tfrecord
from tfvae.errors import ConfigError, DataError

_IMAGE_SIZE = 8
# Log lines (TensorFlow's C++ start-up, absl), not the program's messages.
_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:|^WARNING: All log messages "
                       r"before absl::InitializeLog\(\)")


def _run(*args):
  """Runs the command line; returns the CompletedProcess."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO_ROOT)
  return subprocess.run(
      [sys.executable, "-m", "tfvae.data.to_tfrecord", *map(str, args)],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def _read_split(manifest, split):
  """`(images, labels or None)` of a split, read with `parse_fn`."""
  records = list(tf.data.TFRecordDataset(manifest.files(split)).map(
      tfrecord.parse_fn(manifest)).batch(10_000))
  assert len(records) == 1
  labels = records[0].get("label")
  return (records[0]["image"].numpy(),
          None if labels is None else labels.numpy())


def _write_npz_folder(folder):
  os.makedirs(folder)
  shapes.write_npz(os.path.join(folder, "train.npz"), 30, seed=1)
  shapes.write_npz(os.path.join(folder, "test.npz"), 10, seed=2)
  return str(folder)


def _write_image_tree(root, num_per_class=9):
  """Class folders cat/ and dog/ of PNGs (RGB, grey, RGBA) and a JPEG."""
  rng = np.random.default_rng(0)
  for name in ("cat", "dog"):
    os.makedirs(os.path.join(root, name))
    for i in range(num_per_class):
      size = (int(rng.integers(8, 20)), int(rng.integers(8, 20)))
      pixels = rng.integers(0, 256, size + (4,)).astype(np.uint8)
      mode = ("RGB", "L", "RGBA")[i % 3]
      image = Image.fromarray(pixels, "RGBA").convert(mode)
      ext = ".jpg" if i == 4 else ".png"
      image.convert("RGB" if ext == ".jpg" else mode).save(
          os.path.join(root, name, f"{i:02d}{ext}"))
  return str(root)


def _manifest_json(output_dir):
  with open(os.path.join(output_dir, tfrecord.MANIFEST_NAME)) as f:
    return json.load(f)


def _assert_records_are(manifest, splits):
  """The records are the source's: train in `write_order`, test as is."""
  order = to_tfrecord.write_order(len(splits.train_x))
  for split, x, y in (("train", splits.train_x[order], splits.train_y[order]),
                      ("test", splits.test_x, splits.test_y)):
    images, labels = _read_split(manifest, split)
    np.testing.assert_array_equal(images, x)
    np.testing.assert_array_equal(labels, y)


# ---- the command line -------------------------------------------------------


@pytest.fixture(scope="module")
def npz_run(tmp_path_factory):
  base = tmp_path_factory.mktemp("npz_run")
  data_dir = _write_npz_folder(base / "npz")
  output_dir = str(base / "out")
  done = _run("--dataset=npz", f"--data_dir={data_dir}",
              f"--output_dir={output_dir}", "--num_shards=3", "--workers=2")
  return data_dir, output_dir, done


@pytest.fixture(scope="module")
def image_folder_run(tmp_path_factory):
  base = tmp_path_factory.mktemp("image_folder_run")
  data_dir = _write_image_tree(base / "images")
  output_dir = str(base / "out")
  done = _run("--dataset=image_folder", f"--data_dir={data_dir}",
              f"--image_size={_IMAGE_SIZE}", "--test_fraction=0.25",
              f"--output_dir={output_dir}", "--shard_size_mb=0.001",
              "--workers=2")
  return data_dir, output_dir, done


def test_cli_writes_npz_as_lossless_png_shards(npz_run):
  data_dir, output_dir, done = npz_run
  assert done.returncode == 0, done.stderr
  summary = done.stdout.strip()
  assert "\n" not in summary
  assert summary.startswith(f"Wrote {output_dir}: train 30 examples in 3 "
                            "shards, test 10 examples in 3 shards; ")
  assert " bytes " in summary and " s." in summary

  value = _manifest_json(output_dir)
  assert value["format"] == tfrecord.FORMAT
  assert value["data_shape"] == [28, 28, 1]
  assert (value["dtype"], value["encoding"]) == ("uint8", "png")
  assert value["num_classes"] == 5 and value["columns"] is None
  assert [s["count"] for s in value["splits"]["train"]["shards"]] == [10] * 3
  assert not [f for f in os.listdir(output_dir) if f.endswith(".tmp")]

  manifest = tfrecord.read_manifest(output_dir)
  splits = sources.load_splits(DataConfig(dataset="npz", data_dir=data_dir))
  _assert_records_are(manifest, splits)


def test_cli_streams_an_image_folder_as_the_source_reads_it(
    image_folder_run):
  data_dir, output_dir, done = image_folder_run
  assert done.returncode == 0, done.stderr
  manifest = tfrecord.read_manifest(output_dir)
  assert manifest.source == data_dir
  assert manifest.data_shape == (_IMAGE_SIZE, _IMAGE_SIZE, 3)
  assert (manifest.dtype, manifest.encoding) == ("uint8", "png")
  assert manifest.num_classes == 2
  assert manifest.class_names == ("cat", "dog")
  assert (manifest.count("train"), manifest.count("test")) == (14, 4)
  assert len(manifest.shards("train")) > 1  # By --shard_size_mb.

  # The same held-out test split, in the same order, as the source gives.
  splits = sources.load_splits(DataConfig(
      dataset="image_folder", data_dir=data_dir, image_size=_IMAGE_SIZE,
      test_fraction=0.25))
  _assert_records_are(manifest, splits)
  # ... and each record is `read_image` of its file.
  files, _ = image_folder.list_images(data_dir)
  first = image_folder.read_image(files[0], _IMAGE_SIZE)
  assert any(np.array_equal(first, image)
             for split in ("train", "test")
             for image in _read_split(manifest, split)[0])


def test_cli_errors_are_one_line(npz_run, tmp_path):
  data_dir, output_dir, done = npz_run
  assert done.returncode == 0, done.stderr
  before = _manifest_json(output_dir)

  again = _run("--dataset=npz", f"--data_dir={data_dir}",
               f"--output_dir={output_dir}")
  unknown = _run("--dataset=nope", f"--output_dir={tmp_path / 'out'}")

  for result, expected in ((again, "--overwrite"),
                           (unknown, "--dataset='nope' is not one of")):
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines()
             if not _LOG_LINE.match(line)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tfvae.data.to_tfrecord: error: ")
    assert expected in lines[0]
  assert _manifest_json(output_dir) == before
  assert not os.path.exists(tmp_path / "out")


# ---- convert ----------------------------------------------------------------


def test_workers_encode_without_importing_tensorflow():
  # Each spawned worker imports this module; TensorFlow would cost it seconds
  # and hundreds of MB.
  done = subprocess.run(
      [sys.executable, "-c", "import sys, tfvae.data.to_tfrecord; "
       "print(sorted(m for m in sys.modules if m.startswith('tensorflow')))"],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True)
  assert done.stdout.strip() == "[]"


def test_csv_vectors_are_float_lists_with_fitted_columns(tmp_path):
  path = tmp_path / "table.csv"
  colours = ("red", "green", "blue")
  lines = ["value,colour,flag,kind"] + [
      f"{i * 0.5 - 3:.2f},{colours[i % 3]},{i % 2},{'cat' if i % 3 else 'dog'}"
      for i in range(20)]
  path.write_text("\n".join(lines) + "\n")
  config = DataConfig(dataset="csv", data_dir=str(path),
                      categorical_columns=("colour",), label_column="kind")

  result = to_tfrecord.convert(config, str(tmp_path / "out"), num_shards=2,
                               workers=1)

  splits = sources.load_splits(config)
  manifest = tfrecord.read_manifest(result.output_dir)
  assert result.counts == {"train": 16, "test": 4}
  assert result.num_shards == {"train": 2, "test": 2}
  assert manifest.encoding == "float_list" and manifest.data_shape == (3,)
  assert manifest.column_names == ("value", "colour", "flag")
  assert manifest.columns == columns_lib.fit(
      splits.train_x, splits.column_names, splits.vocabularies)
  assert [c.kind for c in manifest.columns] == ["continuous", "categorical",
                                                "binary"]
  assert manifest.class_names == ("cat", "dog")
  images, labels = _read_split(manifest, "test")
  np.testing.assert_array_equal(images, splits.test_x)
  np.testing.assert_array_equal(labels, splits.test_y)


def test_float32_images_default_to_raw_and_refuse_png(tmp_path):
  x, _ = shapes.make_shapes(6, noise_std=0.1)
  np.savez(tmp_path / "noisy.npz", x=x)
  config = DataConfig(dataset="npz", data_dir=str(tmp_path / "noisy.npz"),
                      test_fraction=0.5)

  with pytest.raises(ConfigError, match="--encoding=raw"):
    to_tfrecord.convert(config, str(tmp_path / "png"), encoding="png")
  result = to_tfrecord.convert(config, str(tmp_path / "raw"), workers=1)

  manifest = tfrecord.read_manifest(result.output_dir)
  assert (manifest.dtype, manifest.encoding) == ("float32", "raw")
  assert manifest.num_classes is None
  images, labels = _read_split(manifest, "train")
  assert labels is None
  train_x = sources.load_splits(config).train_x
  np.testing.assert_array_equal(
      images, train_x[to_tfrecord.write_order(len(train_x))])


def test_jpeg_is_close_and_vectors_refuse_an_encoding(tmp_path):
  data_dir = _write_npz_folder(tmp_path / "npz")
  config = DataConfig(dataset="npz", data_dir=data_dir)
  result = to_tfrecord.convert(config, str(tmp_path / "jpeg"),
                               encoding="jpeg", workers=1)
  images, _ = _read_split(tfrecord.read_manifest(result.output_dir), "test")
  assert np.abs(images.astype(float)
                - sources.load_splits(config).test_x).mean() < 8

  np.savez(tmp_path / "vectors.npz", x=np.ones((4, 3), np.float32))
  with pytest.raises(ConfigError, match="drop --encoding"):
    to_tfrecord.convert(
        DataConfig(dataset="npz", data_dir=str(tmp_path / "vectors.npz")),
        str(tmp_path / "vectors"), encoding="raw")


def test_overwrite_replaces_the_old_shards(tmp_path):
  data_dir = _write_npz_folder(tmp_path / "npz")
  config = DataConfig(dataset="npz", data_dir=data_dir)
  output_dir = str(tmp_path / "out")
  to_tfrecord.convert(config, output_dir, num_shards=3, workers=1)

  with pytest.raises(ConfigError, match="--overwrite"):
    to_tfrecord.convert(config, output_dir, num_shards=2)
  result = to_tfrecord.convert(config, output_dir, encoding="raw",
                               workers=1, overwrite=True)

  assert sorted(os.listdir(output_dir)) == [
      "manifest.json", "test-00000-of-00001.tfrecord",
      "train-00000-of-00001.tfrecord"]
  assert result.num_shards == {"train": 1, "test": 1}
  assert tfrecord.read_manifest(output_dir).encoding == "raw"


def test_an_unreadable_image_leaves_no_manifest(tmp_path):
  data_dir = _write_image_tree(tmp_path / "images", num_per_class=3)
  bad = os.path.join(data_dir, "dog", "02.png")
  with open(bad, "wb") as f:
    f.write(b"not a png")
  output_dir = str(tmp_path / "out")

  with pytest.raises(DataError, match=f"{bad} is not a readable image"):
    to_tfrecord.convert(
        DataConfig(dataset="image_folder", data_dir=data_dir,
                   image_size=_IMAGE_SIZE),
        output_dir, num_shards=2, workers=1)

  assert not os.path.exists(os.path.join(output_dir, "manifest.json"))
  assert not [f for f in os.listdir(output_dir) if f.endswith(".tmp")]
