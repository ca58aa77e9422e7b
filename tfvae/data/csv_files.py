"""The `csv` source: tables with a header row, one example per row.

`--data_dir` is one `.csv` file, from which a test split is held out, or a
folder holding `train.csv` and optionally `test.csv` (the same columns).
Columns are numeric unless named in `--categorical_columns` (string or
integer categories, whose vocabulary comes from the training split);
`--label_column` names a column of class labels, which is not a model input.
Missing values are errors: tfvae does not impute.

The result is `[N, D]` float32 vectors in header order (label column left
out); a categorical column holds the index of its value in the vocabulary.
"""

import csv
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfvae.config import DataConfig
from tfvae.data import columns as columns_lib
from tfvae.data import image_splits
from tfvae.errors import ConfigError, DataError

_MISSING = ("", "na", "nan", "null", "none", "?")


def load_csv(config: DataConfig) -> image_splits.Splits:
  """Loads `config.data_dir` as described in the module docstring.

  Args:
    config: uses `data_dir`, `test_fraction`, `categorical_columns` and
      `label_column`.

  Returns:
    `Splits` of `[N, D]` float32 vectors with `column_names`,
    `vocabularies` and, with a label column, `class_names`.

  Raises:
    ConfigError: `data_dir` unset or missing; a named column not in the
      header.
    DataError: a ragged row, a missing or non-numeric value, a category or
      label in the test split that the training split lacks.
  """
  train_path, test_path = image_splits.find_split_files(
      config.data_dir, ".csv", "csv")
  header, train_rows = read_table(train_path)
  if test_path is None:
    kept, held_out = _hold_out(len(train_rows), config.test_fraction,
                               train_path)
    test_rows = [train_rows[i] for i in held_out]
    train_rows = [train_rows[i] for i in kept]
    test_where = train_path
  else:
    test_header, test_rows = read_table(test_path)
    if test_header != header:
      raise DataError(
          f"{test_path} has columns {','.join(test_header)} but "
          f"{train_path} has {','.join(header)}; give both files the same "
          "header.")
    test_where = test_path
  table = Table(header, config.categorical_columns, config.label_column,
                where=train_path)
  table.fit(train_rows)
  train_x, train_y = table.encode(train_rows, train_path)
  test_x, test_y = table.encode(test_rows, test_where)
  return image_splits.make_splits(
      train_x, train_y, test_x, test_y, source=config.data_dir,
      num_classes=None if train_y is None else len(table.class_names),
      column_names=table.feature_names, vocabularies=table.vocabularies,
      class_names=table.class_names,
      test_lines=(test_where, tuple(row.line for row in test_rows)))


class Table:
  """Turns CSV rows into vectors: column roles, vocabularies, checks.

  Args:
    header: the column names, in file order.
    categorical_columns: names of the categorical columns.
    label_column: name of the label column, or None.
    where: the file the header came from (error messages).
    feature_columns: the model's input columns, in the model's order;
      default every column but the label, in file order.
  """

  def __init__(self, header: Sequence[str],
               categorical_columns: Sequence[str] = (),
               label_column: Optional[str] = None, where: str = "the table",
               feature_columns: Optional[Sequence[str]] = None):
    self.header = tuple(header)
    for flag, names in (("categorical_columns", categorical_columns),
                        ("label_column", [label_column] if label_column
                         else [])):
      missing = [n for n in names if n not in self.header]
      if missing:
        raise ConfigError(
            f"--{flag}={','.join(names)}: {where} has no column "
            f"{', '.join(repr(n) for n in missing)}; its columns are "
            f"{','.join(self.header)}.")
    if feature_columns is not None:
      missing = [n for n in feature_columns if n not in self.header]
      if missing:
        raise DataError(
            f"{where} lacks the model's column(s) "
            f"{', '.join(repr(n) for n in missing)} (it has: "
            f"{','.join(self.header)}); give every column the model was "
            "trained on.")
    if label_column in categorical_columns:
      raise ConfigError(
          f"--label_column={label_column} is also in --categorical_columns; "
          "a label is not a model input, so list it in only one.")
    self.label_index = (self.header.index(label_column) if label_column
                        else None)
    self.feature_indices = (
        [self.header.index(n) for n in feature_columns]
        if feature_columns is not None else
        [i for i in range(len(self.header)) if i != self.label_index])
    if not self.feature_indices:
      raise DataError(f"{where} has no column besides the label; add "
                      "feature columns.")
    self.feature_names = tuple(self.header[i] for i in self.feature_indices)
    categorical = set(categorical_columns)
    self.categorical = [self.header[i] in categorical
                        for i in self.feature_indices]
    self.vocabularies: Dict[int, Tuple[str, ...]] = {}
    self.class_names: Optional[Tuple[str, ...]] = None

  def fit(self, rows: Sequence[Sequence[str]]) -> None:
    """Collects the vocabularies and class names of the training rows."""
    for position, index in enumerate(self.feature_indices):
      if self.categorical[position]:
        self.vocabularies[position] = _vocabulary(
            row[index].strip() for row in rows)
    if self.label_index is not None:
      self.class_names = _vocabulary(row[self.label_index].strip()
                                     for row in rows)

  def encode(self, rows: Sequence[Sequence[str]], where: str,
             first_line: int = 2) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Rows -> `([N, D] float32 vectors, [N] int32 labels or None)`.

    Args:
      rows: the table's rows (strings), each as long as the header.
      where: the file, for error messages.
      first_line: the file line of the first row (the header is line 1).

    Raises:
      DataError: naming the file, line and column of the first bad value.
    """
    lookup = {position: {name: i for i, name in enumerate(vocabulary)}
              for position, vocabulary in self.vocabularies.items()}
    classes = ({name: i for i, name in enumerate(self.class_names)}
               if self.class_names is not None else None)
    x = np.zeros((len(rows), len(self.feature_indices)), np.float32)
    y = None if classes is None else np.zeros(len(rows), np.int32)
    for row_number, row in enumerate(rows):
      line = _line_of(row, first_line + row_number)
      for position, index in enumerate(self.feature_indices):
        value = row[index].strip()
        name = self.header[index]
        if value.lower() in _MISSING:
          raise DataError(
              f"{where} line {line} column {name!r} is empty or missing "
              f"({value!r}); tfvae does not impute: fill it in or drop the "
              "row.")
        if self.categorical[position]:
          if value not in lookup[position]:
            raise DataError(
                f"{where} line {line} column {name!r} holds category "
                f"{value!r}, which the training split does not have "
                f"(it has: {_preview(self.vocabularies[position])}); add it "
                "to the training data or map it to a known category.")
          x[row_number, position] = lookup[position][value]
        else:
          try:
            number = float(value)
          except ValueError:
            number = None
          if number is None or not np.isfinite(number):
            raise DataError(
                f"{where} line {line} column {name!r} holds {value!r}, not "
                "a finite number; fix the value, or list the column in "
                "--categorical_columns if it holds categories.")
          x[row_number, position] = number
      if classes is not None:
        label = row[self.label_index].strip()
        if label not in classes:
          raise DataError(
              f"{where} line {line} column "
              f"{self.header[self.label_index]!r} holds label {label!r}, "
              "which the training split does not have (it has: "
              f"{_preview(self.class_names)}); add it to the training data.")
        y[row_number] = classes[label]
    return x, y


def read_for_columns(path: str, columns, label_column: Optional[str] = None,
                     check_kinds: bool = True
                     ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
  """Reads a CSV file as a trained model's vectors (for scoring).

  Args:
    path: the `.csv` file, with a header naming at least the model's
      columns (any order; other columns are ignored).
    columns: the model's `tfvae.data.columns.Column`s.
    label_column: a column of 0/1 labels to return too, or None.
    check_kinds: also check binary columns hold 0 or 1 (the tabular
      likelihood needs it).

  Returns:
    `([N, D] float32 rows in the model's column order, [N] int labels or
    None)`.

  Raises:
    DataError: a missing column, a ragged row, a missing or non-numeric
      value, a category the training split did not have, a label not 0/1.
  """
  header, rows = read_table(path)
  names = [c.name for c in columns]
  if label_column is not None and label_column not in header:
    raise DataError(f"--labels={label_column}: {path} has no such column "
                    f"(it has: {','.join(header)}).")
  table = Table(header, [c.name for c in columns if c.kind == "categorical"],
                where=path, feature_columns=names)
  table.vocabularies = {i: c.categories for i, c in enumerate(columns)
                        if c.kind == "categorical"}
  x, _ = table.encode(rows, path)
  if check_kinds:
    columns_lib.check_values(x, columns, path,
                             lines=[row.line for row in rows])
  labels = None
  if label_column is not None:
    index = header.index(label_column)
    values = [row[index].strip() for row in rows]
    bad = [i for i, v in enumerate(values) if v not in ("0", "1")]
    if bad:
      raise DataError(
          f"{path} line {rows[bad[0]].line} column {label_column!r} holds "
          f"{values[bad[0]]!r}; --labels needs 0 (normal) or 1 (anomaly).")
    labels = np.array([int(v) for v in values], np.int32)
  return x, labels


class _Row(list):
  """A row that remembers its line in the file."""
  line = 0


def read_table(path: str) -> Tuple[Tuple[str, ...], List[_Row]]:
  """Reads a CSV file's header and rows, checking every row's length.

  Args:
    path: the `.csv` file.

  Returns:
    `(header, rows)`: column names, and rows of strings (blank lines are
    skipped; each row knows its file line as `.line`).

  Raises:
    DataError: an unreadable or empty file, a duplicate or empty column
      name, or a row with more or fewer values than the header.
  """
  try:
    with open(path, newline="", encoding="utf-8-sig") as f:
      lines = list(csv.reader(f))
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    raise DataError(f"{path} is not a readable CSV file "
                    f"({image_splits.describe_exception(e)}); save it as "
                    "UTF-8 CSV with a header row.") from e
  rows, header = [], None
  for number, values in enumerate(lines, start=1):
    if not values or all(not v.strip() for v in values):
      continue
    if header is None:
      header = tuple(v.strip() for v in values)
      duplicates = sorted({n for n in header if header.count(n) > 1})
      if "" in header or duplicates:
        raise DataError(
            f"{path} line {number}: the header has "
            f"{'an empty column name' if '' in header else 'duplicate column names ' + ', '.join(duplicates)}"
            "; give every column a distinct name.")
      continue
    if len(values) != len(header):
      raise DataError(
          f"{path} line {number} has {len(values)} values but the header "
          f"has {len(header)} columns; fix the row (quote values that "
          "contain commas).")
    row = _Row(values)
    row.line = number
    rows.append(row)
  if header is None:
    raise DataError(f"{path} is empty; write a header row and one row per "
                    "example.")
  if not rows:
    raise DataError(f"{path} has a header but no rows; add examples.")
  return header, rows


def _line_of(row, default):
  return getattr(row, "line", 0) or default


def _vocabulary(values) -> Tuple[str, ...]:
  """Sorted distinct values; numerically when they are all integers."""
  distinct = set(values)
  distinct.discard("")
  try:
    return tuple(sorted(distinct, key=int))
  except ValueError:
    return tuple(sorted(distinct))


def _preview(names, limit=8):
  shown = ", ".join(repr(n) for n in names[:limit])
  return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _hold_out(num_rows: int, fraction: float, where: str):
  """Row indices `(train, test)`, as `image_splits.hold_out_test` chooses."""
  indices = np.arange(num_rows)
  train, _, test, _ = image_splits.hold_out_test(indices, None, fraction,
                                                 where)
  return train, test
