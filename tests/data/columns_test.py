"""Tests of `tfvae.data.columns`: column kinds, statistics and checks."""

import json

import numpy as np
import pytest

from tfvae.data import columns as columns_lib
from tfvae.data.columns import Column
from tfvae.errors import DataError


def _train_x():
  """`[6, 4]`: continuous, binary, category ids (3 categories), constant."""
  return np.array([[1.0, 0, 2, 5.0],
                   [2.0, 1, 0, 5.0],
                   [4.0, 1, 1, 5.0],
                   [-3.0, 0, 2, 5.0],
                   [0.5, 0, 0, 5.0],
                   [7.5, 1, 1, 5.0]], np.float32)


def test_fit_kinds_and_statistics():
  x = _train_x()
  names = ("height", "smoker", "colour", "constant")
  columns = columns_lib.fit(x, names, {2: ("blue", "green", "red")})
  assert [c.name for c in columns] == list(names)
  assert [c.kind for c in columns] == ["continuous", "binary", "categorical",
                                       "continuous"]
  values = x[:, 0].astype(np.float64)
  assert columns[0].mean == pytest.approx(values.mean(), rel=1e-12)
  # The population standard deviation (numpy's default, ddof=0).
  assert columns[0].std == pytest.approx(
      np.sqrt(np.mean((values - values.mean())**2)), rel=1e-12)
  assert columns[1].categories == () and columns[1].std == 1.0
  assert columns[2].categories == ("blue", "green", "red")
  assert (columns[2].mean, columns[2].std) == (0.0, 1.0)
  # A constant column keeps its mean and std 1: nothing is divided by zero.
  assert columns[3].mean == pytest.approx(5.0)
  assert columns[3].std == 1.0


def test_fit_vocabulary_wins_over_binary_values():
  x = np.array([[0.0], [1.0], [1.0]])
  (column,) = columns_lib.fit(x, vocabularies={0: ("no", "yes")})
  assert column.kind == "categorical"
  assert column.categories == ("no", "yes")


def test_fit_integer_categories_become_strings():
  x = np.array([[0.0], [1.0], [2.0]])
  (column,) = columns_lib.fit(x, vocabularies={0: (3, 7, 10)})
  assert column.categories == ("3", "7", "10")


def test_fit_nearly_binary_column_is_continuous():
  x = np.array([[0.0], [1.0], [0.5]])
  (column,) = columns_lib.fit(x)
  assert column.kind == "continuous"
  assert column.mean == pytest.approx(0.5)
  assert column.std == pytest.approx(np.std([0.0, 1.0, 0.5]))


def test_fit_default_names():
  columns = columns_lib.fit(np.zeros((3, 3)) + [[0, 2, 3]])
  assert [c.name for c in columns] == ["x0", "x1", "x2"]
  assert columns_lib.default_names(2) == ("x0", "x1")


def test_num_parameters_and_features():
  assert Column("a").num_parameters == 1
  assert Column("b", "binary").num_parameters == 1
  c = Column("c", "categorical", ("p", "q", "r", "s"))
  assert c.num_parameters == 4 and c.num_features == 4


def _columns():
  return (Column("height", "continuous", mean=1.0, std=2.0),
          Column("smoker", "binary"),
          Column("colour", "categorical", ("blue", "green", "red")))


def test_check_values_accepts_valid_rows():
  x = np.array([[0.3, 0, 0], [-1e6, 1, 2], [5.0, 1, 1]], np.float32)
  columns_lib.check_values(x, _columns(), "the data")


@pytest.mark.parametrize("row,column,value,needle", [
    (1, 1, 2.0, "0 or 1"),
    (2, 1, 0.5, "0 or 1"),
    (0, 2, 3.0, "0..2"),
    (2, 2, -1.0, "0..2"),
    (1, 2, 1.5, "0..2"),
    (2, 0, np.nan, "finite"),
    (0, 0, np.inf, "finite"),
])
def test_check_values_names_row_and_column(row, column, value, needle):
  x = np.array([[0.3, 0, 0], [-1.0, 1, 2], [5.0, 1, 1]], np.float32)
  x[row, column] = value
  with pytest.raises(DataError) as info:
    columns_lib.check_values(x, _columns(), "scores.csv")
  message = str(info.value)
  assert "\n" not in message
  assert message.startswith(f"scores.csv row {row} column "
                            f"{_columns()[column].name!r}"), message
  assert needle in message, message


def test_check_values_reports_first_bad_row():
  x = np.array([[0.3, 0, 0], [-1.0, 7, 2], [5.0, 9, 1]], np.float32)
  with pytest.raises(DataError, match=r"row 1 column 'smoker' holds 7"):
    columns_lib.check_values(x, _columns(), "data")


@pytest.mark.parametrize("shape", [(4, 2), (4, 4), (4,), (2, 3, 1)])
def test_check_values_wrong_shape(shape):
  with pytest.raises(DataError) as info:
    columns_lib.check_values(np.zeros(shape, np.float32), _columns(), "d.npz")
  message = str(info.value)
  assert message.startswith("d.npz has shape")
  assert "3 columns" in message and "height, smoker, colour" in message


def test_to_dicts_from_dicts_round_trip_through_json():
  columns = _columns() + (Column("n", "continuous", mean=-0.25, std=3.5),)
  dicts = columns_lib.to_dicts(columns)
  assert dicts[2]["categories"] == ["blue", "green", "red"]
  restored = columns_lib.from_dicts(json.loads(json.dumps(dicts)))
  assert restored == columns
  assert isinstance(restored, tuple)
  assert isinstance(restored[2].categories, tuple)
  assert columns_lib.to_dicts(None) is None
  assert columns_lib.from_dicts(None) is None


def test_from_dicts_without_categories():
  restored = columns_lib.from_dicts([{"name": "a", "kind": "binary"}])
  assert restored == (Column("a", "binary"),)
