"""Tests of `tfvae.schedules`: KL-weight and capacity values, no retracing."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfvae import schedules


def _weight(step, schedule, **kwargs):
  return float(schedules.kl_weight(tf.constant(step, tf.int64), schedule,
                                   **kwargs))


@pytest.mark.parametrize("step", [0, 1, 500, 10**6])
def test_constant_is_one(step):
  assert _weight(step, "constant", warmup_steps=100) == 1.0


@pytest.mark.parametrize("step, expected", [
    (0, 0.0), (1, 0.01), (25, 0.25), (50, 0.5), (99, 0.99), (100, 1.0),
    (101, 1.0), (1000, 1.0)])
def test_linear_warmup(step, expected):
  assert _weight(step, "linear", warmup_steps=100) == pytest.approx(
      expected, abs=1e-6)


@pytest.mark.parametrize("schedule", ["linear", "sigmoid"])
@pytest.mark.parametrize("step", [0, 7, 10**5])
def test_zero_warmup_means_full_weight(schedule, step):
  assert _weight(step, schedule, warmup_steps=0) == 1.0


def test_sigmoid_is_half_at_middle_and_matches_logistic_curve():
  warmup = 100
  for step in (0, 10, 25, 50, 75, 90, 100, 200):
    expected = 1.0 / (1.0 + math.exp(-10.0 / warmup * (step - warmup / 2)))
    assert _weight(step, "sigmoid", warmup_steps=warmup) == pytest.approx(
        expected, abs=1e-6)
  assert _weight(50, "sigmoid", warmup_steps=warmup) == pytest.approx(0.5)


def test_sigmoid_is_symmetric_about_middle():
  warmup = 100
  for offset in (1, 10, 25, 50):
    below = _weight(50 - offset, "sigmoid", warmup_steps=warmup)
    above = _weight(50 + offset, "sigmoid", warmup_steps=warmup)
    assert below + above == pytest.approx(1.0, abs=1e-6)
    assert below < 0.5 < above


def test_sigmoid_is_monotone_and_in_unit_interval():
  steps = tf.range(0, 301, dtype=tf.int64)
  values = schedules.kl_weight(steps, "sigmoid", warmup_steps=100).numpy()
  # Non-decreasing everywhere (float32 saturates at 1 late in the run),
  # strictly increasing over the warm-up.
  assert np.all(np.diff(values) >= 0)
  assert np.all(np.diff(values[:101]) > 0)
  assert values.min() >= 0.0 and values.max() <= 1.0
  assert values[0] < 0.01 and values[-1] > 0.99


@pytest.mark.parametrize("step, expected", [
    (0, 0.0), (25, 0.5), (50, 1.0), (75, 1.0), (99, 1.0), (100, 0.0),
    (125, 0.5), (150, 1.0), (300, 0.0), (399, 1.0), (400, 0.0)])
def test_cyclical(step, expected):
  assert _weight(step, "cyclical", total_steps=400, cycles=4,
                 cycle_ratio=0.5) == pytest.approx(expected, abs=1e-6)


def test_cyclical_ratio_changes_rise_length():
  # Period 100, rising over the first 25 steps.
  kwargs = dict(total_steps=400, cycles=4, cycle_ratio=0.25)
  assert _weight(10, "cyclical", **kwargs) == pytest.approx(0.4, abs=1e-6)
  assert _weight(25, "cyclical", **kwargs) == pytest.approx(1.0, abs=1e-6)
  assert _weight(110, "cyclical", **kwargs) == pytest.approx(0.4, abs=1e-6)


def test_unknown_schedule_raises():
  with pytest.raises(ValueError, match="bogus"):
    schedules.kl_weight(tf.constant(0), "bogus")


@pytest.mark.parametrize("step, expected", [
    (0, 0.0), (250, 12.5), (500, 25.0), (1000, 50.0), (5000, 50.0)])
def test_capacity_grows_linearly_to_max(step, expected):
  value = schedules.capacity(tf.constant(step, tf.int64), 50.0, 1000)
  assert value.dtype == tf.float32
  assert float(value) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("schedule", ["constant", "linear", "sigmoid",
                                      "cyclical"])
def test_tf_function_traces_once_for_changing_steps(schedule):
  traces = []

  @tf.function
  def weight(step):
    traces.append(1)
    return (schedules.kl_weight(step, schedule, warmup_steps=100,
                                total_steps=400, cycles=4)
            + schedules.capacity(step, 5.0, 100))

  values = [float(weight(tf.constant(step, tf.int64)))
            for step in (0, 1, 37, 100, 1000)]
  assert len(traces) == 1
  assert weight.experimental_get_tracing_count() == 1
  assert all(np.isfinite(values))


@pytest.mark.parametrize("step, start, minimum, rate, expected", [
    (0, 1.0, 0.5, 3e-5, 1.0),
    (10_000, 1.0, 0.5, 3e-5, math.exp(-0.3)),
    (20_000, 1.0, 0.5, 3e-5, math.exp(-0.6)),  # 0.549, still above 0.5.
    (30_000, 1.0, 0.5, 3e-5, 0.5),  # exp(-0.9) = 0.407: the floor.
    (10**7, 1.0, 0.5, 3e-5, 0.5),
    (1000, 2.0, 0.1, 1e-3, 2.0 * math.exp(-1.0)),
    (5000, 2.0, 0.1, 1e-3, 0.1),
    (123, 0.7, 0.7, 1e-2, 0.7),
    (10**6, 1.5, 0.2, 0.0, 1.5),
])
def test_temperature_decays_exponentially_to_its_floor(step, start, minimum,
                                                       rate, expected):
  value = schedules.temperature(tf.constant(step, tf.int64), start, minimum,
                                rate)
  assert value.dtype == tf.float32
  assert float(value) == pytest.approx(expected, rel=1e-5)


def test_temperature_is_monotone_and_traces_once():
  traces = []

  @tf.function
  def tau(step):
    traces.append(1)
    return schedules.temperature(step, 1.0, 0.5, 1e-3)

  values = [float(tau(tf.constant(step, tf.int64)))
            for step in range(0, 2000, 50)]
  assert len(traces) == 1
  assert np.all(np.diff(values) <= 0)
  assert values[0] == 1.0 and values[-1] == 0.5
