"""Reads CIFAR-10's "python version": pickled batches, in a folder or tarball.

The batches are `data_batch_1` .. `data_batch_5` (train) and `test_batch`,
each a pickled dict with `b'data'` (`[n, 3072]` uint8, channels first) and
`b'labels'` (n ints). They are unpickled with an unpickler that builds numpy
arrays only, so a tampered file cannot run code.
"""

import io
import os
import pickle
import tarfile
import zlib
from typing import Callable, List, Tuple

import numpy as np

from tfvae.data.image_splits import describe_exception
from tfvae.errors import DataError

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
BATCHES = TRAIN_BATCHES + (TEST_BATCH,)
TARBALL = "cifar-10-python.tar.gz"
NUM_CLASSES = 10

_SIDE = 32
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}

Arrays = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def find_batches(folder: str) -> List[str]:
  """Returns which of the six batch files exist in a folder."""
  return [name for name in BATCHES
          if os.path.isfile(os.path.join(folder, name))]


def read_folder(folder: str) -> Arrays:
  """Reads the six batch files from a `cifar-10-batches-py` folder.

  Args:
    folder: holds `data_batch_1` .. `data_batch_5` and `test_batch`.

  Returns:
    `(train_x, train_y, test_x, test_y)`: `[N, 32, 32, 3]` uint8 images and
    `[N]` int32 labels.

  Raises:
    DataError: a batch is missing, unreadable or corrupt.
  """
  def read(name):
    path = os.path.join(folder, name)
    try:
      with open(path, "rb") as f:
        data = f.read()
    except OSError as e:
      raise DataError(
          f"{path} cannot be read ({e.strerror}); put all of "
          f"{', '.join(BATCHES)} in {folder}.") from e
    return data, path
  return _read_batches(read)


def read_tarball(path: str) -> Arrays:
  """Reads the batches from `cifar-10-python.tar.gz` without extracting it.

  Args:
    path: the tarball as published.

  Returns:
    `(train_x, train_y, test_x, test_y)` as `read_folder` does.

  Raises:
    DataError: the tarball is empty, truncated, corrupt or lacks a batch.
  """
  if os.path.getsize(path) == 0:
    raise DataError(f"{path} is empty; re-download it.")
  try:
    with tarfile.open(path, "r:gz") as tar:
      members = {os.path.basename(m.name): m for m in tar.getmembers()
                 if m.isfile()}
      missing = [name for name in BATCHES if name not in members]
      if missing:
        raise DataError(
            f"{path} lacks {', '.join(missing)}; re-download it.")
      contents = {name: tar.extractfile(members[name]).read()
                  for name in BATCHES}
  except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
    raise DataError(
        f"{path} is truncated or corrupt ({describe_exception(e)}); "
        "re-download it.") from e
  return _read_batches(lambda name: (contents[name], f"{path}:{name}"))


def _read_batches(read: Callable[[str], Tuple[bytes, str]]) -> Arrays:
  """Decodes all batches; `read(name)` returns a batch's bytes and a name."""
  train = [_decode_batch(*read(name)) for name in TRAIN_BATCHES]
  test_x, test_y = _decode_batch(*read(TEST_BATCH))
  train_x = np.concatenate([x for x, _ in train])
  train_y = np.concatenate([y for _, y in train])
  return train_x, train_y, test_x, test_y


def _decode_batch(data: bytes, where: str) -> Tuple[np.ndarray, np.ndarray]:
  """Returns a batch's `[n, 32, 32, 3]` uint8 images and `[n]` int32 labels."""
  if not data:
    raise DataError(f"{where} is empty; re-download it.")
  batch = _unpickle(data, where)
  if (not isinstance(batch, dict) or b"data" not in batch
      or b"labels" not in batch):
    raise DataError(
        f"{where} is not a CIFAR-10 batch (no b'data' and b'labels'); "
        "re-download it.")
  images, labels = batch[b"data"], np.asarray(batch[b"labels"])
  if (not isinstance(images, np.ndarray) or images.dtype != np.uint8
      or images.ndim != 2 or images.shape[1] != 3 * _SIDE * _SIDE):
    raise DataError(
        f"{where} holds data that is not [n, 3072] uint8; re-download it.")
  if (labels.shape != (len(images),) or labels.dtype.kind not in "iu"
      or (len(labels) and not 0 <= labels.min() <= labels.max() < NUM_CLASSES)):
    raise DataError(
        f"{where} holds {labels.size} labels for {len(images)} images, or "
        f"labels outside 0..{NUM_CLASSES - 1}; re-download it.")
  images = images.reshape(-1, 3, _SIDE, _SIDE).transpose(0, 2, 3, 1)
  return np.ascontiguousarray(images), labels.astype(np.int32)


class _NumpyUnpickler(pickle.Unpickler):
  """Unpickles dicts, lists and numpy arrays, and refuses anything else."""

  def find_class(self, module, name):
    if (module, name) not in _ALLOWED_GLOBALS:
      raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
    return super().find_class(module, name)


def _unpickle(data: bytes, where: str):
  try:
    return _NumpyUnpickler(io.BytesIO(data), encoding="bytes").load()
  except (pickle.UnpicklingError, EOFError, ValueError, TypeError,
          AttributeError, IndexError, KeyError, ImportError) as e:
    raise DataError(
        f"{where} is truncated or not a CIFAR-10 batch "
        f"({describe_exception(e)}); re-download it.") from e
