"""Tests of `tfvae.evaluation.tabular`: per-column errors and the baseline."""

import math

import numpy as np
import pytest

from tfvae.data.columns import Column
from tfvae.evaluation import tabular

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
COLUMNS = (Column("height", "continuous", mean=0.0, std=1.0),
           Column("smoker", "binary"),
           Column("colour", "categorical", ("blue", "green", "red")))


def test_column_errors_hand_computation():
  x = np.array([[1.0, 1, 0], [2.0, 0, 2], [3.0, 1, 1], [4.0, 0, 2]])
  reconstruction = np.array([[1.5, 0.9, 0], [2.0, 0.6, 2], [1.0, 0.4, 2],
                             [4.0, 0.1, 2]])
  errors = tabular.column_errors(x, reconstruction, COLUMNS)
  assert list(errors) == ["height", "smoker", "colour"]
  # Squared errors 0.25, 0, 4, 0.
  assert errors["height"] == {"kind": "continuous", "metric": "rmse",
                              "value": pytest.approx(math.sqrt(4.25 / 4))}
  # Thresholded at 0.5: 1, 1, 0, 0 against 1, 0, 1, 0.
  assert errors["smoker"] == {"kind": "binary", "metric": "error_rate",
                              "value": pytest.approx(0.5)}
  assert errors["colour"] == {"kind": "categorical", "metric": "error_rate",
                              "value": pytest.approx(0.25)}


def test_column_errors_perfect_reconstruction():
  x = np.array([[0.5, 1, 2], [-3.0, 0, 0]])
  errors = tabular.column_errors(x, x, COLUMNS)
  assert all(e["value"] == 0.0 for e in errors.values())


def test_trivial_nll_hand_computation():
  train = np.array([[1.0, 1, 0], [3.0, 1, 0], [1.0, 0, 2], [3.0, 1, 0]])
  test = np.array([[2.0, 1, 2], [5.0, 0, 1]])
  # height: mean 2, std 1; smoker: p = 3/4; colour counts (3, 0, 1) plus
  # 1/2 each over 4 + 3/2.
  probs = np.array([3.5, 0.5, 1.5]) / 5.5
  first = (-HALF_LOG_2PI + math.log(0.75) + math.log(probs[2]))
  second = (-0.5 * 9 - HALF_LOG_2PI + math.log(0.25) + math.log(probs[1]))
  value = tabular.trivial_nll(train, test, COLUMNS)
  assert value == pytest.approx(-(first + second) / 2, rel=1e-9)


def test_trivial_nll_binary_frequency_is_clipped():
  # An all-ones binary column has p clipped to 1 - 1e-6, so a 0 is finite.
  columns = (Column("b", "binary"),)
  train = np.array([[1.0], [1.0]])
  test = np.array([[0.0], [1.0]])
  expected = -(math.log(1e-6) + math.log1p(-1e-6)) / 2
  assert tabular.trivial_nll(train, test, columns) == pytest.approx(
      expected, rel=1e-6)


def test_trivial_nll_matches_a_sampled_estimate():
  # The expected NLL of N(m, s) data under N(m, s) is log s + (1 + log 2pi)/2.
  rng = np.random.default_rng(0)
  train = rng.normal(10.0, 3.0, size=(20000, 1))
  test = rng.normal(10.0, 3.0, size=(20000, 1))
  value = tabular.trivial_nll(train, test, (Column("a"),))
  assert value == pytest.approx(math.log(3.0) + 0.5 + HALF_LOG_2PI,
                                abs=0.02)
