"""Data a user already holds as numpy arrays: `tfvae.data.from_arrays`."""

from typing import Optional, Sequence

import numpy as np

from tfvae.data import image_splits

# Share of the examples held out as test split when none is given.
DEFAULT_TEST_FRACTION = 0.2


def from_arrays(x_train: np.ndarray, y_train: Optional[np.ndarray] = None,
                x_test: Optional[np.ndarray] = None,
                y_test: Optional[np.ndarray] = None, *,
                column_names: Optional[Sequence[str]] = None,
                test_fraction: float = DEFAULT_TEST_FRACTION,
                source: str = "arrays") -> image_splits.Splits:
  """Wraps numpy arrays as the splits `tfvae.train_and_evaluate` takes.

  Example:
    data = tfvae.data.from_arrays(x, y)    # x: [N, 28, 28] or [N, D]
    tfvae.train_and_evaluate(config, data=data)

  Args:
    x_train: images `[N, H, W]` / `[N, H, W, C]` (uint8 0..255 or floats),
      or vectors `[N, D]`.
    y_train: `[N]` integer class ids, or None.
    x_test: test examples shaped like `x_train`; None holds out
      `test_fraction` of `x_train` (the same examples every time).
    y_test: `[M]` class ids of `x_test` (needed when `y_train` is given
      with `x_test`).
    column_names: D names of vector columns (default `x0`, `x1`, ...).
    test_fraction: share held out when `x_test` is None.
    source: names the data in messages and `metrics.json`.

  Returns:
    A `tfvae.data.image_splits.Splits`.

  Raises:
    DataError: arrays of the wrong rank, dtype, length or values.
  """
  train_x = image_splits.as_examples(x_train, f"{source} x_train")
  train_y = (None if y_train is None else image_splits.as_labels(
      y_train, len(train_x), f"{source} y_train"))
  if x_test is None:
    train_x, train_y, test_x, test_y = image_splits.hold_out_test(
        train_x, train_y, test_fraction, source)
  else:
    test_x = image_splits.as_examples(x_test, f"{source} x_test")
    test_y = (None if y_test is None else image_splits.as_labels(
        y_test, len(test_x), f"{source} y_test"))
  if column_names is not None:
    column_names = tuple(str(n) for n in column_names)
    if train_x.ndim != 2 or len(column_names) != train_x.shape[1]:
      raise image_splits.DataError(
          f"{source}: {len(column_names)} column_names for examples of shape "
          f"{list(train_x.shape[1:])}; give one name per vector column.")
  return image_splits.make_splits(train_x, train_y, test_x, test_y, source,
                                  column_names=column_names)
