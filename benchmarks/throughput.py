"""Training throughput of tfvae's loop: images/s and achieved GFLOP/s.

Trains through `tfvae.training.loop.Trainer` (the code `train.py` runs) on
in-memory synthetic images, so the figure covers the input pipeline, the
`tf.function` loop and the optimizer, and excludes the first loop call
(tracing). Models:

- `mlp`: the 784-400-20 Bernoulli MLP VAE at batch 128 on 28x28x1, the model
  of `benchmarks/pytorch_baseline.py` (compare the two, run back to back).
- `conv`: the conv VAE (32-64-128-256 channels, batch norm) on 64x64x3 with
  a Gaussian likelihood, batch 64.

Each model is measured in up to four variants (`--variants`), one row each:

- `base`: float32, no XLA (what `train.py` does by default);
- `xla`: float32, the training step compiled with XLA (`--jit_compile`);
- `mixed`: the networks under a mixed-precision Keras policy
  (`--mixed_precision` of train.py); which policy is `--mixed_precision`
  here: `auto` takes `mixed_float16` where TensorFlow sees a GPU and
  `mixed_bfloat16` otherwise, `all` measures both;
- `mixed_xla`: both.

The same command runs on a CPU-only host and on a GPU (TensorFlow places
the step on the GPU when it sees one); the header says which devices it
found. A variant that fails (e.g. XLA or a policy the device lacks) prints
its error on its row and the others still run.

GFLOP/s counts 3x the forward pass's floating point operations (forward +
backward), as the PyTorch baseline does; forward FLOPs come from TF's
profiler on the traced float32 loss (the same operations in every
variant).

The `base` variant is also measured against its roofline
(`benchmarks/roofline.py`, `benchmarks/conv_roofline.py`): the minimal
plain-TensorFlow step of the same shapes (matmuls or convolutions,
activations, the log-likelihood, plain SGD, 50 steps per `tf.function`
call, no input pipeline). Each repeat times a roofline round right before
the tfvae repeat, so both see the same machine, and the `base` row prints
tfvae's fraction of the roofline (`--noroofline` skips it).

Run: `python benchmarks/throughput.py`. The last line is `img_per_s N`, the
MLP's `base` variant (other tooling reads it). `--models=mlp` skips the
slower conv model; `--variants=base` measures the default setup alone;
`--threads=1` pins one thread (steadier on a shared host; compare with
`python benchmarks/pytorch_baseline.py --threads 1`).

`measure` is the reusable part (`benchmarks/input_pipeline.py` calls it);
the flags are defined only when this file runs as a program.
"""

import dataclasses
import os
import statistics
import tempfile
import time
from typing import Callable, List, Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import numpy as np
import tensorflow as tf

import roofline  # pylint: disable=g-bad-import-order; benchmarks/roofline.py
from tfvae import config as config_lib
from tfvae.data.pipeline import Data
from tfvae.training.loop import Trainer

tf.get_logger().setLevel("ERROR")

FLAGS = flags.FLAGS

SETUPS = {
    "mlp": dict(data_shape=(28, 28, 1), batch_size=128,
                model=config_lib.ModelConfig(hidden_dims=(400,),
                                             latent_dim=20)),
    "conv": dict(data_shape=(64, 64, 3), batch_size=64,
                 model=config_lib.ModelConfig(encoder="conv", decoder="conv",
                                              latent_dim=128,
                                              likelihood="gaussian")),
}

# Variant name -> (mixed precision, XLA).
VARIANTS = {"base": (False, False), "xla": (False, True),
            "mixed": (True, False), "mixed_xla": (True, True)}
MIXED_CHOICES = ("auto", "none", "mixed_float16", "mixed_bfloat16", "all")
ROOFLINE_STEPS_PER_CALL = 50


@dataclasses.dataclass(frozen=True)
class Variant:
  """One way of running the training step.

  Attributes:
    name: a key of `VARIANTS` (`base`, `xla`, `mixed`, `mixed_xla`).
    mixed_precision: the `TrainConfig.mixed_precision` value: `none`,
      `mixed_float16` or `mixed_bfloat16`.
    jit_compile: compile the step with XLA.
  """
  name: str = "base"
  mixed_precision: str = "none"
  jit_compile: bool = False

  @property
  def label(self) -> str:
    """E.g. `base`, `xla`, `mixed_bfloat16`, `mixed_float16+xla`."""
    if self.mixed_precision == "none":
      return "xla" if self.jit_compile else "base"
    return self.mixed_precision + ("+xla" if self.jit_compile else "")


BASE = Variant()


@dataclasses.dataclass(frozen=True)
class Measurement:
  """The training throughput of one model in one variant.

  Attributes:
    model: `mlp` or `conv` (a key of `SETUPS`).
    variant: how the step ran.
    batch_size: images per step.
    per_repeat: images/s of each repeat.
    flops_per_step: 3x the forward pass's floating point operations, or
      None when not counted.
    roofline_per_repeat: images/s of the roofline round timed right before
      each repeat, or None when not measured.
  """
  model: str
  variant: Variant
  batch_size: int
  per_repeat: List[float]
  flops_per_step: Optional[float]
  roofline_per_repeat: Optional[List[float]] = None

  @property
  def roofline_images_per_second(self) -> Optional[float]:
    """The roofline's median over the repeats, or None if not measured."""
    if not self.roofline_per_repeat:
      return None
    return statistics.median(self.roofline_per_repeat)

  @property
  def roofline_fraction(self) -> Optional[float]:
    """Median over repeats of tfvae's images/s / the roofline's."""
    if not self.roofline_per_repeat:
      return None
    return statistics.median(
        mine / limit for mine, limit in zip(self.per_repeat,
                                            self.roofline_per_repeat))

  @property
  def images_per_second(self) -> float:
    """The median over the repeats."""
    return statistics.median(self.per_repeat)

  @property
  def gflops_per_second(self) -> Optional[float]:
    if self.flops_per_step is None:
      return None
    return self.images_per_second / self.batch_size * self.flops_per_step / 1e9

  @property
  def ms_per_step(self) -> float:
    return 1e3 * self.batch_size / self.images_per_second


def has_gpu() -> bool:
  """Whether TensorFlow sees a GPU."""
  return bool(tf.config.list_physical_devices("GPU"))


def default_mixed_policy() -> str:
  """`mixed_float16` on a GPU (tensor cores, loss scaling), else bfloat16."""
  return "mixed_float16" if has_gpu() else "mixed_bfloat16"


def make_variants(names: Sequence[str], mixed_precision: str = "auto",
                  jit_compile: Optional[bool] = None) -> List[Variant]:
  """The variants to measure, in the order of `names`.

  Args:
    names: keys of `VARIANTS`.
    mixed_precision: the policy of the mixed variants: `auto`
      (`default_mixed_policy()`), `mixed_float16`, `mixed_bfloat16`, `all`
      (each mixed variant with both policies) or `none` (no mixed
      variants).
    jit_compile: None keeps every named variant; True only those with XLA,
      False only those without.

  Returns:
    The `Variant`s.

  Raises:
    ValueError: an unknown variant or policy, or nothing left to measure.
  """
  unknown = [name for name in names if name not in VARIANTS]
  if unknown:
    raise ValueError(f"Unknown variants {unknown}; choose from "
                     f"{', '.join(VARIANTS)}.")
  if mixed_precision not in MIXED_CHOICES:
    raise ValueError(f"--mixed_precision={mixed_precision} is not one of "
                     f"{', '.join(MIXED_CHOICES)}.")
  policies = {"auto": [default_mixed_policy()], "none": [],
              "all": ["mixed_float16", "mixed_bfloat16"]}.get(
                  mixed_precision, [mixed_precision])
  variants = []
  for name in names:
    mixed, xla = VARIANTS[name]
    if jit_compile is not None and xla != jit_compile:
      continue
    for policy in (policies if mixed else ["none"]):
      variants.append(Variant(name, policy, xla))
  if not variants:
    raise ValueError(
        f"Nothing to measure: --variants={','.join(names)} with "
        f"--mixed_precision={mixed_precision} and --jit_compile="
        f"{jit_compile} leave no variant.")
  return variants


def set_threads(threads: int) -> None:
  """Pins TF's intra-op threads (inter-op 1); 0 keeps TF's defaults."""
  if threads:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def describe_devices() -> str:
  """E.g. `GPU: /physical_device:GPU:0` or `no GPU`, for the header."""
  gpus = tf.config.list_physical_devices("GPU")
  if not gpus:
    return "no GPU"
  names = []
  for gpu in gpus:
    try:
      names.append(tf.config.experimental.get_device_details(gpu).get(
          "device_name", gpu.name))
    except (ValueError, RuntimeError):
      names.append(gpu.name)
  return "GPU: " + ", ".join(names)


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


def measure(name: str, steps: int, *, variant: Variant = BASE,
            repeats: int = 3, steps_per_loop: int = 100,
            flops_per_step: Optional[float] = None, count_flops: bool = True,
            roofline: Optional[Callable[[], float]] = None,
            log: Callable[[str], None] = print) -> Measurement:
  """Trains `steps` timed steps `repeats` times on in-memory data.

  Each repeat is a fresh `Trainer` in a temporary folder; its first loop
  call (`steps_per_loop` steps, tracing included) is not timed.

  Args:
    name: `mlp` or `conv` (a key of `SETUPS`).
    steps: timed steps per repeat.
    variant: mixed precision and XLA.
    repeats: repeats; the median is reported.
    steps_per_loop: steps per `tf.function` call.
    flops_per_step: reuse this count (e.g. from another variant) instead of
      profiling the loss again.
    count_flops: profile the loss's FLOPs when `flops_per_step` is None.
    roofline: `() -> images/s` of one roofline round (`roofline_round`),
      timed right before each repeat; None skips it.
    log: where per-repeat lines go.

  Returns:
    The `Measurement`.
  """
  setup = SETUPS[name]
  batch = setup["batch_size"]
  per_repeat, roofline_per_repeat = [], []
  flops = flops_per_step
  for repeat in range(repeats):
    if roofline is not None:
      roofline_per_repeat.append(roofline())
    with tempfile.TemporaryDirectory() as model_dir:
      config = config_lib.RunConfig(
          model=setup["model"],
          train=config_lib.TrainConfig(
              model_dir=model_dir, epochs=0, batch_size=batch,
              train_steps=steps + steps_per_loop,
              steps_per_loop=steps_per_loop, seed=repeat,
              jit_compile=variant.jit_compile,
              mixed_precision=variant.mixed_precision, progress=False),
          data=config_lib.DataConfig(validation_fraction=0.0)).validate()
      count = batch * (steps + steps_per_loop)
      trainer = Trainer(config, synthetic_data(setup["data_shape"],
                                               min(count, 60_000)))
      if flops is None and count_flops:
        flops = 3 * forward_flops(trainer, batch)
      trainer.fit()
      per_repeat.append(trainer.train_images_per_second)
      gflops = ("" if flops is None else
                f"  {per_repeat[-1] / batch * flops / 1e9:6.1f} GFLOP/s")
      limit = ("" if roofline is None else
               f"  (roofline {roofline_per_repeat[-1]:.0f} img/s: "
               f"{per_repeat[-1] / roofline_per_repeat[-1]:.0%})")
      log(f"{name} {variant.label} repeat {repeat + 1}: "
          f"{per_repeat[-1]:9.0f} img/s{gflops}{limit}")
  return Measurement(name, variant, batch, per_repeat, flops,
                     roofline_per_repeat or None)


def roofline_round(name: str, steps: int) -> Callable[[], float]:
  """`() -> images/s` of `steps` steps of the model's roofline step.

  The roofline (`benchmarks/roofline.py`, `benchmarks/conv_roofline.py`) has
  the setup's shapes; it is built (and traced) here, once.
  """
  setup = SETUPS[name]
  batch = setup["batch_size"]
  calls = max(1, steps // ROOFLINE_STEPS_PER_CALL)
  if name == "mlp":
    run = roofline.mlp_train_step_fn(
        batch, ROOFLINE_STEPS_PER_CALL,
        hidden_dims=setup["model"].hidden_dims,
        latent_dim=setup["model"].latent_dim)
  else:
    import conv_roofline  # pylint: disable=g-import-not-at-top
    run = conv_roofline.conv_train_step_fn(batch, ROOFLINE_STEPS_PER_CALL)
  run()  # Tracing.

  def one_round():
    began = time.perf_counter()
    for _ in range(calls):
      run()
    return calls * ROOFLINE_STEPS_PER_CALL * batch / (
        time.perf_counter() - began)
  return one_round


def _row(measurement: Measurement, base: Optional[Measurement]) -> str:
  gflops = measurement.gflops_per_second
  speedup = (f"{measurement.images_per_second / base.images_per_second:.2f}x"
             if base else "-")
  fraction = measurement.roofline_fraction
  return (f"{measurement.model:<5} {measurement.variant.label:<20} "
          f"{measurement.images_per_second:>10.0f} "
          f"{'-' if gflops is None else f'{gflops:.1f}':>8} "
          f"{measurement.ms_per_step:>9.2f} {speedup:>8} "
          f"{'-' if fraction is None else f'{fraction:.0%}':>9}")


def _define_flags():
  """The program's flags (only when run as a program, not when imported)."""
  flags.DEFINE_list("models", ["mlp", "conv"], "mlp and/or conv.")
  flags.DEFINE_list(
      "variants", list(VARIANTS),
      "Variants to measure, each one row: base (float32), xla (XLA), mixed "
      "(the --mixed_precision policy), mixed_xla (both).")
  flags.DEFINE_enum(
      "mixed_precision", "auto", MIXED_CHOICES,
      "Policy of the mixed variants: auto (mixed_float16 on a GPU, "
      "mixed_bfloat16 otherwise), mixed_float16, mixed_bfloat16, all (both "
      "policies), or none (drop the mixed variants).")
  flags.DEFINE_bool(
      "jit_compile", None,
      "Unset: the --variants as named; --jit_compile keeps only the XLA "
      "variants, --nojit_compile only those without XLA.")
  flags.DEFINE_integer("steps", 2000, "Timed MLP steps per repeat.")
  flags.DEFINE_integer("conv_steps", 60, "Conv steps per repeat.")
  flags.DEFINE_integer("repeats", 3, "Repeats (median reported).")
  flags.DEFINE_integer("steps_per_loop", 100, "Steps per tf.function call.")
  flags.DEFINE_integer(
      "threads", 0, "TF intra-op threads (inter-op 1); 0 keeps TF's default.")
  flags.DEFINE_bool(
      "roofline", True,
      "Time the minimal same-shape TF step before each base repeat and "
      "print tfvae's fraction of it.")


def main(argv):
  del argv
  set_threads(FLAGS.threads)
  try:
    variants = make_variants(FLAGS.variants, FLAGS.mixed_precision,
                             FLAGS.jit_compile)
  except ValueError as e:
    raise app.UsageError(str(e))
  unknown = [name for name in FLAGS.models if name not in SETUPS]
  if unknown:
    raise app.UsageError(f"Unknown models {unknown}; choose from "
                         f"{', '.join(SETUPS)}.")
  print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, "
        f"{describe_devices()}, threads {FLAGS.threads or 'default'}, "
        f"variants {', '.join(v.label for v in variants)}", flush=True)
  rows = []
  mlp_base = None
  for name in FLAGS.models:
    steps = FLAGS.steps if name == "mlp" else FLAGS.conv_steps
    flops, base = None, None
    for variant in variants:
      began = time.perf_counter()
      try:
        limit = (roofline_round(name, steps)
                 if FLAGS.roofline and variant == BASE else None)
        result = measure(name, steps, variant=variant,
                         repeats=FLAGS.repeats,
                         steps_per_loop=FLAGS.steps_per_loop,
                         flops_per_step=flops, roofline=limit,
                         log=lambda line: print(line, flush=True))
      except Exception as e:  # pylint: disable=broad-except; report, go on.
        reason = " ".join(str(e).split())[:300]
        print(f"{name} {variant.label}: failed after "
              f"{time.perf_counter() - began:.0f} s: {type(e).__name__}: "
              f"{reason}", flush=True)
        rows.append(f"{name:<5} {variant.label:<20} failed "
                    f"({type(e).__name__})")
        continue
      flops = result.flops_per_step
      if variant == BASE:
        base = result
        if name == "mlp":
          mlp_base = result
      print(f"{name} {variant.label}: batch {result.batch_size}, "
            f"{SETUPS[name]['data_shape']}, "
            f"{(flops or 0) / 1e6:.1f} MFLOP/step (3x forward); median "
            f"{result.images_per_second:.0f} img/s, "
            f"{result.gflops_per_second or 0:.1f} GFLOP/s, "
            f"{result.ms_per_step:.2f} ms/step"
            + ("" if result.roofline_fraction is None else
               f"; roofline median {result.roofline_images_per_second:.0f}"
               f" img/s, tfvae at {result.roofline_fraction:.0%} of it"),
            flush=True)
      rows.append(_row(result, base if variant != BASE else None))
  print()
  print(f"{'model':<5} {'variant':<20} {'img/s':>10} {'GFLOP/s':>8} "
        f"{'ms/step':>9} {'vs base':>8} {'roofline':>9}")
  for row in rows:
    print(row)
  if mlp_base is not None:
    print(f"img_per_s {mlp_base.images_per_second:.0f}")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
