"""Tests of `tfvae.data.csv_files`: the `csv` source and scoring-time reads.

Every test writes its own small CSV files under `tmp_path`.
"""

import os

import numpy as np
import pytest

from tfvae.config import DataConfig
from tfvae.data import csv_files
from tfvae.data import image_splits
from tfvae.data import pipeline
from tfvae.data import sources
from tfvae.data.columns import Column
from tfvae.errors import ConfigError, DataError


def _write(path, text):
  path = str(path)
  with open(path, "w") as f:
    f.write(text)
  return path


def _config(data_dir, **kwargs):
  return DataConfig(dataset="csv", data_dir=str(data_dir), download=False,
                    **kwargs)


def _table(num_rows):
  """CSV text: id, a float, a string category, a label; row i has id i."""
  colours = ("red", "green", "blue")
  lines = ["id,value,colour,kind"]
  for i in range(num_rows):
    lines.append(f"{i},{i * 0.5 - 3:.2f},{colours[i % 3]},"
                 f"{'cat' if i % 2 else 'dog'}")
  return "\n".join(lines) + "\n"


def _one_line(error):
  message = str(error.value)
  assert "\n" not in message, message
  return message


# ---- load_csv ---------------------------------------------------------------


def test_single_file_holds_out_test_split(tmp_path):
  path = _write(tmp_path / "table.csv", _table(20))
  splits = csv_files.load_csv(_config(path, categorical_columns=("colour",),
                                      label_column="kind",
                                      test_fraction=0.25))
  assert isinstance(splits, image_splits.Splits)
  assert splits.is_vector
  assert splits.column_names == ("id", "value", "colour")
  assert splits.train_x.dtype == np.float32
  assert splits.train_x.shape == (15, 3) and splits.test_x.shape == (5, 3)
  ids = np.concatenate([splits.train_x[:, 0], splits.test_x[:, 0]])
  assert sorted(ids.astype(int).tolist()) == list(range(20))
  # The held-out rows are those `hold_out_test` picks, in file order.
  _, _, expected_test, _ = image_splits.hold_out_test(np.arange(20), None,
                                                      0.25, path)
  np.testing.assert_array_equal(splits.test_x[:, 0], expected_test)
  # Sorted vocabularies: colours and class names.
  assert splits.vocabularies == {2: ("blue", "green", "red")}
  assert splits.class_names == ("cat", "dog")
  assert splits.num_classes == 2
  for x, y in ((splits.train_x, splits.train_y),
               (splits.test_x, splits.test_y)):
    i = x[:, 0].astype(int)
    np.testing.assert_allclose(x[:, 1], np.round(i * 0.5 - 3, 2), rtol=1e-6)
    colour = np.array(["red", "green", "blue"])[i % 3]
    np.testing.assert_array_equal(
        x[:, 2], [("blue", "green", "red").index(c) for c in colour])
    np.testing.assert_array_equal(y, np.where(i % 2, 0, 1))
    assert y.dtype == np.int32


def test_same_split_every_time(tmp_path):
  path = _write(tmp_path / "table.csv", _table(30))
  config = _config(path, categorical_columns=("colour", "kind"))
  first = csv_files.load_csv(config)
  second = csv_files.load_csv(config)
  np.testing.assert_array_equal(first.test_x, second.test_x)
  assert first.train_y is None and first.class_names is None
  assert first.vocabularies == {2: ("blue", "green", "red"),
                                3: ("cat", "dog")}


def test_folder_with_train_and_test(tmp_path):
  _write(tmp_path / "train.csv", "a,b,c\n1,2,x\n3,4,y\n5,6.5,x\n")
  _write(tmp_path / "test.csv", "a,b,c\n7,8,y\n")
  splits = csv_files.load_csv(_config(tmp_path, categorical_columns=("c",)))
  np.testing.assert_array_equal(splits.train_x,
                                [[1, 2, 0], [3, 4, 1], [5, 6.5, 0]])
  np.testing.assert_array_equal(splits.test_x, [[7, 8, 1]])
  assert splits.vocabularies == {2: ("x", "y")}
  assert splits.source == str(tmp_path)


def test_folder_with_train_only_holds_out(tmp_path):
  _write(tmp_path / "train.csv", _table(10))
  splits = csv_files.load_csv(_config(
      tmp_path, categorical_columns=("colour", "kind"), test_fraction=0.2))
  assert len(splits.train_x) == 8 and len(splits.test_x) == 2


def test_registered_as_dataset_csv(tmp_path):
  path = _write(tmp_path / "t.csv", "a,b\n1,2\n3,4\n5,6\n")
  splits = sources.load_splits(_config(path))
  assert splits.column_names == ("a", "b")
  assert len(splits.train_x) + len(splits.test_x) == 3


def test_integer_categories_sort_numerically(tmp_path):
  _write(tmp_path / "train.csv", "size,w\n10,1\n2,1\n1,0\n2,3\n")
  _write(tmp_path / "test.csv", "size,w\n1,0\n10,2\n")
  splits = csv_files.load_csv(_config(tmp_path, categorical_columns=("size",)))
  assert splits.vocabularies == {0: ("1", "2", "10")}
  np.testing.assert_array_equal(splits.train_x[:, 0], [2, 1, 0, 1])
  np.testing.assert_array_equal(splits.test_x[:, 0], [0, 2])


def test_integer_labels_sort_numerically(tmp_path):
  _write(tmp_path / "train.csv", "v,label\n0.5,10\n1.5,9\n2.5,10\n")
  _write(tmp_path / "test.csv", "v,label\n3.5,9\n")
  splits = csv_files.load_csv(_config(tmp_path, label_column="label"))
  assert splits.class_names == ("9", "10")
  np.testing.assert_array_equal(splits.train_y, [1, 0, 1])
  np.testing.assert_array_equal(splits.test_y, [0])
  # The label is not a feature.
  assert splits.column_names == ("v",)
  assert splits.train_x.shape == (3, 1)


def test_spaces_and_blank_lines(tmp_path):
  path = _write(tmp_path / "t.csv",
                " a , b \n\n 1 , x \n 2 ,y\n\n3, x \n")
  splits = csv_files.load_csv(_config(path, categorical_columns=("b",),
                                      test_fraction=0.34))
  assert splits.column_names == ("a", "b")
  x = np.concatenate([splits.train_x, splits.test_x])
  assert sorted(map(tuple, x.tolist())) == [(1, 0), (2, 1), (3, 0)]


def test_quoted_values_with_commas(tmp_path):
  _write(tmp_path / "train.csv",
         'n,city\n1,"Paris, France"\n2,"Rome, Italy"\n')
  _write(tmp_path / "test.csv", 'n,city\n3,"Paris, France"\n')
  splits = csv_files.load_csv(_config(tmp_path, categorical_columns=("city",)))
  assert splits.vocabularies == {1: ("Paris, France", "Rome, Italy")}
  np.testing.assert_array_equal(splits.test_x, [[3, 0]])


# ---- load_csv errors --------------------------------------------------------


def test_ragged_row_names_file_and_line(tmp_path):
  path = _write(tmp_path / "t.csv", "a,b,c\n1,2,3\n\n4,5\n6,7,8\n")
  with pytest.raises(DataError) as info:
    csv_files.load_csv(_config(path))
  message = _one_line(info)
  # Line 4: the blank line 3 counts.
  assert message.startswith(f"{path} line 4 has 2 values"), message
  assert "3 columns" in message


def test_row_too_long(tmp_path):
  path = _write(tmp_path / "t.csv", "a,b\n1,2\n3,4,5\n")
  with pytest.raises(DataError, match=r"line 3 has 3 values"):
    csv_files.load_csv(_config(path))


@pytest.mark.parametrize("value", ["abc", "1.2.3", "inf", "-inf", "1e999"])
def test_non_numeric_value_names_line_and_column(tmp_path, value):
  path = _write(tmp_path / "t.csv", f"a,b\n1,2\n3,4\n5,{value}\n7,8\n")
  with pytest.raises(DataError) as info:
    csv_files.load_csv(_config(path))
  message = _one_line(info)
  assert message.startswith(f"{path} line 4 column 'b' holds {value!r}"), (
      message)
  assert "--categorical_columns" in message


@pytest.mark.parametrize("value", ["", "NA", "nan", "NaN", "?", " "])
@pytest.mark.parametrize("column", ["b", "c"])
def test_missing_value_names_line_and_column(tmp_path, value, column):
  rows = [["1", "2", "x"], ["3", "4", "y"], ["5", "6", "x"]]
  rows[1]["abc".index(column)] = value
  text = "a,b,c\n" + "\n".join(",".join(r) for r in rows) + "\n"
  path = _write(tmp_path / "t.csv", text)
  with pytest.raises(DataError) as info:
    csv_files.load_csv(_config(path, categorical_columns=("c",)))
  message = _one_line(info)
  assert message.startswith(f"{path} line 3 column {column!r} is empty or "
                            "missing"), message
  assert "impute" in message


def test_unseen_category_in_test_file(tmp_path):
  _write(tmp_path / "train.csv", "a,c\n1,x\n2,y\n")
  test_path = _write(tmp_path / "test.csv", "a,c\n3,y\n4,z\n")
  with pytest.raises(DataError) as info:
    csv_files.load_csv(_config(tmp_path, categorical_columns=("c",)))
  message = _one_line(info)
  assert message.startswith(f"{test_path} line 3 column 'c' holds category "
                            "'z'"), message
  assert "'x', 'y'" in message


def test_vocabulary_comes_from_the_training_rows_of_one_file(tmp_path):
  _, _, held_out, _ = image_splits.hold_out_test(np.arange(10), None, 0.2,
                                                 "x")
  rare = int(held_out[0])
  lines = ["a,c"] + [f"{i},{'rare' if i == rare else 'common'}"
                     for i in range(10)]
  path = _write(tmp_path / "t.csv", "\n".join(lines) + "\n")
  with pytest.raises(DataError) as info:
    csv_files.load_csv(_config(path, categorical_columns=("c",),
                               test_fraction=0.2))
  # Row i is on line i + 2 (the header is line 1).
  assert _one_line(info).startswith(
      f"{path} line {rare + 2} column 'c' holds category 'rare'")


def test_test_value_that_breaks_a_training_column_names_the_line(tmp_path):
  # Column 'b' is 0/1 in every training row, hence binary; one held-out row
  # holds 2. The message must lead to the row in the file: its line.
  _, _, held_out, _ = image_splits.hold_out_test(np.arange(10), None, 0.2,
                                                 "x")
  odd = int(held_out[-1])
  lines = ["a,b"] + [f"{i},{2 if i == odd else i % 2}" for i in range(10)]
  path = _write(tmp_path / "t.csv", "\n".join(lines) + "\n")
  splits = csv_files.load_csv(_config(path, test_fraction=0.2))
  with pytest.raises(DataError) as info:
    pipeline.prepare(splits, 0.0, "tabular")
  message = _one_line(info)
  assert path in message and "'b'" in message, message
  assert f"line {odd + 2}" in message, message


def test_unseen_label_in_test_file(tmp_path):
  _write(tmp_path / "train.csv", "a,k\n1,p\n2,q\n")
  test_path = _write(tmp_path / "test.csv", "a,k\n3,r\n")
  with pytest.raises(DataError) as info:
    csv_files.load_csv(_config(tmp_path, label_column="k"))
  message = _one_line(info)
  assert message.startswith(f"{test_path} line 2 column 'k' holds label "
                            "'r'"), message


@pytest.mark.parametrize("flag,kwargs", [
    ("categorical_columns", {"categorical_columns": ("colour", "shape")}),
    ("label_column", {"label_column": "klass"}),
])
def test_named_column_not_in_header(tmp_path, flag, kwargs):
  path = _write(tmp_path / "t.csv", _table(6))
  with pytest.raises(ConfigError) as info:
    csv_files.load_csv(_config(path, **kwargs))
  message = _one_line(info)
  assert message.startswith(f"--{flag}="), message
  assert path in message
  missing = "'shape'" if flag == "categorical_columns" else "'klass'"
  assert missing in message and "id,value,colour,kind" in message


def test_label_also_categorical(tmp_path):
  path = _write(tmp_path / "t.csv", _table(6))
  with pytest.raises(ConfigError, match="--label_column=kind"):
    csv_files.load_csv(_config(path, categorical_columns=("kind",),
                               label_column="kind"))


@pytest.mark.parametrize("text,needle", [
    ("", "is empty"),
    ("\n\n", "is empty"),
    ("a,b\n", "no rows"),
])
def test_empty_file(tmp_path, text, needle):
  path = _write(tmp_path / "t.csv", text)
  with pytest.raises(DataError) as info:
    csv_files.load_csv(_config(path))
  message = _one_line(info)
  assert message.startswith(path) and needle in message, message


@pytest.mark.parametrize("header", ["a,a,b", "a,,b"])
def test_bad_header(tmp_path, header):
  path = _write(tmp_path / "t.csv", f"{header}\n1,2,3\n4,5,6\n")
  with pytest.raises(DataError, match=r"line 1: the header"):
    csv_files.load_csv(_config(path))


def test_test_file_with_other_header(tmp_path):
  _write(tmp_path / "train.csv", "a,b\n1,2\n3,4\n")
  test_path = _write(tmp_path / "test.csv", "b,a\n1,2\n")
  with pytest.raises(DataError) as info:
    csv_files.load_csv(_config(tmp_path))
  assert test_path in _one_line(info)


def test_missing_data_dir(tmp_path):
  with pytest.raises(ConfigError, match="does not exist"):
    csv_files.load_csv(_config(tmp_path / "nope.csv"))
  with pytest.raises(ConfigError, match="--data_dir"):
    csv_files.load_csv(DataConfig(dataset="csv"))


def test_folder_without_train_csv(tmp_path):
  _write(tmp_path / "test.csv", "a\n1\n")
  with pytest.raises(DataError, match="train.csv"):
    csv_files.load_csv(_config(tmp_path))


def test_only_a_label_column(tmp_path):
  path = _write(tmp_path / "t.csv", "k\na\nb\n")
  with pytest.raises(DataError, match="no column besides the label"):
    csv_files.load_csv(_config(path, label_column="k"))


# ---- read_for_columns -------------------------------------------------------

_MODEL_COLUMNS = (Column("height", "continuous", mean=1.0, std=2.0),
                  Column("smoker", "binary"),
                  Column("colour", "categorical", ("blue", "green", "red")))


def test_read_for_columns_any_order_extra_ignored(tmp_path):
  path = _write(tmp_path / "new.csv",
                "note,colour,anomaly,height,smoker\n"
                "hi,red,0,1.5,1\n"
                "there,blue,1,-2,0\n"
                "x,green,0,3.25,1\n")
  x, labels = csv_files.read_for_columns(path, _MODEL_COLUMNS, "anomaly")
  assert x.dtype == np.float32
  np.testing.assert_array_equal(x, [[1.5, 1, 2], [-2, 0, 0], [3.25, 1, 1]])
  np.testing.assert_array_equal(labels, [0, 1, 0])
  x_only, none = csv_files.read_for_columns(path, _MODEL_COLUMNS)
  np.testing.assert_array_equal(x_only, x)
  assert none is None


def test_read_for_columns_unseen_category(tmp_path):
  path = _write(tmp_path / "new.csv",
                "height,smoker,colour\n1,0,red\n2,1,purple\n")
  with pytest.raises(DataError) as info:
    csv_files.read_for_columns(path, _MODEL_COLUMNS)
  message = _one_line(info)
  assert message.startswith(f"{path} line 3 column 'colour' holds category "
                            "'purple'"), message


def test_read_for_columns_missing_model_column(tmp_path):
  path = _write(tmp_path / "new.csv", "height,colour\n1,red\n")
  with pytest.raises(DataError) as info:
    csv_files.read_for_columns(path, _MODEL_COLUMNS)
  message = _one_line(info)
  assert path in message and "'smoker'" in message


def test_read_for_columns_missing_label_column(tmp_path):
  path = _write(tmp_path / "new.csv", "height,smoker,colour\n1,0,red\n")
  with pytest.raises(DataError, match=r"--labels=anomaly"):
    csv_files.read_for_columns(path, _MODEL_COLUMNS, "anomaly")


def test_read_for_columns_label_not_0_or_1(tmp_path):
  path = _write(tmp_path / "new.csv",
                "height,smoker,colour,y\n1,0,red,0\n\n2,1,blue,yes\n")
  with pytest.raises(DataError) as info:
    csv_files.read_for_columns(path, _MODEL_COLUMNS, "y")
  assert _one_line(info).startswith(f"{path} line 4 column 'y' holds 'yes'")


@pytest.mark.parametrize("row,needle", [
    ("1,0", "line 3 has 2 values"),
    ("1,0,", "line 3 column 'colour' is empty"),
    ("one,0,red", "line 3 column 'height' holds 'one'"),
])
def test_read_for_columns_bad_rows(tmp_path, row, needle):
  path = _write(tmp_path / "new.csv",
                f"height,smoker,colour\n1,0,red\n{row}\n")
  with pytest.raises(DataError) as info:
    csv_files.read_for_columns(path, _MODEL_COLUMNS)
  message = _one_line(info)
  assert message.startswith(f"{path} {needle}"), message


def test_read_table_lines(tmp_path):
  path = _write(tmp_path / "t.csv", "a,b\n\n1,2\n\n\n3,4\n")
  header, rows = csv_files.read_table(path)
  assert header == ("a", "b")
  assert [list(r) for r in rows] == [["1", "2"], ["3", "4"]]
  assert [r.line for r in rows] == [3, 6]


def test_read_table_not_utf8(tmp_path):
  path = str(tmp_path / "t.csv")
  with open(path, "wb") as f:
    f.write(b"a,b\n\xff\xfe,1\n")
  with pytest.raises(DataError, match="not a readable CSV"):
    csv_files.read_table(path)


def test_utf8_bom_header(tmp_path):
  path = str(tmp_path / "t.csv")
  with open(path, "wb") as f:
    f.write("\ufeffa,b\n1,2\n3,4\n".encode("utf-8"))
  header, _ = csv_files.read_table(path)
  assert header == ("a", "b")
  assert os.path.getsize(path) > 0
