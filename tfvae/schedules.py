"""KL-weight, capacity and temperature schedules, computed in-graph.

Every function takes the global step as a tensor and returns a float32 scalar
tensor, so a `tf.function` that calls them never retraces as the step grows.

#### References
Bowman et al. (2016). Generating Sentences from a Continuous Space. CoNLL.
Fu et al. (2019). Cyclical Annealing Schedule: A Simple Approach to
Mitigating KL Vanishing. NAACL.
Burgess et al. (2018). Understanding disentangling in beta-VAE.
arXiv:1804.03599.
Jang, Gu & Poole (2017). Categorical Reparameterization with Gumbel-Softmax.
ICLR.
"""

import math

import tensorflow as tf


def kl_weight(step, schedule, warmup_steps=0, total_steps=1, cycles=1,
              cycle_ratio=0.5):
  """The weight of the KL term at `step`.

  Args:
    step: scalar integer tensor, the optimizer step (0 before the first one).
    schedule: `constant` (always 1), `linear` (0 to 1 over `warmup_steps`),
      `sigmoid` (logistic curve centred at `warmup_steps / 2`, Bowman et al.
      2016) or `cyclical` (Fu et al. 2019: `cycles` cycles over
      `total_steps`, each rising linearly over its first `cycle_ratio` share
      and then held at 1).
    warmup_steps: length of the linear or sigmoid warm-up; 0 means none.
    total_steps: steps of the whole run (cyclical only).
    cycles: number of cycles (cyclical only).
    cycle_ratio: share of a cycle spent increasing (cyclical only).

  Returns:
    float32 scalar tensor in [0, 1].

  Raises:
    ValueError: for an unknown schedule name.
  """
  step = tf.cast(step, tf.float32)
  if schedule == "constant":
    return tf.constant(1.0)
  if schedule == "linear":
    if warmup_steps <= 0:
      return tf.constant(1.0)
    return tf.minimum(1.0, step / float(warmup_steps))
  if schedule == "sigmoid":
    if warmup_steps <= 0:
      return tf.constant(1.0)
    steepness = 10.0 / warmup_steps
    return tf.sigmoid(steepness * (step - warmup_steps / 2.0))
  if schedule == "cyclical":
    period = float(max(1, math.ceil(total_steps / max(1, cycles))))
    phase = tf.math.floormod(step, period) / period
    return tf.minimum(1.0, phase / cycle_ratio)
  raise ValueError(f"Unknown KL schedule {schedule!r}.")


def capacity(step, capacity_max, capacity_steps):
  """Burgess et al. (2018) KL capacity C, growing linearly to its maximum.

  Args:
    step: scalar integer tensor, the optimizer step.
    capacity_max: the final capacity in nats.
    capacity_steps: steps over which C grows from 0 to `capacity_max`.

  Returns:
    float32 scalar tensor in [0, capacity_max].
  """
  progress = tf.minimum(1.0, tf.cast(step, tf.float32) / float(capacity_steps))
  return capacity_max * progress


def temperature(step, start, minimum, anneal_rate):
  """The Gumbel-softmax temperature, annealed exponentially to a floor.

  tau = max(minimum, start * exp(-anneal_rate * step)), the schedule of Jang
  et al. (2017) applied at every step.

  Args:
    step: scalar integer tensor, the optimizer step.
    start: the temperature at step 0.
    minimum: the floor, at most `start`.
    anneal_rate: decay rate per step; 0 keeps the temperature at `start`.

  Returns:
    float32 scalar tensor in [minimum, start].
  """
  decayed = start * tf.exp(-anneal_rate * tf.cast(step, tf.float32))
  return tf.maximum(tf.constant(minimum, tf.float32), decayed)
