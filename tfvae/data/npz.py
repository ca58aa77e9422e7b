"""The `npz` source: images (and labels) saved with `np.savez`.

`--data_dir` is either one `.npz` file, from which a test split is held out,
or a folder holding `train.npz` and optionally `test.npz`. Each file holds an
array `x` of `[N, H, W]` or `[N, H, W, C]` images and optionally `y`, `[N]`
integer class ids. `x` may also be `[N, D]` vectors (one row per example).
"""

import os
import zipfile
import zlib
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from tfvae.config import DataConfig
from tfvae.data import image_splits
from tfvae.errors import DataError

_HOW_TO_SAVE = "save it with np.savez(path, x=images, y=labels)"


def load_npz(config: DataConfig) -> image_splits.Splits:
  """Loads `config.data_dir` as described in the module docstring.

  Args:
    config: uses `data_dir` and `test_fraction` (when there is no test file).

  Returns:
    The `Splits`; `x` stays uint8 if saved so, else becomes float32.

  Raises:
    ConfigError: `data_dir` is unset or does not exist.
    DataError: a file is missing, unreadable or holds arrays of the wrong
      shape, dtype or length.
  """
  train_path, test_path = image_splits.find_split_files(
      config.data_dir, ".npz", "npz", _HOW_TO_SAVE)
  train_x, train_y = read_npz(train_path)
  if test_path is None:
    train_x, train_y, test_x, test_y = image_splits.hold_out_test(
        train_x, train_y, config.test_fraction, train_path)
  else:
    test_x, test_y = read_npz(test_path)
  return image_splits.make_splits(
      train_x, train_y, test_x, test_y, source=config.data_dir)


def read_npz(path: str) -> Tuple[np.ndarray, Optional[np.ndarray]]:
  """Reads and checks the arrays `x` and (optional) `y` of one `.npz` file.

  Args:
    path: the `.npz` file.

  Returns:
    `([N, H, W, C] images or [N, D] vectors, [N] int32 labels or None)`.

  Raises:
    DataError: the file is empty, not an `.npz` archive, corrupt, lacks `x`,
      or holds arrays that `image_splits.as_images`/`as_labels` reject.
  """
  arrays = load_arrays(path, ("x",), ("y",), fix=_HOW_TO_SAVE)
  x = image_splits.as_examples(arrays["x"], f"{path} array x")
  y = arrays.get("y")
  if y is not None:
    y = image_splits.as_labels(y, len(x), f"{path} array y")
  return x, y


def load_arrays(path: str, required: Sequence[str],
                optional: Sequence[str] = (), *,
                fix: str) -> Dict[str, np.ndarray]:
  """Reads named arrays from an `.npz` file; any failure is a `DataError`.

  Args:
    path: the `.npz` file.
    required: names of arrays it must hold.
    optional: names of arrays to read when present.
    fix: how to repair the file, ending the error messages.

  Returns:
    A dict from array name to array, for the required and present optional
    names.

  Raises:
    DataError: the file is empty, a plain `.npy`, not a readable archive, or
      lacks a required array.
  """
  if os.path.getsize(path) == 0:
    raise DataError(f"{path} is empty; {fix}.")
  try:
    archive = np.load(path, allow_pickle=False)
    if not isinstance(archive, np.lib.npyio.NpzFile):
      raise DataError(
          f"{path} is a single .npy array, not an .npz archive; {fix}.")
    with archive:
      missing = [name for name in required if name not in archive.files]
      if missing:
        found = ", ".join(archive.files) or "nothing"
        raise DataError(
            f"{path} lacks array(s) {', '.join(missing)} (it holds: {found}); "
            f"{fix}.")
      names = list(required) + [n for n in optional if n in archive.files]
      return {name: archive[name] for name in names}
  except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
    raise DataError(
        f"{path} is not a readable .npz archive "
        f"({image_splits.describe_exception(e)}); {fix}.") from e
