"""`Splits`, the train/test arrays every source returns, and its checks.

Sources build their splits with `make_splits`, which checks what the rest of
the system relies on: 4-D channels-last images or 2-D `[N, D]` vectors,
matching train/test shapes and dtypes, int32 labels, non-empty splits and
factors (of data with a known ground truth) aligned with the examples.
Sources without a test split hold one out with `hold_out_test`, which does
not depend on any training seed.
"""

import dataclasses
import os
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from tfvae.errors import DataError

# Seeds the held-out test split, so a source always yields the same test set.
HOLD_OUT_SEED = 0


@dataclasses.dataclass(frozen=True)
class Splits:
  """A dataset's train and test examples, with labels when it has them.

  Attributes:
    train_x: `[N, H, W, C]` images, uint8 pixel values 0..255 or float32,
      or `[N, D]` float32 vectors.
    train_y: `[N]` int32 class ids, or None when unlabeled.
    test_x: `[M, ...]` examples shaped and typed like `train_x`.
    test_y: `[M]` int32 class ids, or None when unlabeled.
    num_classes: number of classes, or None when unlabeled.
    source: where the data was read from (a path or e.g.
      'keras.datasets.mnist').
    column_names: the D column names of vectors (None: `x0`, `x1`, ...).
    vocabularies: column index -> categories of categorical vector columns,
      whose values are ids into them.
    class_names: the label of each class id, when labels were read as names.
    test_lines: `(file, lines)`: the file holding the test examples and the
      line of each (CSV files), for messages about a test value.
    ground_truth: the generative model of data with known factors (a
      `tfvae.data.shapes.Shapes`: `factor_names`, `factor_sizes`,
      `render(factors)`, ...), or None.
    train_factors: `[N, F]` int64 factor indices of the train examples,
      aligned with `train_x`, when `ground_truth` is set.
    test_factors: `[M, F]` int64 factor indices of the test examples.
  """
  train_x: np.ndarray
  train_y: Optional[np.ndarray]
  test_x: np.ndarray
  test_y: Optional[np.ndarray]
  num_classes: Optional[int]
  source: str
  column_names: Optional[Tuple[str, ...]] = None
  vocabularies: Optional[Dict[int, Tuple[str, ...]]] = None
  class_names: Optional[Tuple[str, ...]] = None
  test_lines: Optional[Tuple[str, Tuple[int, ...]]] = None
  ground_truth: Optional[Any] = None
  train_factors: Optional[np.ndarray] = None
  test_factors: Optional[np.ndarray] = None

  @property
  def is_vector(self) -> bool:
    """True for `[N, D]` vectors, False for images."""
    return self.train_x.ndim == 2


def as_images(x: np.ndarray, where: str) -> np.ndarray:
  """Checks images and returns them as `[N, H, W, C]` uint8 or float32.

  Args:
    x: `[N, H, W]` or `[N, H, W, C]` images with C 1 or 3, of any real dtype.
    where: names the array in error messages, e.g. '/d/train.npz array x'.

  Returns:
    `[N, H, W, C]` images; uint8 stays uint8, other dtypes become float32.

  Raises:
    DataError: wrong rank or channels, non-numeric or non-finite values.
  """
  x = np.asarray(x)
  if x.ndim == 3:
    x = x[..., np.newaxis]
  if x.ndim != 4 or x.shape[-1] not in (1, 3):
    raise DataError(
        f"{where} has shape {list(np.shape(x))}; expected images as "
        "[N, H, W] or [N, H, W, C] with C = 1 or 3.")
  if x.dtype == np.uint8:
    return x
  return _finite_float32(x, where)


def as_examples(x: np.ndarray, where: str) -> np.ndarray:
  """`as_images` for 3-D/4-D arrays; `[N, D]` arrays are checked as vectors.

  Args:
    x: images (see `as_images`) or `[N, D]` real-valued vectors.
    where: names the array in error messages.

  Returns:
    images as `as_images` returns them, or `[N, D]` float32 vectors.

  Raises:
    DataError: a wrong rank, non-numeric or non-finite values.
  """
  x = np.asarray(x)
  if x.ndim != 2:
    if x.ndim not in (3, 4):
      raise DataError(
          f"{where} has shape {list(x.shape)}; expected images [N, H, W] or "
          "[N, H, W, C] (C = 1 or 3), or vectors [N, D].")
    return as_images(x, where)
  if x.shape[1] < 1:
    raise DataError(f"{where} has shape {list(x.shape)}; vectors need at "
                    "least one column.")
  return _finite_float32(x, where)


def _finite_float32(x: np.ndarray, where: str) -> np.ndarray:
  if x.dtype.kind not in "biuf":
    raise DataError(
        f"{where} has dtype {x.dtype}; expected uint8 pixels or real numbers.")
  with np.errstate(over="ignore"):  # Overflow to inf is reported below.
    x = x.astype(np.float32)
  if not np.all(np.isfinite(x)):
    raise DataError(
        f"{where} holds NaN or infinite values (or values too large for "
        "float32); replace them before loading.")
  return x


def as_labels(y: np.ndarray, num_examples: int, where: str) -> np.ndarray:
  """Checks class ids and returns them as `[N]` int32.

  Args:
    y: `[N]` (or `[N, 1]`) integer class ids >= 0.
    num_examples: N, the number of images they label.
    where: names the array in error messages.

  Returns:
    `[N]` int32 class ids.

  Raises:
    DataError: wrong shape or length, non-integers or negative ids.
  """
  y = np.asarray(y)
  if y.ndim == 2 and y.shape[1] == 1:
    y = y[:, 0]
  if y.ndim != 1:
    raise DataError(
        f"{where} has shape {list(y.shape)}; expected one class id per "
        "image, shape [N].")
  if y.dtype.kind not in "iu":
    raise DataError(
        f"{where} has dtype {y.dtype}; expected integer class ids.")
  if len(y) != num_examples:
    raise DataError(
        f"{where} holds {len(y)} labels for {num_examples} images; give "
        "exactly one label per image.")
  if len(y) and (y.min() < 0 or y.max() > np.iinfo(np.int32).max):
    raise DataError(
        f"{where} holds class id {y.min() if y.min() < 0 else y.max()}; "
        "expected ids 0, 1, 2, ...")
  return y.astype(np.int32)


def hold_out_test(
    x: np.ndarray, y: Optional[np.ndarray], fraction: float, where: str
) -> Tuple[np.ndarray, Optional[np.ndarray], np.ndarray, Optional[np.ndarray]]:
  """Splits examples into train and test, the same way every time.

  The test split takes `round(N * fraction)` examples, at least one and at
  most N - 1, chosen by a permutation seeded with `HOLD_OUT_SEED`; both splits
  keep the examples' original order.

  Args:
    x: `[N, H, W, C]` images.
    y: `[N]` labels or None.
    fraction: share of the examples to hold out as test set.
    where: names the data in error messages.

  Returns:
    `(train_x, train_y, test_x, test_y)`; the labels are None when `y` is.

  Raises:
    DataError: fewer than 2 examples.
  """
  n = len(x)
  _check_at_least_two(n, where)
  num_test = min(n - 1, max(1, int(round(n * fraction))))
  order = np.random.default_rng(HOLD_OUT_SEED).permutation(n)
  test = np.sort(order[:num_test])
  train = np.sort(order[num_test:])
  if y is None:
    return x[train], None, x[test], None
  return x[train], y[train], x[test], y[test]


def make_splits(
    train_x: np.ndarray,
    train_y: Optional[np.ndarray],
    test_x: np.ndarray,
    test_y: Optional[np.ndarray],
    source: str,
    num_classes: Optional[int] = None,
    **metadata,
) -> Splits:
  """Checks that two splits fit together and returns them as `Splits`.

  Args:
    train_x: `[N, H, W, C]` images (already through `as_images`).
    train_y: `[N]` int32 labels or None.
    test_x: `[M, H, W, C]` images.
    test_y: `[M]` int32 labels or None.
    source: where the data came from; also names it in error messages.
    num_classes: the number of classes; by default the largest id + 1.
    **metadata: `column_names`, `vocabularies`, `class_names`,
      `test_lines`, `ground_truth`, `train_factors` and `test_factors` of
      `Splits`.

  Returns:
    The `Splits`.

  Raises:
    DataError: an empty split, fewer than 2 examples, train and test images
      of different shapes or dtypes, labels in only one split, or factors
      not aligned with the examples.
  """
  _check_at_least_two(len(train_x) + len(test_x), source)
  for name, x in (("train", train_x), ("test", test_x)):
    if not len(x):
      raise DataError(f"The {name} split of {source} is empty; add "
                      "examples.")
  if train_x.shape[1:] != test_x.shape[1:] or train_x.dtype != test_x.dtype:
    raise DataError(
        f"{source}: train examples are {_describe(train_x)} but test "
        f"examples are {_describe(test_x)}; give both splits one shape and "
        "dtype.")
  if (train_y is None) != (test_y is None):
    labeled = "train" if test_y is None else "test"
    raise DataError(
        f"{source}: only the {labeled} split has labels; label both splits "
        "or neither.")
  _check_factors(metadata, len(train_x), len(test_x), source)
  if train_y is not None and num_classes is None:
    num_classes = int(max(train_y.max(), test_y.max())) + 1
  return Splits(train_x, train_y, test_x, test_y, num_classes, source,
                **metadata)


def find_split_files(data_dir: Optional[str], suffix: str, dataset: str,
                     how_to_make: str = "") -> Tuple[str, Optional[str]]:
  """The train file and test file (None when absent) of a file source.

  `data_dir` is one file (the caller holds out a test split) or a folder
  holding `train<suffix>` and optionally `test<suffix>`.

  Args:
    data_dir: `--data_dir`.
    suffix: the files' extension, e.g. `.npz`.
    dataset: the `--dataset` name, for messages.
    how_to_make: how to write a train file, quoted in the message.

  Raises:
    ConfigError: `data_dir` unset or missing.
    DataError: a folder without `train<suffix>`.
  """
  from tfvae.errors import ConfigError  # pylint: disable=g-import-not-at-top

  train_name, test_name = f"train{suffix}", f"test{suffix}"
  if not data_dir:
    raise ConfigError(
        f"--data_dir must point to a {suffix} file or a folder with "
        f"{train_name} (and optional {test_name}) when --dataset={dataset}.")
  if os.path.isfile(data_dir):
    return data_dir, None
  if not os.path.isdir(data_dir):
    raise ConfigError(
        f"--data_dir={data_dir} does not exist; point it to a {suffix} file "
        f"or a folder with {train_name} (and optional {test_name}).")
  train_path = os.path.join(data_dir, train_name)
  if not os.path.isfile(train_path):
    how = f" ({how_to_make})" if how_to_make else ""
    raise DataError(
        f"{data_dir} has no {train_name}; add one{how} or point --data_dir "
        f"to a {suffix} file.")
  test_path = os.path.join(data_dir, test_name)
  return train_path, test_path if os.path.isfile(test_path) else None


def describe_exception(e: BaseException) -> str:
  """Returns 'Type: first line of the message', to quote in a one-line error."""
  lines = str(e).strip().splitlines()
  return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__


def _check_at_least_two(n: int, where: str) -> None:
  if n < 2:
    raise DataError(
        f"{where} holds {n} example(s); at least 2 are needed (one to train, "
        "one to test).")


def _check_factors(metadata: Dict[str, Any], num_train: int, num_test: int,
                   source: str) -> None:
  """Checks that factors come with a ground truth and one row per example."""
  factors = {name: metadata.get(f"{name}_factors") for name in ("train",
                                                                 "test")}
  if all(f is None for f in factors.values()):
    return
  ground_truth = metadata.get("ground_truth")
  for (name, f), num in zip(factors.items(), (num_train, num_test)):
    if (f is None or ground_truth is None or np.ndim(f) != 2
        or len(f) != num or np.shape(f)[1] != len(ground_truth.factor_sizes)):
      raise DataError(
          f"{source}: the {name} factors are "
          f"{None if f is None else list(np.shape(f))} for {num} examples; "
          "give both splits [N, F] factors and their ground_truth.")


def _describe(x: np.ndarray) -> str:
  return f"{'x'.join(map(str, x.shape[1:]))} {x.dtype}"
