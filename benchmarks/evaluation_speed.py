"""Speed of the final k-sample log p(x) evaluation against its roofline.

Times `tfvae.evaluation.likelihood.Evaluator.log_likelihood`, the
importance-weighted estimate `train.py` reports as `nll`, on one evaluation
batch of the quickstart model (784-512-256-32 MLP VAE, Bernoulli pixels,
`--eval_batch_size=500`, `--eval_iw_samples=1000`), and in the same process,
alternating rounds, the roofline `benchmarks/roofline.py:mlp_nll_fn`: the
same matmuls, sigmoid cross-entropy and log-sum-exp in the same chunks of
samples, written directly in TensorFlow. It prints both rates, in images/s
and in decoder GFLOP/s, tfvae's fraction of the roofline, and what the rate
means for the 10,000 test images of the quickstart. The weights are random:
the work does not depend on them.

Run: `python benchmarks/evaluation_speed.py` (`--threads=1` for steadier
figures on a shared host; the default uses TF's threads, as `train.py`
does). The last line is `nll_images_per_s N` (tfvae's median).
"""

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import numpy as np
import tensorflow as tf

import roofline  # pylint: disable=g-bad-import-order; benchmarks/roofline.py
from tfvae import config as config_lib
from tfvae import models
from tfvae.evaluation.likelihood import Evaluator

FLAGS = flags.FLAGS
HIDDEN_DIMS = (512, 256)
LATENT_DIM = 32
TEST_IMAGES = 10_000


def _define_flags():
  flags.DEFINE_integer("batch_size", 500, "Images per evaluation batch.")
  flags.DEFINE_integer("iw_samples", 1000, "Importance samples k.")
  flags.DEFINE_integer("rounds", 3, "Alternating rounds (median reported).")
  flags.DEFINE_integer(
      "threads", 0, "TF intra-op threads (inter-op 1); 0 keeps TF's default.")


def measure(batch_size, iw_samples, rounds, log=print):
  """Images/s of tfvae's and the roofline's log p(x), round by round.

  Returns:
    `(tfvae, roofline, chunk)`: lists of images/s per round, and the
    samples per chunk both used.
  """
  config = config_lib.ModelConfig(hidden_dims=HIDDEN_DIMS,
                                  latent_dim=LATENT_DIM)
  model = models.build(config, (28, 28, 1))
  model.build_from_shape()
  evaluator = Evaluator(model)
  images = (np.random.default_rng(0).uniform(size=(batch_size, 28, 28, 1))
            < 0.3).astype(np.float32)
  chunk = evaluator.samples_per_chunk(iw_samples, batch_size, 784)
  limit = roofline.mlp_nll_fn(images.reshape(batch_size, 784), iw_samples,
                              chunk, HIDDEN_DIMS, LATENT_DIM)
  tensor = tf.constant(images)
  mine = lambda: evaluator.log_likelihood(tensor, iw_samples, (1, 0))
  mine()  # Tracing.
  limit()
  rates = {"tfvae": [], "roofline": []}
  for index in range(rounds):
    for name, run in (("roofline", limit), ("tfvae", mine)):
      began = time.perf_counter()
      run()
      rates[name].append(batch_size / (time.perf_counter() - began))
    log(f"round {index + 1}: tfvae {rates['tfvae'][-1]:.1f} img/s, roofline "
        f"{rates['roofline'][-1]:.1f} img/s "
        f"({rates['tfvae'][-1] / rates['roofline'][-1]:.0%})")
  return rates["tfvae"], rates["roofline"], chunk


def main(argv):
  del argv
  if FLAGS.threads:
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
  print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, threads "
        f"{FLAGS.threads or 'default'}; 784-{'-'.join(map(str, HIDDEN_DIMS))}"
        f"-{LATENT_DIM} MLP VAE, batch {FLAGS.batch_size}, k="
        f"{FLAGS.iw_samples}", flush=True)
  mine, limit, chunk = measure(FLAGS.batch_size, FLAGS.iw_samples,
                               FLAGS.rounds,
                               log=lambda line: print(line, flush=True))
  flops = roofline.mlp_decoder_flops(784, HIDDEN_DIMS, LATENT_DIM) * (
      FLAGS.iw_samples)
  fraction = statistics.median(a / b for a, b in zip(mine, limit))
  for name, rates in (("tfvae", mine), ("roofline", limit)):
    rate = statistics.median(rates)
    print(f"{name:<8} {rate:8.1f} img/s  {rate * flops / 1e9:6.1f} decoder "
          f"GFLOP/s  {TEST_IMAGES / rate:6.1f} s for {TEST_IMAGES} images")
  print(f"{chunk} samples per chunk; tfvae at {fraction:.0%} of the "
        "roofline")
  print(f"nll_images_per_s {statistics.median(mine):.1f}")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
