"""Tests of `tfvae.training.experiment.trivial_nll`, the baseline NLL."""

import math

import numpy as np
import pytest

from tfvae.training.experiment import trivial_nll

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def test_bernoulli_binarized_hand_computation():
  # Two 1x2 training images: pixel means 0.5 and 1.0 (clipped to 1 - 1e-6).
  train = np.array([[[[0], [255]]], [[[255], [255]]]], np.uint8)
  test = np.array([[[[255], [0]]], [[[102], [255]]]], np.uint8)
  first = -(math.log(0.5) + math.log(1e-6))
  second = -(0.4 * math.log(0.5) + 0.6 * math.log(0.5)
             + 1.0 * math.log(1 - 1e-6))
  value = trivial_nll(train, test, binarized=True, likelihood="bernoulli")
  assert value == pytest.approx((first + second) / 2, rel=1e-6)


def test_bernoulli_unit_floats_match_uint8():
  train = np.array([[[[0.25], [1.0]]], [[[0.75], [0.0]]]], np.float32)
  test = np.array([[[[1.0], [0.0]]]], np.float32)
  expected = -(math.log(0.5) + math.log(0.5))
  assert trivial_nll(train, test, True, "bernoulli") == pytest.approx(
      expected, rel=1e-6)
  as_uint8 = trivial_nll(np.round(train * 255).astype(np.uint8),
                         np.round(test * 255).astype(np.uint8), True,
                         "bernoulli")
  assert as_uint8 == pytest.approx(expected, rel=1e-3)


def test_bernoulli_not_binarized_is_undefined():
  train = np.zeros((2, 1, 1, 1), np.uint8)
  assert trivial_nll(train, train, binarized=False,
                     likelihood="bernoulli") is None


def test_gaussian_hand_computation():
  # Pixel 0: mean 0.4, std 0.2; pixel 1: constant 0.4, std floored to 1e-3.
  train = np.array([[[[0.2], [0.4]]], [[[0.6], [0.4]]]], np.float32)
  test = np.array([[[[0.5], [0.4]]], [[[0.4], [0.401]]]], np.float32)
  first = (0.5 * (0.1 / 0.2)**2 + math.log(0.2) + HALF_LOG_2PI
           + math.log(1e-3) + HALF_LOG_2PI)
  second = (math.log(0.2) + HALF_LOG_2PI
            + 0.5 * (0.001 / 1e-3)**2 + math.log(1e-3) + HALF_LOG_2PI)
  for binarized in (False, True):
    value = trivial_nll(train, test, binarized, "gaussian")
    assert value == pytest.approx((first + second) / 2, rel=1e-4)


def test_gaussian_uint8_is_rescaled():
  train = np.array([[[[51]]], [[[153]]]], np.uint8)    # 0.2, 0.6
  test = np.array([[[[102]]]], np.uint8)  # 0.4
  expected = math.log(0.2) + HALF_LOG_2PI
  assert trivial_nll(train, test, False, "gaussian") == pytest.approx(
      expected, rel=1e-6)


@pytest.mark.parametrize("kind", ["float_above_one", "uint8_at_most_one"])
def test_scaling_follows_dtype_like_the_pipeline(kind):
  if kind == "float_above_one":
    # The pipeline passes float images through unchanged.
    train = np.array([[[[0.0]]], [[[2.0]]]], np.float32)   # mean 1, std 1
    test = np.array([[[[1.5]]]], np.float32)
    expected = 0.5 * 0.5**2 + math.log(1.0) + HALF_LOG_2PI
  else:
    # The pipeline maps uint8 values v to v / 255.
    train = np.array([[[[0]]], [[[1]]]], np.uint8)
    test = np.array([[[[1]]]], np.uint8)
    mean, std = 0.5 / 255, 0.5 / 255
    expected = 0.5 * ((1 / 255 - mean) / std)**2 + math.log(std) + (
        HALF_LOG_2PI)
  assert trivial_nll(train, test, False, "gaussian") == pytest.approx(
      expected, rel=1e-6)
