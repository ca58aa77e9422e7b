"""Where images come from: the dataset registry and local-first file lookup.

`load_splits(config)` returns a dataset's train and test arrays as
`Splits`. The named datasets (`mnist`, `fashion_mnist`, `cifar10`) are
read from local files when any are found, in this order of folders:

  1. `config.data_dir` (`--data_dir`),
  2. `$TFVAE_DATA_DIR`,
  3. `~/.keras/datasets` (where `keras.datasets` caches its downloads),
  4. `/usr/share/datasets/<name>` (`SYSTEM_DATA_ROOTS`; Debian's packages,
     e.g. `dataset-fashion-mnist`),

each folder's sub-folders named after the dataset before the folder itself.
Only when none holds the data is `keras.datasets` asked to download it, if
`config.download` allows. `shapes` is rendered by tfvae itself
(`tfvae.data.shapes`) and carries its generative factors along.
"""

import functools
import os
import socket
from typing import Callable, Dict, List, Optional, Tuple

from absl import logging
import numpy as np

from tfvae.config import DataConfig
from tfvae.data import cifar
from tfvae.data import csv_files
from tfvae.data import idx
from tfvae.data import image_folder
from tfvae.data import image_splits
from tfvae.data import npz
from tfvae.data import shapes
from tfvae.data import streams
from tfvae.data import tfrecord
from tfvae.data.image_splits import Splits
from tfvae.errors import ConfigError, DataError

__all__ = ["DATASETS", "Splits", "keras_load_data", "load_splits",
           "search_folders"]

DATA_DIR_ENV = "TFVAE_DATA_DIR"
KERAS_CACHE = os.path.join("~", ".keras", "datasets")
# Roots of system-wide datasets; a dataset lives in `<root>/<Debian name>`.
SYSTEM_DATA_ROOTS = ("/usr/share/datasets",)
# Socket timeout while keras downloads, so an unreachable host fails fast.
DOWNLOAD_TIMEOUT_S = 10.0

_DEBIAN_NAMES = {
    "mnist": "mnist",
    "fashion_mnist": "fashion-mnist",
    "cifar10": "cifar-10",
}
# Sub-folders searched before the base folder itself; the last one of
# `cifar10` is where keras 3 extracts its download.
_SUBFOLDERS = {
    "mnist": ("mnist",),
    "fashion_mnist": ("fashion_mnist", "fashion-mnist"),
    "cifar10": ("cifar10", "cifar-10", "cifar-10-batches-py",
                os.path.join("cifar-10-batches-py-target",
                             "cifar-10-batches-py")),
}
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_NPZ_FILES = {
    "mnist": ("mnist.npz",),
    "fashion_mnist": ("fashion_mnist.npz", "fashion-mnist.npz"),
}
_NUM_CLASSES = 10

Arrays = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def load_splits(config: DataConfig) -> Splits:
  """Loads the train and test splits of `config.dataset`.

  Args:
    config: which dataset, and where and how to read it.

  Returns:
    The `Splits`, images `[N, H, W, C]` channels last.

  Raises:
    ConfigError: an unknown dataset name or a bad `data_dir`.
    DataError: data missing, unreadable, corrupt or of the wrong shape.
  """
  loader = DATASETS.get(config.dataset)
  if loader is None:
    raise ConfigError(
        f"--dataset={config.dataset!r} is not one of: "
        f"{', '.join(DATASETS)}.")
  splits = loader(config)
  logging.info("Loaded %s from %s: %d train and %d test images of %s %s.",
               config.dataset, splits.source, len(splits.train_x),
               len(splits.test_x), "x".join(map(str, splits.train_x.shape[1:])),
               splits.train_x.dtype)
  return splits


def search_folders(dataset: str, data_dir: Optional[str] = None) -> List[str]:
  """The base folders searched for a named dataset, first choice first.

  Args:
    dataset: 'mnist', 'fashion_mnist' or 'cifar10'.
    data_dir: `--data_dir`, searched first when given.

  Returns:
    Distinct folder paths; they need not exist.
  """
  folders = [data_dir, os.environ.get(DATA_DIR_ENV),
             os.path.expanduser(KERAS_CACHE)]
  folders += [os.path.join(root, _DEBIAN_NAMES[dataset])
              for root in SYSTEM_DATA_ROOTS]
  return list(dict.fromkeys(f for f in folders if f))


def keras_load_data(dataset: str) -> Tuple[Tuple[np.ndarray, np.ndarray],
                                           Tuple[np.ndarray, np.ndarray]]:
  """Downloads a dataset with `keras.datasets.<dataset>.load_data()`.

  Keras caches the files under `~/.keras/datasets`, where the next run finds
  them without downloading.

  Args:
    dataset: 'mnist', 'fashion_mnist' or 'cifar10'.

  Returns:
    `((train_x, train_y), (test_x, test_y))` as keras returns them.
  """
  import keras  # pylint: disable=g-import-not-at-top; slow, rarely needed.

  previous_timeout = socket.getdefaulttimeout()
  socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
  try:
    return getattr(keras.datasets, dataset).load_data()
  finally:
    socket.setdefaulttimeout(previous_timeout)


def _load_named(dataset: str, config: DataConfig) -> Splits:
  """Loads mnist, fashion_mnist or cifar10: local files, else a download."""
  if config.data_dir and not os.path.isdir(config.data_dir):
    raise ConfigError(
        f"--data_dir={config.data_dir} is not a folder; point it to the "
        f"folder holding the {dataset} files.")
  folders = search_folders(dataset, config.data_dir)
  notes = []
  for folder in folders:
    for candidate in _candidates(dataset, folder):
      found = _read_local(dataset, candidate, notes)
      if found is not None:
        arrays, source = found
        return _to_splits(arrays, source)
  if not config.download:
    raise DataError(_not_found(dataset, folders, notes, download_off=True))
  try:
    (train_x, train_y), (test_x, test_y) = keras_load_data(dataset)
  # keras raises a bare Exception when a URL cannot be fetched.
  except Exception as e:  # pylint: disable=broad-except
    notes.append(f"download failed: {image_splits.describe_exception(e)}")
    raise DataError(_not_found(dataset, folders, notes)) from e
  return _to_splits((train_x, train_y, test_x, test_y),
                    f"keras.datasets.{dataset}")


def _candidates(dataset: str, folder: str) -> List[str]:
  """The existing folders to look in for one base folder."""
  paths = [os.path.join(folder, sub) for sub in _SUBFOLDERS[dataset]]
  return [p for p in paths + [folder] if os.path.isdir(p)]


def _read_local(dataset: str, folder: str,
                notes: List[str]) -> Optional[Tuple[Arrays, str]]:
  """Reads the dataset's files from `folder` if it holds a complete set.

  Args:
    dataset: 'mnist', 'fashion_mnist' or 'cifar10'.
    folder: an existing folder.
    notes: gets a note for each incomplete set of files, for the error
      message when nothing is found.

  Returns:
    `((train_x, train_y, test_x, test_y), source path)`, or None.
  """
  if dataset == "cifar10":
    return _read_cifar(folder, notes)
  paths = [_idx_path(folder, name) for name in _IDX_FILES]
  if all(paths):
    return _read_idx_set(*paths), folder
  if any(paths):
    missing = [n for n, p in zip(_IDX_FILES, paths) if not p]
    notes.append(f"{folder} lacks {', '.join(missing)}")
  for name in _NPZ_FILES[dataset]:
    path = os.path.join(folder, name)
    if os.path.isfile(path):
      return _read_keras_npz(path), path
  return None


def _read_cifar(folder: str, notes: List[str]) -> Optional[Tuple[Arrays, str]]:
  batches = cifar.find_batches(folder)
  if len(batches) == len(cifar.BATCHES):
    return cifar.read_folder(folder), folder
  if batches:
    missing = sorted(set(cifar.BATCHES) - set(batches))
    notes.append(f"{folder} lacks {', '.join(missing)}")
  tarball = os.path.join(folder, cifar.TARBALL)
  if os.path.isfile(tarball):
    return cifar.read_tarball(tarball), tarball
  return None


def _idx_path(folder: str, name: str) -> Optional[str]:
  """The gzip or uncompressed IDX file `name` in `folder`, if there is one."""
  for path in (os.path.join(folder, name + ".gz"), os.path.join(folder, name)):
    if os.path.isfile(path):
      return path
  return None


def _read_idx_set(train_images: str, train_labels: str, test_images: str,
                  test_labels: str) -> Arrays:
  """Reads the four IDX files; images `[N, H, W]`, labels `[N]`."""
  arrays = []
  for images_path, labels_path in ((train_images, train_labels),
                                   (test_images, test_labels)):
    images = idx.read_idx(images_path, ndim=3)
    labels = idx.read_idx(labels_path, ndim=1)
    if len(labels) != len(images):
      raise DataError(
          f"{labels_path} holds {len(labels)} labels but {images_path} holds "
          f"{len(images)} images; re-download them.")
    _check_class_ids(labels, labels_path)
    arrays += [images, labels]
  return tuple(arrays)


def _read_keras_npz(path: str) -> Arrays:
  """Reads keras's `mnist.npz` (x_train, y_train, x_test, y_test)."""
  keys = ("x_train", "y_train", "x_test", "y_test")
  found = npz.load_arrays(path, keys, fix="re-download it")
  arrays = tuple(found[k] for k in keys)
  for labels, name in ((arrays[1], "y_train"), (arrays[3], "y_test")):
    _check_class_ids(labels, f"{path} array {name}")
  return arrays


def _check_class_ids(labels: np.ndarray, where: str) -> None:
  if len(labels) and not 0 <= labels.min() <= labels.max() < _NUM_CLASSES:
    raise DataError(
        f"{where} holds class ids outside 0..{_NUM_CLASSES - 1}; "
        "re-download it.")


def _to_splits(arrays: Arrays, source: str) -> Splits:
  """Checks raw arrays and adds the channel axis to grey images."""
  train_x, train_y, test_x, test_y = arrays
  train_x = image_splits.as_images(train_x, f"{source} train images")
  test_x = image_splits.as_images(test_x, f"{source} test images")
  train_y = image_splits.as_labels(train_y, len(train_x),
                                   f"{source} train labels")
  test_y = image_splits.as_labels(test_y, len(test_x), f"{source} test labels")
  return image_splits.make_splits(train_x, train_y, test_x, test_y, source,
                                  num_classes=_NUM_CLASSES)


def _not_found(dataset: str, folders: List[str], notes: List[str],
               download_off: bool = False) -> str:
  """The one-line message for a named dataset found nowhere."""
  subfolders = ", ".join(f"{s}/" for s in _SUBFOLDERS[dataset])
  if download_off:
    notes = notes + ["download disabled by --nodownload"]
  if dataset == "cifar10":
    what = f"{cifar.TARBALL} or its extracted cifar-10-batches-py/ folder"
  else:
    what = (f"the four IDX files ({'.gz, '.join(_IDX_FILES)}.gz) or "
            f"{_NPZ_FILES[dataset][0]}")
  fixes = [f"put {what} in one of them", "pass --data_dir"]
  if download_off:
    fixes.append("allow --download")
  if dataset == "fashion_mnist":
    fixes.append("on Debian: apt-get install dataset-fashion-mnist")
  return (f"No {dataset} data found in {', '.join(folders)} or their "
          f"{subfolders} sub-folders ({'; '.join(notes)}); "
          f"{', '.join(fixes[:-1])}, or {fixes[-1]}.")


def load_tfrecord(config: DataConfig) -> Splits:
  """The splits of the TFRecord shards that `--data_dir`'s manifest lists.

  Image splits stay on disk as `streams.RecordSplit`s; vectors (small per
  row) are read into memory. Without a `test` split in the manifest, one is
  held out of `train` as for other sources.
  """
  manifest = tfrecord.read_manifest(config.data_dir)
  train_x = streams.RecordSplit(manifest, "train")
  if "test" in manifest.splits:
    test_x = streams.RecordSplit(manifest, "test")
  else:
    train_x, _, test_x, _ = image_splits.hold_out_test(
        train_x, None, config.test_fraction, manifest.path)
  train_y = test_y = None
  metadata = {"class_names": manifest.class_names}
  if manifest.is_vector:
    (train_x, train_y), (test_x, test_y) = train_x.load(), test_x.load()
    columns = manifest.columns or ()
    metadata.update(
        column_names=manifest.column_names,
        vocabularies={i: column.categories for i, column in enumerate(
            columns) if column.kind == "categorical"} or None)
  return image_splits.make_splits(train_x, train_y, test_x, test_y,
                                  source=manifest.path,
                                  num_classes=manifest.num_classes,
                                  **metadata)


def _named_loader(dataset: str) -> Callable[[DataConfig], Splits]:
  return functools.partial(_load_named, dataset)


DATASETS: Dict[str, Callable[[DataConfig], Splits]] = {
    "mnist": _named_loader("mnist"),
    "fashion_mnist": _named_loader("fashion_mnist"),
    "cifar10": _named_loader("cifar10"),
    "shapes": shapes.load_shapes,
    "npz": npz.load_npz,
    "image_folder": image_folder.load_image_folder,
    "csv": csv_files.load_csv,
    "tfrecord": load_tfrecord,
}
