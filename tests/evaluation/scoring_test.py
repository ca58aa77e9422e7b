"""Tests of `tfvae.evaluation.scoring`: AUROC, reading and writing scores.

The model is a stand-in with the attributes `read_examples` and `score` use;
the command line on a real export is tested in
`tests/integration/tabular_test.py`.
"""

import csv
import os

import numpy as np
from PIL import Image
import pytest

from tests.evaluation.auroc_reference import brute_force_auroc
from tfvae.data import columns as columns_lib
from tfvae.data.columns import Column
from tfvae.errors import DataError, TfvaeError
from tfvae.evaluation import scoring

COLUMNS = (Column("height", "continuous", mean=1.0, std=2.0),
           Column("smoker", "binary"),
           Column("colour", "categorical", ("blue", "green", "red")))


class FakeModel:
  """What `read_examples` and `score` read of a `LoadedModel`."""

  def __init__(self, data_shape, columns=None, likelihood="tabular"):
    self.data_shape = tuple(data_shape)
    self.path = "/models/fake/1"
    self.metadata = {"likelihood": likelihood,
                     "columns": columns_lib.to_dicts(columns)}
    self.calls = []

  def log_likelihood(self, x, num_samples):
    self.calls.append((len(x), num_samples))
    return -np.asarray(x, np.float32).reshape(len(x), -1).sum(axis=1)


def _write(path, text):
  with open(path, "w") as f:
    f.write(text)
  return str(path)


# ---- auroc ------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_auroc_equals_pairwise_count_with_ties(seed):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 2, 60)
  labels[:2] = [0, 1]
  # Few distinct values: many ties, within and across the classes.
  scores = np.round(rng.normal(size=60) + 0.7 * labels, 0)
  assert scoring.auroc(scores, labels) == pytest.approx(
      brute_force_auroc(scores, labels), abs=1e-12)


def test_auroc_perfect_reversed_and_tied():
  labels = np.array([0, 0, 1, 0, 1, 1])
  scores = np.array([0.1, 0.2, 5.0, 0.3, 4.0, 6.0])
  assert scoring.auroc(scores, labels) == 1.0
  assert scoring.auroc(-scores, labels) == 0.0
  assert scoring.auroc(np.ones(6), labels) == 0.5
  # Boolean labels and lists work too.
  assert scoring.auroc(list(scores), labels.astype(bool)) == 1.0


def test_auroc_hand_computation():
  # Positives 3 and 1; negatives 2 and 1: pairs (3>2, 3>1, 1<2, 1=1).
  assert scoring.auroc([3, 2, 1, 1], [1, 0, 1, 0]) == pytest.approx(0.625)


@pytest.mark.parametrize("labels", [[0, 0, 0], [1, 1, 1]])
def test_auroc_needs_both_classes(labels):
  with pytest.raises(DataError, match="both normal"):
    scoring.auroc([1.0, 2.0, 3.0], labels)


# ---- write_scores -----------------------------------------------------------


def test_write_scores_rows_in_input_order(tmp_path):
  examples = scoring.Examples(np.zeros((3, 1)), ["0", "1", "2"],
                              np.array([0, 1, 0]), "data.csv")
  path = str(tmp_path / "scores.csv")
  scoring.write_scores(path, examples, np.array([3.5, -1.25, 1e3]))
  with open(path, newline="") as f:
    rows = list(csv.reader(f))
  assert rows == [["id", "neg_log_likelihood", "label"],
                  ["0", "3.500000", "0"], ["1", "-1.250000", "1"],
                  ["2", "1000.000000", "0"]]
  assert os.listdir(tmp_path) == ["scores.csv"]


def test_write_scores_without_labels_replaces_old_file(tmp_path):
  path = _write(tmp_path / "scores.csv", "old,content\n" * 100)
  examples = scoring.Examples(np.zeros((2, 1)), ["a.png", "b.png"], None,
                              "folder")
  scoring.write_scores(path, examples, [1.0, 2.0])
  with open(path) as f:
    assert f.read().splitlines() == ["id,neg_log_likelihood",
                                     "a.png,1.000000", "b.png,2.000000"]


def test_write_scores_failure_keeps_old_file(tmp_path, monkeypatch):
  path = _write(tmp_path / "scores.csv", "old\n")
  examples = scoring.Examples(np.zeros((1, 1)), ["0"], None, "d")

  def fail(src, dst):
    raise OSError(28, "No space left on device")

  monkeypatch.setattr(scoring.os, "replace", fail)
  with pytest.raises(TfvaeError, match="--output=") as info:
    scoring.write_scores(path, examples, [1.0])
  assert "No space left" in str(info.value)
  with open(path) as f:
    assert f.read() == "old\n"
  assert os.listdir(tmp_path) == ["scores.csv"]


def test_write_scores_unwritable_path(tmp_path):
  path = str(tmp_path / "no" / "such" / "scores.csv")
  examples = scoring.Examples(np.zeros((1, 1)), ["0"], None, "d")
  with pytest.raises(TfvaeError, match="--output="):
    scoring.write_scores(path, examples, [1.0])
  assert os.listdir(tmp_path) == []


# ---- read_examples ----------------------------------------------------------


def test_read_csv_by_column_name(tmp_path):
  path = _write(tmp_path / "new.csv",
                "colour,extra,smoker,height,anomaly\n"
                "red,a,1,0.5,0\nblue,b,0,9.0,1\ngreen,c,1,-1,0\n")
  examples = scoring.read_examples(path, FakeModel((3,), COLUMNS), "anomaly")
  np.testing.assert_array_equal(examples.x, [[0.5, 1, 2], [9.0, 0, 0],
                                             [-1, 1, 1]])
  assert list(examples.ids) == ["0", "1", "2"]
  np.testing.assert_array_equal(examples.labels, [0, 1, 0])
  assert examples.source == path


def test_read_csv_unseen_category(tmp_path):
  path = _write(tmp_path / "new.csv", "height,smoker,colour\n1,0,pink\n")
  with pytest.raises(DataError, match=r"line 2 column 'colour' holds "
                     r"category 'pink'"):
    scoring.read_examples(path, FakeModel((3,), COLUMNS))


def test_read_csv_binary_column_out_of_range_names_the_line(tmp_path):
  path = _write(tmp_path / "new.csv", "height,smoker,colour\n1,0,red\n"
                "\n2,3,red\n")
  with pytest.raises(DataError) as info:
    scoring.read_examples(path, FakeModel((3,), COLUMNS))
  message = str(info.value)
  assert "\n" not in message
  assert path in message and "'smoker'" in message, message
  # Like every other bad value of a CSV file: the file line (4), which the
  # user can find, not the 0-based index of the data row (1).
  assert "line 4" in message, message


def test_read_csv_model_without_columns(tmp_path):
  # A Gaussian model on vectors: every column but the labels, in file order.
  path = _write(tmp_path / "new.csv", "a,y,b\n1,0,2\n3,1,4\n")
  model = FakeModel((2,), None, likelihood="gaussian")
  examples = scoring.read_examples(path, model, "y")
  np.testing.assert_array_equal(examples.x, [[1, 2], [3, 4]])
  np.testing.assert_array_equal(examples.labels, [0, 1])
  with pytest.raises(DataError, match="3 feature columns"):
    scoring.read_examples(path, model)


def test_read_csv_for_image_model(tmp_path):
  path = _write(tmp_path / "new.csv", "a\n1\n")
  with pytest.raises(DataError, match="takes images"):
    scoring.read_examples(path, FakeModel((4, 4, 1)))


def test_read_npz_vectors_and_labels(tmp_path):
  path = str(tmp_path / "new.npz")
  x = np.arange(6, dtype=np.float64).reshape(3, 2)
  np.savez(path, x=x, bad=np.array([0, 1, 0]))
  examples = scoring.read_examples(path, FakeModel((2,)), "bad")
  np.testing.assert_array_equal(examples.x, x)
  assert examples.x.dtype == np.float32
  np.testing.assert_array_equal(examples.labels, [0, 1, 0])
  np.savez(path, x=x, bad=np.array([0, 2, 0]))
  with pytest.raises(DataError, match="other than 0 and 1"):
    scoring.read_examples(path, FakeModel((2,)), "bad")
  with pytest.raises(DataError, match="missing"):
    scoring.read_examples(path, FakeModel((2,)), "missing")


def test_read_npz_uint8_images_are_rescaled(tmp_path):
  path = str(tmp_path / "new.npz")
  np.savez(path, x=np.full((2, 4, 4), 255, np.uint8))
  examples = scoring.read_examples(path, FakeModel((4, 4, 1)))
  assert examples.x.shape == (2, 4, 4, 1)
  np.testing.assert_array_equal(examples.x, 1.0)


def test_read_image_folder(tmp_path):
  folder = tmp_path / "images"
  folder.mkdir()
  for name, value in (("b.png", 255), ("a.png", 0), ("c.jpg", 128)):
    Image.fromarray(np.full((4, 5), value, np.uint8)).save(folder / name)
  _write(folder / "notes.txt", "not an image")
  examples = scoring.read_examples(str(folder), FakeModel((4, 5, 1)))
  assert list(examples.ids) == ["a.png", "b.png", "c.jpg"]
  assert examples.x.shape == (3, 4, 5, 1)
  np.testing.assert_allclose(examples.x[:, 0, 0, 0], [0, 1, 128 / 255],
                             atol=2 / 255)
  assert examples.labels is None


def test_read_image_folder_errors(tmp_path):
  folder = tmp_path / "images"
  folder.mkdir()
  with pytest.raises(DataError, match="no PNG or JPEG"):
    scoring.read_examples(str(folder), FakeModel((4, 4, 1)))
  Image.fromarray(np.zeros((6, 4), np.uint8)).save(folder / "x.png")
  with pytest.raises(DataError, match=r"x.png is 4x6 but the model takes "
                     r"4x4"):
    scoring.read_examples(str(folder), FakeModel((4, 4, 1)))
  with pytest.raises(DataError, match="--labels=y"):
    scoring.read_examples(str(folder), FakeModel((4, 4, 1)), "y")
  with pytest.raises(DataError, match="vectors"):
    scoring.read_examples(str(folder), FakeModel((3,), COLUMNS))


def test_read_missing_or_unknown_file(tmp_path):
  with pytest.raises(DataError, match="does not exist"):
    scoring.read_examples(str(tmp_path / "nope.csv"), FakeModel((3,)))
  path = _write(tmp_path / "data.json", "{}")
  with pytest.raises(DataError, match="neither a .csv nor a .npz"):
    scoring.read_examples(path, FakeModel((3,)))


# ---- score ------------------------------------------------------------------


def test_score_in_batches_keeps_order():
  model = FakeModel((2,))
  x = np.arange(20, dtype=np.float32).reshape(10, 2)
  scores = scoring.score(model, x, num_samples=7, batch_size=3)
  np.testing.assert_allclose(scores, x.sum(axis=1))
  assert scores.dtype == np.float64
  assert model.calls == [(3, 7), (3, 7), (3, 7), (1, 7)]


def test_score_not_finite():
  x = np.array([[1.0], [np.inf], [2.0]], np.float32)
  with pytest.raises(TfvaeError, match="example 1 is not finite"):
    scoring.score(FakeModel((1,)), x, 5)
