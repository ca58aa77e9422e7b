"""Tests of `tfvae.data.from_arrays` and of vector data in `.npz` files."""

import numpy as np
import pytest

import tfvae.data
from tfvae.config import DataConfig
from tfvae.data import image_splits
from tfvae.data import pipeline
from tfvae.data import sources
from tfvae.errors import DataError


def test_images_hold_out_twenty_percent():
  x = np.arange(10 * 4 * 4, dtype=np.uint8).reshape(10, 4, 4)
  y = np.arange(10) % 3
  splits = tfvae.data.from_arrays(x, y)
  assert splits.train_x.shape == (8, 4, 4, 1)
  assert splits.test_x.shape == (2, 4, 4, 1)
  assert splits.train_x.dtype == np.uint8
  assert not splits.is_vector
  # Every example lands in exactly one split, with its own label.
  first_pixels = np.concatenate([splits.train_x[:, 0, 0, 0],
                                 splits.test_x[:, 0, 0, 0]]) // 16
  assert sorted(first_pixels.tolist()) == list(range(10))
  np.testing.assert_array_equal(splits.train_y,
                                (splits.train_x[:, 0, 0, 0] // 16) % 3)
  np.testing.assert_array_equal(splits.test_y,
                                (splits.test_x[:, 0, 0, 0] // 16) % 3)
  assert splits.num_classes == 3
  # The same split every time.
  again = tfvae.data.from_arrays(x, y)
  np.testing.assert_array_equal(again.test_x, splits.test_x)


def test_vectors_hold_out_and_names():
  x = np.stack([np.arange(20.0), -np.arange(20.0)], axis=1)
  splits = tfvae.data.from_arrays(x, column_names=["a", "b"])
  assert splits.is_vector
  assert splits.train_x.dtype == np.float32
  assert splits.train_x.shape == (16, 2) and splits.test_x.shape == (4, 2)
  assert splits.column_names == ("a", "b")
  assert splits.train_y is None and splits.num_classes is None
  rows = np.concatenate([splits.train_x, splits.test_x])
  np.testing.assert_array_equal(rows[:, 1], -rows[:, 0])
  assert sorted(rows[:, 0].tolist()) == list(range(20))


def test_test_fraction():
  splits = tfvae.data.from_arrays(np.zeros((10, 3)), test_fraction=0.5)
  assert len(splits.train_x) == 5 and len(splits.test_x) == 5


def test_explicit_test_split_is_used_as_is():
  x_train = np.random.default_rng(0).normal(size=(6, 3))
  x_test = np.random.default_rng(1).normal(size=(2, 3))
  splits = tfvae.data.from_arrays(x_train, np.array([0, 1, 0, 1, 0, 1]),
                                  x_test, np.array([1, 2]))
  np.testing.assert_array_equal(splits.train_x, x_train.astype(np.float32))
  np.testing.assert_array_equal(splits.test_x, x_test.astype(np.float32))
  np.testing.assert_array_equal(splits.test_y, [1, 2])
  assert splits.num_classes == 3


def test_colour_images_and_floats():
  x = np.random.default_rng(0).random((5, 3, 3, 3))
  splits = tfvae.data.from_arrays(x, x_test=x[:2])
  assert splits.train_x.shape == (5, 3, 3, 3)
  assert splits.train_x.dtype == np.float32


@pytest.mark.parametrize("kwargs,needle", [
    ({"x_train": np.zeros(5)}, "shape [5]"),
    ({"x_train": np.zeros((5, 2, 2, 2, 2))}, "shape [5, 2, 2, 2, 2]"),
    ({"x_train": np.zeros((5, 0))}, "at least one column"),
    ({"x_train": np.array([[1.0, np.nan], [0, 0]])}, "NaN"),
    ({"x_train": np.array([["a", "b"], ["c", "d"]])}, "dtype"),
    ({"x_train": np.zeros((5, 2)), "y_train": np.zeros(4, np.int64)},
     "4 labels for 5"),
    ({"x_train": np.zeros((5, 2)), "y_train": np.zeros(5)},
     "integer class ids"),
    ({"x_train": np.zeros((5, 2)), "x_test": np.zeros((2, 3))},
     "train examples are 2 float32 but test examples are 3 float32"),
    ({"x_train": np.zeros((5, 2)), "y_train": np.zeros(5, np.int64),
      "x_test": np.zeros((2, 2))}, "only the train split has labels"),
    ({"x_train": np.zeros((5, 2)), "column_names": ["a"]},
     "1 column_names"),
    ({"x_train": np.zeros((5, 4, 4)), "column_names": ["a"]},
     "1 column_names"),
    ({"x_train": np.zeros((1, 2))}, "at least 2"),
])
def test_bad_arrays(kwargs, needle):
  with pytest.raises(DataError) as info:
    tfvae.data.from_arrays(**kwargs)
  message = str(info.value)
  assert needle in message, message
  assert "\n" not in message


def test_npz_vectors_with_gaussian_likelihood(tmp_path):
  rng = np.random.default_rng(0)
  x = rng.normal(loc=[10.0, -5.0, 0.0], scale=[3.0, 0.5, 1.0], size=(50, 3))
  path = str(tmp_path / "vectors.npz")
  np.savez(path, x=x)
  splits = sources.load_splits(DataConfig(dataset="npz", data_dir=path,
                                          download=False))
  assert splits.is_vector
  assert splits.train_x.shape == (40, 3) and splits.test_x.shape == (10, 3)
  data = pipeline.prepare(splits, 0.1, "gaussian")
  assert data.data_shape == (3,)
  assert [c.name for c in data.columns] == ["x0", "x1", "x2"]
  assert [c.kind for c in data.columns] == ["continuous"] * 3
  np.testing.assert_allclose([c.mean for c in data.columns],
                             data.train_x.mean(axis=0), rtol=1e-5)
  np.testing.assert_allclose([c.std for c in data.columns],
                             data.train_x.std(axis=0), rtol=1e-5)


def test_npz_vectors_are_rejected_by_bernoulli_out_of_range(tmp_path):
  path = str(tmp_path / "vectors.npz")
  np.savez(path, x=np.linspace(-2, 2, 20).reshape(10, 2))
  splits = sources.load_splits(DataConfig(dataset="npz", data_dir=path,
                                          download=False))
  with pytest.raises(DataError, match="--likelihood=gaussian"):
    pipeline.prepare(splits, 0.1, "bernoulli")


def test_tabular_on_images_is_rejected():
  splits = tfvae.data.from_arrays(np.zeros((10, 4, 4), np.uint8))
  with pytest.raises(DataError, match="--likelihood=tabular"):
    pipeline.prepare(splits, 0.1, "tabular")


def test_tabular_checks_test_values_against_training_columns():
  # Column 1 is binary in training; the test split has a 2 in it.
  train = np.array([[0.5, 0], [1.5, 1], [2.5, 1], [3.5, 0]])
  test = np.array([[0.0, 1], [1.0, 2]])
  splits = image_splits.make_splits(train.astype(np.float32), None,
                                    test.astype(np.float32), None, "t")
  with pytest.raises(DataError, match=r"row 1 column 'x1' holds 2"):
    pipeline.prepare(splits, 0.0, "tabular")
