"""Chooses the `tf.distribute` strategy a run asks for."""

import tensorflow as tf


def make_strategy(name):
  """The strategy for `--strategy`.

  Args:
    name: `default` (the current default strategy: one device) or `mirrored`
      (synchronous data parallelism over all local GPUs, or over all logical
      CPUs when there are no GPUs and several CPUs are configured).

  Returns:
    A `tf.distribute.Strategy`.
  """
  if name == "mirrored":
    if tf.config.list_logical_devices("GPU"):
      return tf.distribute.MirroredStrategy()
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=cpus)
  return tf.distribute.get_strategy()
