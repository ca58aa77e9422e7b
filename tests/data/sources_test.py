"""Tests of `tfvae.data.sources` and the readers behind it.

Every test writes its own small data under `tmp_path`; HOME, $TFVAE_DATA_DIR,
the system dataset folders and the keras download are replaced, so the tests
neither read this machine's datasets nor touch the network.
"""

import gzip
import io
import os
import pickle
import socket
import struct
import sys
import tarfile
import types

import numpy as np
from PIL import Image
import pytest

from tfvae.config import DataConfig
from tfvae.data import cifar
from tfvae.data import image_splits
from tfvae.data import sources
from tfvae.errors import ConfigError, DataError

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
REAL_KERAS_LOAD_DATA = sources.keras_load_data


@pytest.fixture(autouse=True)
def places(tmp_path_factory, monkeypatch):
  """Isolates the search folders and the download; returns their paths."""
  base = tmp_path_factory.mktemp("places")
  home = base / "home"
  system = base / "system"
  home.mkdir()
  system.mkdir()
  monkeypatch.setenv("HOME", str(home))
  monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
  monkeypatch.setattr(sources, "SYSTEM_DATA_ROOTS", (str(system),))
  downloads = []

  def fail_download(dataset):
    downloads.append(dataset)
    # keras raises a bare Exception when a download fails.
    raise Exception("offline in tests")  # pylint: disable=broad-except

  monkeypatch.setattr(sources, "keras_load_data", fail_download)
  return types.SimpleNamespace(
      data_dir=str(base / "data_dir"), env=str(base / "env"),
      keras=str(home / ".keras" / "datasets"), system=str(system),
      downloads=downloads)


def raises_one_line(error, *parts, call):
  """Checks that `call()` raises `error` whose one-line message has parts."""
  with pytest.raises(error) as info:
    call()
  message = str(info.value)
  assert "\n" not in message, message
  for part in parts:
    assert str(part) in message, f"{part!r} not in {message!r}"
  return message


# ----------------------------------------------------------------- writers


def idx_bytes(array):
  header = bytes([0, 0, 0x08, array.ndim])
  return header + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_file(path, data):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "wb") as f:
    f.write(data)
  return path


def mnist_arrays(seed):
  """Returns train/test 5x4 images and labels, 6 train and 4 test."""
  rng = np.random.default_rng(seed)
  return (rng.integers(0, 256, (6, 5, 4), dtype=np.uint8),
          rng.integers(0, 10, 6, dtype=np.uint8),
          rng.integers(0, 256, (4, 5, 4), dtype=np.uint8),
          rng.integers(0, 10, 4, dtype=np.uint8))


def write_mnist(folder, seed=0, compress=True):
  """Writes `mnist_arrays(seed)` as the four IDX files; returns the arrays."""
  arrays = mnist_arrays(seed)
  for name, array in zip(IDX_NAMES, arrays):
    data = idx_bytes(array)
    if compress:
      name, data = name + ".gz", gzip.compress(data)
    write_file(os.path.join(folder, name), data)
  return arrays


def cifar_batches(seed=0, per_batch=2):
  """Returns {batch name: (data [n, 3072] uint8, labels list)}."""
  rng = np.random.default_rng(seed)
  return {name: (rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 [int(v) for v in rng.integers(0, 10, per_batch)])
          for name in cifar.BATCHES}


def pickled(data, labels):
  return pickle.dumps({b"batch_label": b"x", b"data": data,
                       b"labels": labels}, protocol=2)


def write_cifar_folder(folder, batches):
  for name, (data, labels) in batches.items():
    write_file(os.path.join(folder, name), pickled(data, labels))


def write_cifar_tarball(path, batches, skip=()):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tarfile.open(path, "w:gz") as tar:
    for name, (data, labels) in batches.items():
      if name in skip:
        continue
      content = pickled(data, labels)
      info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
      info.size = len(content)
      tar.addfile(info, io.BytesIO(content))


def write_image(path, pixels, mode=None):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(np.asarray(pixels, np.uint8), mode).save(path)
  return path


def solid(color, size=8):
  return np.broadcast_to(np.array(color, np.uint8), (size, size, 3))


def load(dataset, **kwargs):
  kwargs.setdefault("download", False)
  return sources.load_splits(DataConfig(dataset=dataset, **kwargs))


# ------------------------------------------------------------ the registry


def test_registered_datasets():
  assert set(sources.DATASETS) == {
      "mnist", "fashion_mnist", "cifar10", "shapes", "npz", "image_folder",
      "csv", "tfrecord"}


def test_unknown_dataset_lists_registered_names():
  raises_one_line(ConfigError, "--dataset='svhn'", "mnist", "image_folder",
                  call=lambda: load("svhn"))


# ------------------------------------------------------ MNIST-like sources


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_idx_files_round_trip(places, compress):
  train_x, train_y, test_x, test_y = write_mnist(places.data_dir,
                                                 compress=compress)
  splits = load("mnist", data_dir=places.data_dir)
  assert splits.train_x.shape == (6, 5, 4, 1)
  assert splits.train_x.dtype == np.uint8
  np.testing.assert_array_equal(splits.train_x[..., 0], train_x)
  np.testing.assert_array_equal(splits.test_x[..., 0], test_x)
  assert splits.train_y.dtype == np.int32
  np.testing.assert_array_equal(splits.train_y, train_y)
  np.testing.assert_array_equal(splits.test_y, test_y)
  assert splits.num_classes == 10
  assert splits.source == places.data_dir


def test_keras_mnist_npz_in_keras_cache(places):
  rng = np.random.default_rng(3)
  arrays = {"x_train": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
            "y_train": np.array([1, 2, 3], np.uint8),
            "x_test": rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
            "y_test": np.array([9, 0], np.uint8)}
  os.makedirs(places.keras)
  path = os.path.join(places.keras, "mnist.npz")
  np.savez(path, **arrays)
  splits = load("mnist")
  assert splits.source == path
  assert splits.test_x.shape == (2, 28, 28, 1)
  np.testing.assert_array_equal(splits.train_x[..., 0], arrays["x_train"])
  np.testing.assert_array_equal(splits.test_y, [9, 0])


def test_keras_mnist_npz_lacking_arrays(places):
  os.makedirs(places.keras)
  path = os.path.join(places.keras, "mnist.npz")
  np.savez(path, x_train=np.zeros((2, 28, 28), np.uint8))
  raises_one_line(DataError, path, "y_train", call=lambda: load("mnist"))


def test_fashion_mnist_in_keras_cache_subfolder(places):
  folder = os.path.join(places.keras, "fashion-mnist")
  train_x, *_ = write_mnist(folder)
  splits = load("fashion_mnist")
  assert splits.source == folder
  np.testing.assert_array_equal(splits.train_x[..., 0], train_x)


def test_fashion_mnist_in_system_folder(places):
  folder = os.path.join(places.system, "fashion-mnist")
  write_mnist(folder)
  assert load("fashion_mnist").source == folder


@pytest.mark.parametrize("first", range(4))
def test_search_order(places, monkeypatch, first):
  """data_dir beats $TFVAE_DATA_DIR beats ~/.keras/datasets beats system."""
  folders = [places.data_dir, places.env,
             os.path.join(places.keras, "fashion-mnist"),
             os.path.join(places.system, "fashion-mnist")]
  for seed, folder in enumerate(folders):
    os.makedirs(folder, exist_ok=True)
    if seed >= first:
      write_mnist(folder, seed=seed)
  monkeypatch.setenv(sources.DATA_DIR_ENV, places.env)
  splits = load("fashion_mnist", data_dir=places.data_dir)
  assert splits.source == folders[first]
  np.testing.assert_array_equal(splits.train_x[..., 0],
                                mnist_arrays(first)[0])


def test_dataset_subfolder_beats_files_in_base_folder(places):
  mnist_x = write_mnist(places.data_dir, seed=1)[0]
  fashion_x = write_mnist(os.path.join(places.data_dir, "fashion_mnist"),
                          seed=2)[0]
  fashion = load("fashion_mnist", data_dir=places.data_dir)
  np.testing.assert_array_equal(fashion.train_x[..., 0], fashion_x)
  mnist = load("mnist", data_dir=places.data_dir)
  np.testing.assert_array_equal(mnist.train_x[..., 0], mnist_x)


def test_incomplete_file_set_is_skipped_and_reported(places):
  write_mnist(places.data_dir)
  os.remove(os.path.join(places.data_dir, "t10k-labels-idx1-ubyte.gz"))
  raises_one_line(
      DataError, places.data_dir, "lacks t10k-labels-idx1-ubyte",
      call=lambda: load("mnist", data_dir=places.data_dir))
  write_mnist(os.path.join(places.keras, "mnist"))
  assert load("mnist", data_dir=places.data_dir).source == os.path.join(
      places.keras, "mnist")


def test_not_found_with_download_disabled(places, monkeypatch):
  os.makedirs(places.data_dir)
  monkeypatch.setenv(sources.DATA_DIR_ENV, places.env)
  message = raises_one_line(
      DataError, "No fashion_mnist data found", places.data_dir, places.env,
      places.keras, os.path.join(places.system, "fashion-mnist"),
      "--nodownload", "--data_dir", "apt-get install dataset-fashion-mnist",
      call=lambda: load("fashion_mnist", data_dir=places.data_dir))
  assert "download failed" not in message
  assert not places.downloads


def test_not_found_and_download_fails(places):
  raises_one_line(
      DataError, "No cifar10 data found", places.keras,
      "download failed: Exception: offline in tests", "cifar-10-python.tar.gz",
      call=lambda: load("cifar10", download=True))
  assert places.downloads == ["cifar10"]


def test_download_when_nothing_is_local(places, monkeypatch):
  rng = np.random.default_rng(0)
  train = (rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8),
           np.array([[0], [1], [2], [9]], np.uint8))
  test = (rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8),
          np.array([[3], [4]], np.uint8))
  monkeypatch.setattr(sources, "keras_load_data", lambda name: (train, test))
  splits = load("cifar10", download=True)
  assert splits.source == "keras.datasets.cifar10"
  np.testing.assert_array_equal(splits.train_x, train[0])
  np.testing.assert_array_equal(splits.train_y, [0, 1, 2, 9])
  assert splits.test_y.dtype == np.int32 and splits.test_y.shape == (2,)


def test_keras_load_data_times_out_fast_and_restores_timeout(monkeypatch):
  seen = []

  def load_data():
    seen.append(socket.getdefaulttimeout())
    return "arrays"

  fake_keras = types.SimpleNamespace(datasets=types.SimpleNamespace(
      mnist=types.SimpleNamespace(load_data=load_data)))
  monkeypatch.setitem(sys.modules, "keras", fake_keras)
  before = socket.getdefaulttimeout()
  assert REAL_KERAS_LOAD_DATA("mnist") == "arrays"
  assert seen == [sources.DOWNLOAD_TIMEOUT_S]
  assert socket.getdefaulttimeout() == before


def test_data_dir_that_is_not_a_folder(places):
  raises_one_line(ConfigError, "--data_dir=" + places.data_dir,
                  call=lambda: load("mnist", data_dir=places.data_dir))


def _gzip_garbage(raw):
  del raw
  return b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"not deflate data at all"


def _truncated_gzip(raw):
  data = gzip.compress(raw)
  return data[:len(data) // 2]


def _short_payload(raw):
  return gzip.compress(raw[:-7])


def _long_payload(raw):
  return gzip.compress(raw + b"\x00")


def _bad_magic(raw):
  return gzip.compress(b"\x01\x02" + raw[2:])


def _one_dimensional(raw):
  del raw
  return gzip.compress(idx_bytes(np.zeros(6, np.uint8)))


@pytest.mark.parametrize("corrupt, expected", [
    (lambda raw: b"", "is empty"),
    (_truncated_gzip, "is truncated"),
    (_gzip_garbage, "corrupt gzip"),
    (lambda raw: b"plain text", "is not a gzip file"),
    (_bad_magic, "is not an IDX file"),
    (_short_payload, "is truncated: header says 6 images of 5x4 (120 bytes) "
                     "but it holds 113 bytes"),
    (_long_payload, "is corrupt: header says 6 images of 5x4"),
    (_one_dimensional, "holds a 1-D array where a 3-D one was expected"),
])
def test_broken_idx_file(places, corrupt, expected):
  train_x, *_ = write_mnist(places.data_dir)
  path = os.path.join(places.data_dir, "train-images-idx3-ubyte.gz")
  write_file(path, corrupt(idx_bytes(train_x)))
  raises_one_line(DataError, path, expected,
                  call=lambda: load("mnist", data_dir=places.data_dir))


def test_idx_label_count_mismatch(places):
  write_mnist(places.data_dir)
  labels = os.path.join(places.data_dir, "t10k-labels-idx1-ubyte.gz")
  write_file(labels, gzip.compress(idx_bytes(np.zeros(3, np.uint8))))
  raises_one_line(DataError, labels, "holds 3 labels",
                  "t10k-images-idx3-ubyte.gz holds 4 images",
                  call=lambda: load("mnist", data_dir=places.data_dir))


def test_idx_label_out_of_range(places):
  write_mnist(places.data_dir)
  labels = os.path.join(places.data_dir, "train-labels-idx1-ubyte.gz")
  write_file(labels, gzip.compress(idx_bytes(np.full(6, 12, np.uint8))))
  raises_one_line(DataError, labels, "outside 0..9",
                  call=lambda: load("mnist", data_dir=places.data_dir))


# --------------------------------------------------------------- CIFAR-10


def assert_cifar_matches(splits, batches):
  data = np.concatenate([batches[n][0] for n in cifar.TRAIN_BATCHES])
  labels = sum((batches[n][1] for n in cifar.TRAIN_BATCHES), [])
  assert splits.train_x.shape == (10, 32, 32, 3)
  assert splits.train_x.dtype == np.uint8
  # Channel c of pixel (row r, column k) is data[c * 1024 + r * 32 + k].
  assert splits.train_x[3, 5, 7, 2] == data[3, 2 * 1024 + 5 * 32 + 7]
  np.testing.assert_array_equal(
      splits.train_x, data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
  np.testing.assert_array_equal(splits.train_y, labels)
  assert splits.test_x.shape == (2, 32, 32, 3)
  np.testing.assert_array_equal(splits.test_y, batches[cifar.TEST_BATCH][1])
  assert splits.num_classes == 10


def test_cifar_batches_folder(places):
  batches = cifar_batches()
  folder = os.path.join(places.data_dir, "cifar-10-batches-py")
  write_cifar_folder(folder, batches)
  splits = load("cifar10", data_dir=places.data_dir)
  assert splits.source == folder
  assert_cifar_matches(splits, batches)


def test_cifar_tarball(places):
  batches = cifar_batches(seed=1)
  path = os.path.join(places.data_dir, "cifar-10-python.tar.gz")
  write_cifar_tarball(path, batches)
  splits = load("cifar10", data_dir=places.data_dir)
  assert splits.source == path
  assert_cifar_matches(splits, batches)


def test_cifar_in_keras3_download_cache(places):
  folder = os.path.join(places.keras, "cifar-10-batches-py-target",
                        "cifar-10-batches-py")
  write_cifar_folder(folder, cifar_batches())
  assert load("cifar10").source == folder


def test_cifar_truncated_batch(places):
  batches = cifar_batches()
  write_cifar_folder(places.data_dir, batches)
  path = os.path.join(places.data_dir, "data_batch_3")
  write_file(path, pickled(*batches["data_batch_3"])[:100])
  raises_one_line(DataError, path, "truncated",
                  call=lambda: load("cifar10", data_dir=places.data_dir))


class _Exploit:

  def __init__(self, path):
    self.path = path

  def __reduce__(self):
    return os.mkdir, (self.path,)


def test_cifar_pickle_cannot_run_code(places, tmp_path):
  write_cifar_folder(places.data_dir, cifar_batches())
  marker = str(tmp_path / "pwned")
  path = write_file(os.path.join(places.data_dir, "test_batch"),
                    pickle.dumps({b"data": _Exploit(marker)}))
  raises_one_line(DataError, path, "refusing to load",
                  call=lambda: load("cifar10", data_dir=places.data_dir))
  assert not os.path.exists(marker)


def test_cifar_batch_of_wrong_shape(places):
  batches = cifar_batches()
  batches["data_batch_2"] = (np.zeros((2, 100), np.uint8), [0, 1])
  write_cifar_folder(places.data_dir, batches)
  raises_one_line(DataError, os.path.join(places.data_dir, "data_batch_2"),
                  "[n, 3072]",
                  call=lambda: load("cifar10", data_dir=places.data_dir))


def test_cifar_truncated_tarball(places):
  path = os.path.join(places.data_dir, "cifar-10-python.tar.gz")
  write_cifar_tarball(path, cifar_batches())
  with open(path, "rb") as f:
    data = f.read()
  write_file(path, data[:len(data) // 2])
  raises_one_line(DataError, path, "truncated or corrupt",
                  call=lambda: load("cifar10", data_dir=places.data_dir))


def test_cifar_tarball_lacking_a_batch(places):
  path = os.path.join(places.data_dir, "cifar-10-python.tar.gz")
  write_cifar_tarball(path, cifar_batches(), skip=("test_batch",))
  raises_one_line(DataError, path, "lacks test_batch",
                  call=lambda: load("cifar10", data_dir=places.data_dir))


# -------------------------------------------------------------------- npz


def test_npz_file_holds_out_a_deterministic_test_split(tmp_path):
  x = np.arange(10 * 3 * 2, dtype=np.uint8).reshape(10, 3, 2)
  y = np.arange(10) % 4
  path = str(tmp_path / "all.npz")
  np.savez(path, x=x, y=y)
  first = load("npz", data_dir=path, test_fraction=0.3)
  np.random.seed(123)  # The held-out split must not depend on global seeds.
  second = load("npz", data_dir=path, test_fraction=0.3)
  assert first.train_x.shape == (7, 3, 2, 1)
  assert first.test_x.shape == (3, 3, 2, 1)
  assert first.train_x.dtype == np.uint8
  np.testing.assert_array_equal(first.test_x, second.test_x)
  np.testing.assert_array_equal(first.train_y, second.train_y)
  # Example i starts with pixel value 6 * i.
  train_ids = first.train_x[:, 0, 0, 0] // 6
  test_ids = first.test_x[:, 0, 0, 0] // 6
  assert sorted(np.concatenate([train_ids, test_ids])) == list(range(10))
  np.testing.assert_array_equal(first.train_y, train_ids % 4)
  np.testing.assert_array_equal(first.test_y, test_ids % 4)
  assert first.num_classes == 4
  assert first.source == path


@pytest.mark.parametrize("n, fraction, num_test", [
    (2, 0.2, 1), (10, 0.0, 1), (10, 0.99, 9), (100, 0.25, 25)])
def test_held_out_split_sizes_stay_positive(tmp_path, n, fraction, num_test):
  path = str(tmp_path / "x.npz")
  np.savez(path, x=np.zeros((n, 2, 2), np.uint8))
  splits = load("npz", data_dir=path, test_fraction=fraction)
  assert (len(splits.train_x), len(splits.test_x)) == (n - num_test, num_test)


def test_npz_folder_with_train_and_test(tmp_path):
  rng = np.random.default_rng(0)
  train = rng.normal(size=(5, 4, 4, 3))
  test = rng.normal(size=(2, 4, 4, 3))
  np.savez(tmp_path / "train.npz", x=train)
  np.savez(tmp_path / "test.npz", x=test)
  splits = load("npz", data_dir=str(tmp_path))
  assert splits.train_x.dtype == np.float32
  np.testing.assert_array_equal(splits.train_x, train.astype(np.float32))
  np.testing.assert_array_equal(splits.test_x, test.astype(np.float32))
  assert splits.train_y is None and splits.test_y is None
  assert splits.num_classes is None


def test_npz_folder_without_test_file_holds_out(tmp_path):
  np.savez(tmp_path / "train.npz", x=np.zeros((5, 2, 2, 1), np.uint8))
  splits = load("npz", data_dir=str(tmp_path), test_fraction=0.4)
  assert (len(splits.train_x), len(splits.test_x)) == (3, 2)


GOOD_X = np.zeros((4, 3, 3), np.uint8)


@pytest.mark.parametrize("arrays, expected", [
    ({"images": GOOD_X}, "lacks array(s) x (it holds: images)"),
    ({"x": np.zeros((4, 2, 2, 1, 1))}, "array x has shape [4, 2, 2, 1, 1]"),
    ({"x": np.zeros((4, 3, 3, 2))}, "C = 1 or 3"),
    ({"x": np.array([[[np.nan]], [[0]]])}, "NaN or infinite"),
    ({"x": np.full((2, 1, 1), 1e300)}, "NaN or infinite"),
    ({"x": np.array([[["a"]], [["b"]]])}, "dtype <U1"),
    ({"x": GOOD_X, "y": np.arange(3)}, "holds 3 labels for 4 images"),
    ({"x": GOOD_X, "y": np.array([0, 1, -1, 2])}, "class id -1"),
    ({"x": GOOD_X, "y": np.zeros(4)}, "integer class ids"),
    ({"x": GOOD_X[:1]}, "holds 1 example(s); at least 2"),
])
def test_bad_npz_arrays(tmp_path, arrays, expected):
  path = str(tmp_path / "bad.npz")
  np.savez(path, **arrays)
  raises_one_line(DataError, path, expected,
                  call=lambda: load("npz", data_dir=path))


@pytest.mark.parametrize("content, expected", [
    (b"", "is empty"),
    (b"PK\x03\x04 broken zip", "not a readable .npz archive"),
    (b"just text", "not a readable .npz archive"),
])
def test_unreadable_npz_file(tmp_path, content, expected):
  path = write_file(str(tmp_path / "bad.npz"), content)
  raises_one_line(DataError, path, expected,
                  call=lambda: load("npz", data_dir=path))


def test_npy_instead_of_npz(tmp_path):
  path = str(tmp_path / "x.npy")
  np.save(path, GOOD_X)
  raises_one_line(DataError, path, "not an .npz archive",
                  call=lambda: load("npz", data_dir=path))


def test_npz_splits_that_disagree(tmp_path):
  np.savez(tmp_path / "train.npz", x=GOOD_X, y=np.arange(4))
  np.savez(tmp_path / "test.npz", x=GOOD_X)
  raises_one_line(DataError, str(tmp_path), "only the train split has labels",
                  call=lambda: load("npz", data_dir=str(tmp_path)))
  np.savez(tmp_path / "test.npz", x=GOOD_X.astype(np.float32), y=np.arange(4))
  raises_one_line(DataError, "3x3x1 uint8", "3x3x1 float32",
                  call=lambda: load("npz", data_dir=str(tmp_path)))


def test_npz_empty_test_file(tmp_path):
  np.savez(tmp_path / "train.npz", x=GOOD_X)
  np.savez(tmp_path / "test.npz", x=GOOD_X[:0])
  raises_one_line(DataError, "test split", "is empty",
                  call=lambda: load("npz", data_dir=str(tmp_path)))


def test_npz_data_dir_problems(tmp_path):
  raises_one_line(ConfigError, "--data_dir", ".npz",
                  call=lambda: load("npz"))
  missing = str(tmp_path / "missing.npz")
  raises_one_line(ConfigError, "--data_dir=" + missing,
                  call=lambda: load("npz", data_dir=missing))
  raises_one_line(DataError, str(tmp_path), "has no train.npz",
                  call=lambda: load("npz", data_dir=str(tmp_path)))


# ----------------------------------------------------------- image_folder

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def test_class_folders_with_train_and_test(tmp_path):
  root = tmp_path / "root"
  rng = np.random.default_rng(0)
  cat = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
  write_image(str(root / "train" / "b_cat" / "1.png"), cat)
  write_image(str(root / "train" / "b_cat" / "nested" / "2.png"), solid(RED))
  write_image(str(root / "train" / "a_dog" / "3.PNG"), solid(GREEN))
  write_image(str(root / "test" / "b_cat" / "4.png"), solid(BLUE))
  splits = load("image_folder", data_dir=str(root), image_size=8)
  assert splits.train_x.shape == (3, 8, 8, 3)
  assert splits.train_x.dtype == np.uint8
  assert splits.num_classes == 2
  # Sorted class names: a_dog = 0, b_cat = 1; files in sorted path order.
  np.testing.assert_array_equal(splits.train_y, [0, 1, 1])
  np.testing.assert_array_equal(splits.train_x[0], solid(GREEN))
  np.testing.assert_array_equal(splits.train_x[1], cat)
  np.testing.assert_array_equal(splits.train_x[2], solid(RED))
  np.testing.assert_array_equal(splits.test_y, [1])
  np.testing.assert_array_equal(splits.test_x[0], solid(BLUE))
  assert splits.source == str(root)


def test_unlabeled_folder_holds_out_test(tmp_path):
  for i in range(5):
    write_image(str(tmp_path / f"{i}.png"), solid((i, 0, 0)))
  write_file(str(tmp_path / "notes.txt"), b"not an image")
  write_file(str(tmp_path / "._0.png"), b"macOS metadata, not an image")
  splits = load("image_folder", data_dir=str(tmp_path), image_size=8,
                test_fraction=0.2)
  assert (len(splits.train_x), len(splits.test_x)) == (4, 1)
  assert splits.train_y is None and splits.test_y is None
  assert splits.num_classes is None
  reds = sorted(np.concatenate([splits.train_x, splits.test_x])[:, 0, 0, 0])
  assert reds == [0, 1, 2, 3, 4]


def test_labeled_folder_without_test_holds_out(tmp_path):
  for i in range(4):
    write_image(str(tmp_path / "x" / f"{i}.png"), solid(RED))
    write_image(str(tmp_path / "y" / f"{i}.png"), solid(BLUE))
  splits = load("image_folder", data_dir=str(tmp_path), image_size=8,
                test_fraction=0.25)
  assert (len(splits.train_x), len(splits.test_x)) == (6, 2)
  for x, y in ((splits.train_x, splits.train_y),
               (splits.test_x, splits.test_y)):
    np.testing.assert_array_equal(x[:, 0, 0, 0] == 255, y == 0)


def thirds(first, second, third, width, height, vertical=False):
  """An image whose thirds (left to right, or top to bottom) are colored."""
  side = height if vertical else width
  colors = np.array([first] * (side // 3) + [second] * (side // 3)
                    + [third] * (side // 3), np.uint8)
  if vertical:
    return np.broadcast_to(colors[:, None], (height, width, 3))
  return np.broadcast_to(colors[None], (height, width, 3))


@pytest.mark.parametrize("vertical", [False, True])
def test_center_crop(tmp_path, vertical):
  shape = (10, 30) if vertical else (30, 10)
  write_image(str(tmp_path / "a.png"), thirds(RED, GREEN, BLUE, *shape,
                                               vertical=vertical))
  write_image(str(tmp_path / "b.png"), solid(RED, 10))
  splits = load("image_folder", data_dir=str(tmp_path), image_size=10)
  images = np.concatenate([splits.train_x, splits.test_x])
  assert images.shape == (2, 10, 10, 3)
  assert any((image == solid(GREEN, 10)).all() for image in images)


def test_resize_shorter_side(tmp_path):
  write_image(str(tmp_path / "big.png"), np.broadcast_to(
      np.array(BLUE, np.uint8), (40, 60, 3)))
  write_image(str(tmp_path / "small.png"), solid(BLUE, 3))
  splits = load("image_folder", data_dir=str(tmp_path), image_size=6)
  images = np.concatenate([splits.train_x, splits.test_x])
  assert images.shape == (2, 6, 6, 3)
  np.testing.assert_array_equal(images, np.broadcast_to(solid(BLUE, 6),
                                                        images.shape))


def test_grey_rgba_and_jpeg_become_rgb(tmp_path):
  write_image(str(tmp_path / "grey.png"), np.full((8, 8), 77, np.uint8))
  rgba = np.zeros((8, 8, 4), np.uint8)
  rgba[...] = (10, 20, 30, 128)
  write_image(str(tmp_path / "rgba.png"), rgba)
  write_image(str(tmp_path / "photo.JPG"), solid((200, 100, 50)))
  write_image(str(tmp_path / "photo2.jpeg"), solid((200, 100, 50)))
  splits = load("image_folder", data_dir=str(tmp_path), image_size=8,
                test_fraction=0.25)
  images = np.concatenate([splits.train_x, splits.test_x]).astype(int)
  assert images.shape == (4, 8, 8, 3)
  firsts = {tuple(image[0, 0]) for image in images}
  assert (77, 77, 77) in firsts
  assert (10, 20, 30) in firsts
  jpegs = [image for image in images if abs(image[0, 0, 0] - 200) < 8]
  assert len(jpegs) == 2
  for image in jpegs:
    assert np.abs(image - (200, 100, 50)).max() <= 8


def test_unknown_test_class(tmp_path):
  write_image(str(tmp_path / "train" / "cat" / "1.png"), solid(RED))
  write_image(str(tmp_path / "test" / "zebra" / "1.png"), solid(RED))
  raises_one_line(DataError, str(tmp_path / "test"), "zebra", "cat",
                  call=lambda: load("image_folder",
                                          data_dir=str(tmp_path)))


def test_test_split_unlabeled_but_train_labeled(tmp_path):
  write_image(str(tmp_path / "train" / "cat" / "1.png"), solid(RED))
  write_image(str(tmp_path / "test" / "1.png"), solid(RED))
  raises_one_line(DataError, str(tmp_path / "test"), "class sub-folders",
                  call=lambda: load("image_folder",
                                          data_dir=str(tmp_path)))


def test_corrupt_image(tmp_path):
  write_image(str(tmp_path / "good.png"), solid(RED))
  with open(write_image(str(tmp_path / "bad.png"), solid(RED)), "rb") as f:
    data = f.read()
  path = write_file(str(tmp_path / "bad.png"), data[:len(data) // 2])
  raises_one_line(DataError, path, "not a readable image",
                  call=lambda: load("image_folder",
                                          data_dir=str(tmp_path)))
  write_file(path, b"garbage")
  raises_one_line(DataError, path, "not a readable image",
                  call=lambda: load("image_folder",
                                          data_dir=str(tmp_path)))


def test_folders_without_images(tmp_path):
  write_file(str(tmp_path / "readme.txt"), b"no images")
  raises_one_line(DataError, str(tmp_path), "holds no",
                  call=lambda: load("image_folder",
                                          data_dir=str(tmp_path)))
  write_image(str(tmp_path / "cat" / "1.png"), solid(RED))
  os.makedirs(tmp_path / "dog")
  raises_one_line(DataError, str(tmp_path / "dog"), "holds no",
                  call=lambda: load("image_folder",
                                          data_dir=str(tmp_path)))


def test_loose_images_beside_class_folders(tmp_path):
  write_image(str(tmp_path / "cat" / "1.png"), solid(RED))
  write_image(str(tmp_path / "stray.png"), solid(RED))
  raises_one_line(DataError, str(tmp_path), "stray.png",
                  call=lambda: load("image_folder",
                                          data_dir=str(tmp_path)))


def test_test_folder_without_train_folder(tmp_path):
  write_image(str(tmp_path / "test" / "1.png"), solid(RED))
  raises_one_line(DataError, str(tmp_path), "no train/",
                  call=lambda: load("image_folder",
                                          data_dir=str(tmp_path)))


def test_single_image_is_too_few(tmp_path):
  write_image(str(tmp_path / "1.png"), solid(RED))
  raises_one_line(DataError, str(tmp_path), "at least 2",
                  call=lambda: load("image_folder",
                                          data_dir=str(tmp_path)))


def test_image_folder_data_dir_problems(tmp_path):
  raises_one_line(ConfigError, "--data_dir",
                  call=lambda: load("image_folder"))
  missing = str(tmp_path / "missing")
  raises_one_line(ConfigError, "--data_dir=" + missing,
                  call=lambda: load("image_folder", data_dir=missing))


# ------------------------------------------------------- image_splits


def test_as_images_keeps_uint8_and_adds_channel():
  x = np.arange(8, dtype=np.uint8).reshape(2, 2, 2)
  images = image_splits.as_images(x, "x")
  assert images.shape == (2, 2, 2, 1) and images.dtype == np.uint8
  assert image_splits.as_images(x.astype(np.int64), "x").dtype == np.float32
