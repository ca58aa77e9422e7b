"""Column descriptions of vector (tabular) data: kinds, vocabularies, statistics.

Vector data are `[N, D]` float32 arrays, one column per feature. A
`Column` says how the tabular likelihood models its column:

- `continuous`: a Gaussian on the raw value; the model standardizes it with
  the training split's `mean` and `std` (a constant column keeps `std` 1, so
  nothing is divided by zero);
- `binary`: a Bernoulli; every training value is 0 or 1;
- `categorical`: a categorical over `categories`; the column holds the
  category's index into `categories` (the vocabulary, from the training
  split; category names are strings, integer categories included).

The columns travel with the model (`config.json`, the export's
`assets.extra/tfvae.json`) so that raw values can be read back and scored.
"""

import dataclasses
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from tfvae.errors import DataError

KINDS = ("continuous", "binary", "categorical")


@dataclasses.dataclass(frozen=True)
class Column:
  """One column of vector data.

  Attributes:
    name: the column's name (a CSV header, or `x0`, `x1`, ... for arrays).
    kind: one of `KINDS`.
    categories: the vocabulary of a categorical column; id = position.
    mean: training mean of a continuous column (0 otherwise).
    std: training standard deviation of a continuous column; 1 when the
      column is constant or not continuous.
  """
  name: str
  kind: str = "continuous"
  categories: Tuple[str, ...] = ()
  mean: float = 0.0
  std: float = 1.0

  @property
  def num_parameters(self) -> int:
    """Decoder outputs this column's likelihood needs."""
    return len(self.categories) if self.kind == "categorical" else 1

  @property
  def num_features(self) -> int:
    """Encoder inputs this column becomes (a one-hot for categories)."""
    return self.num_parameters


def default_names(num_columns: int) -> Tuple[str, ...]:
  """`('x0', 'x1', ...)`: names of columns that come without a header."""
  return tuple(f"x{i}" for i in range(num_columns))


def fit(train_x: np.ndarray, names: Optional[Sequence[str]] = None,
        vocabularies: Optional[Dict[int, Sequence[str]]] = None
        ) -> Tuple[Column, ...]:
  """Describes each column of the training split.

  Args:
    train_x: `[N, D]` training vectors; categorical columns hold ids.
    names: D column names; default `default_names(D)`.
    vocabularies: column index -> categories, for categorical columns.

  Returns:
    D `Column`s: categorical where a vocabulary is given, binary where every
    value is 0 or 1, continuous otherwise (with mean and std).
  """
  train_x = np.asarray(train_x, np.float64)
  names = tuple(names) if names is not None else default_names(
      train_x.shape[1])
  vocabularies = vocabularies or {}
  columns = []
  for index, name in enumerate(names):
    values = train_x[:, index]
    if index in vocabularies:
      columns.append(Column(name, "categorical",
                            tuple(str(c) for c in vocabularies[index])))
    elif len(values) and np.all((values == 0) | (values == 1)):
      columns.append(Column(name, "binary"))
    else:
      std = float(values.std()) if len(values) else 0.0
      columns.append(Column(name, "continuous",
                            mean=float(values.mean()) if len(values) else 0.0,
                            std=std if std > 0 else 1.0))
  return tuple(columns)


def check_values(x: np.ndarray, columns: Sequence[Column], where: str,
                 lines: Optional[Sequence[int]] = None) -> None:
  """Checks that vectors fit the columns (binary 0/1, valid category ids).

  Args:
    x: `[N, D]` vectors.
    columns: the D columns.
    where: names the data in error messages.
    lines: the file line of each row (CSV files), named in messages instead
      of the row index.

  Raises:
    DataError: naming the row and column of the first value that does not
      fit.
  """
  if x.ndim != 2 or x.shape[1] != len(columns):
    raise DataError(
        f"{where} has shape {list(x.shape)}; the model takes vectors of "
        f"{len(columns)} columns ({', '.join(c.name for c in columns)}).")
  for index, column in enumerate(columns):
    values = x[:, index]
    if column.kind == "binary":
      bad = np.flatnonzero((values != 0) & (values != 1))
      what = "0 or 1"
    elif column.kind == "categorical":
      bad = np.flatnonzero((values != np.round(values)) | (values < 0)
                           | (values >= len(column.categories)))
      what = f"a category id 0..{len(column.categories) - 1}"
    else:
      bad = np.flatnonzero(~np.isfinite(values))
      what = "a finite number"
    if len(bad):
      place = (f"line {lines[bad[0]]}" if lines is not None
               else f"row {bad[0]}")
      raise DataError(
          f"{where} {place} column {column.name!r} holds "
          f"{values[bad[0]]:g}, not {what}; fix the value or retrain on data "
          "that has it.")


def to_dicts(columns: Optional[Sequence[Column]]):
  """JSON-ready list of dicts (None stays None)."""
  if columns is None:
    return None
  return [dict(dataclasses.asdict(c), categories=list(c.categories))
          for c in columns]


def from_dicts(values) -> Optional[Tuple[Column, ...]]:
  """The inverse of `to_dicts`."""
  if values is None:
    return None
  return tuple(Column(**dict(v, categories=tuple(v.get("categories", ()))))
               for v in values)
