"""Training throughput of tfvae's loop: images/s and achieved GFLOP/s.

Trains through `tfvae.training.loop.Trainer` (the code `train.py` runs) on
in-memory synthetic images, so the figure covers the input pipeline, the
`tf.function` loop and the optimizer, and excludes the first loop call
(tracing). Models:

- `mlp`: the 784-400-20 Bernoulli MLP VAE at batch 128 on 28x28x1, the model
  of `benchmarks/pytorch_baseline.py` (compare the two, run back to back).
- `conv`: the conv VAE (32-64-128-256 channels, batch norm) on 64x64x3 with
  a Gaussian likelihood, batch 64.

GFLOP/s counts 3x the forward pass's floating point operations (forward +
backward), as the PyTorch baseline does; forward FLOPs come from TF's
profiler on the traced loss.

Run: `python benchmarks/throughput.py` (the last line is `img_per_s N` for
the MLP). `--models=mlp` skips the slower conv model; `--jit_compile` tries XLA;
`--threads=1` pins one thread (steadier on a shared host; compare with
`python benchmarks/pytorch_baseline.py --threads 1`).
"""

import os
import statistics
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import numpy as np
import tensorflow as tf

from tfvae import config as config_lib
from tfvae.data.pipeline import Data
from tfvae.training.loop import Trainer

tf.get_logger().setLevel("ERROR")

_MODELS = flags.DEFINE_list("models", ["mlp", "conv"], "mlp and/or conv.")
_STEPS = flags.DEFINE_integer("steps", 2000, "Timed MLP steps per repeat.")
_CONV_STEPS = flags.DEFINE_integer("conv_steps", 60, "Conv steps per repeat.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Repeats (median reported).")
_STEPS_PER_LOOP = flags.DEFINE_integer("steps_per_loop", 100,
                                       "Steps per tf.function call.")
_JIT = flags.DEFINE_bool("jit_compile", False, "Compile with XLA.")
_THREADS = flags.DEFINE_integer(
    "threads", 0, "TF intra-op threads (inter-op 1); 0 keeps TF's default.")

SETUPS = {
    "mlp": dict(data_shape=(28, 28, 1), batch_size=128,
                model=config_lib.ModelConfig(hidden_dims=(400,),
                                             latent_dim=20)),
    "conv": dict(data_shape=(64, 64, 3), batch_size=64,
                 model=config_lib.ModelConfig(encoder="conv", decoder="conv",
                                              latent_dim=128,
                                              likelihood="gaussian")),
}


def synthetic_data(data_shape, count):
  """Random uint8 images; throughput does not depend on their content."""
  images = np.random.default_rng(0).integers(
      0, 256, (count,) + data_shape, dtype=np.uint8)
  return Data(images, None, images[:0], None, images[:8], None, None,
              "synthetic")


def forward_flops(trainer, batch_size):
  """Floating point operations of one forward pass of the loss."""
  model = trainer.model
  images = tf.TensorSpec((batch_size,) + model.data_shape, tf.float32)
  noise = tf.TensorSpec((batch_size,) + tuple(model.noise_shape()),
                        tf.float32)
  loss = tf.function(lambda x, e: model.compute_loss(
      x, e, tf.constant(0, tf.int64), tf.constant(1.0))["loss"])
  graph = loss.get_concrete_function(images, noise).graph
  options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  options["output"] = "none"
  return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops


def measure(name, steps):
  """Trains `steps` timed steps `--repeats` times; returns per-repeat img/s."""
  setup = SETUPS[name]
  batch = setup["batch_size"]
  per_repeat = []
  flops = None
  for repeat in range(_REPEATS.value):
    with tempfile.TemporaryDirectory() as model_dir:
      first_loop = _STEPS_PER_LOOP.value
      config = config_lib.RunConfig(
          model=setup["model"],
          train=config_lib.TrainConfig(
              model_dir=model_dir, epochs=0, batch_size=batch,
              train_steps=steps + first_loop,
              steps_per_loop=_STEPS_PER_LOOP.value, seed=repeat,
              jit_compile=_JIT.value, progress=False),
          data=config_lib.DataConfig(validation_fraction=0.0)).validate()
      count = batch * (steps + first_loop)
      trainer = Trainer(config, synthetic_data(setup["data_shape"],
                                               min(count, 60_000)))
      if flops is None:
        flops = 3 * forward_flops(trainer, batch)
      trainer.fit()
      per_repeat.append(trainer.train_images_per_second)
      print(f"{name} repeat {repeat + 1}: {per_repeat[-1]:9.0f} img/s  "
            f"{per_repeat[-1] / batch * flops / 1e9:6.1f} GFLOP/s", flush=True)
  median = statistics.median(per_repeat)
  print(f"{name}: batch {batch}, {setup['data_shape']}, "
        f"{flops / 1e6:.1f} MFLOP/step (3x forward); median {median:.0f} "
        f"img/s, {median / batch * flops / 1e9:.1f} GFLOP/s, "
        f"{1e3 * batch / median:.2f} ms/step")
  return median


def main(argv):
  del argv
  if _THREADS.value:
    tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
    tf.config.threading.set_inter_op_parallelism_threads(1)
  print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, threads "
        f"{_THREADS.value or 'default'}, jit_compile={_JIT.value}")
  results = {}
  for name in _MODELS.value:
    steps = _STEPS.value if name == "mlp" else _CONV_STEPS.value
    results[name] = measure(name, steps)
  if "mlp" in results:
    print(f"img_per_s {results['mlp']:.0f}")


if __name__ == "__main__":
  app.run(main)
