"""Streamed input pipeline: images/s it delivers, and training's peak memory.

Three measurements on generated TFRecord datasets (`--dataset=tfrecord`):

1. **Pipeline alone.** `tfvae.data.pipeline.train_dataset` over the shards,
   the stream `Trainer.fit` consumes (shards interleaved, stateless windowed
   shuffle of `DataConfig.shuffle_buffer` records, decoding in a parallel
   map, prefetch), iterated for `--steps` timed batches after `--warmup`
   batches, nothing else running. Two sets:

   - `rgb64`: 64x64 RGB JPEG (quality 95), `--rgb64_count` training images
     (default 200,000) and `--rgb64_test` test images, batch 64, as the conv
     VAE trains;
   - `grey28`: 28x28 grey PNG, `--grey28_count` (default 60,000), batch 128,
     binarized in the pipeline as the Bernoulli default does, as the MLP
     VAE trains.

   The training split is what `train.py` would stream: the manifest's
   `train` split less the 10% validation hold-out.

2. **Training step.** The conv VAE (64x64x3, batch 64) and the MLP VAE
   (28x28, batch 128) trained on in-memory synthetic data, measured by
   `benchmarks/throughput.py`'s `measure` (float32, no XLA). The ratio
   pipeline / step says how much faster the stream is than the step it
   feeds; above 1 the step, not the input, bounds training. Both run on the
   same CPUs, so streamed training is slower than either figure alone: the
   third measurement reports it too.

3. **Peak resident memory.** `train.py` in a subprocess trains the conv VAE
   for `--rss_steps` steps on the rgb64 stream, validates on its 10% hold-out,
   fits the trivial baseline on up to 20,000 streamed training images and
   evaluates `--rss_eval_examples` test images (k=10), without images or
   export, at train.py's other defaults (`--rss_train_flags` appends more
   flags). Its peak RSS (`ru_maxrss` of the reaped child) is printed with
   the decoded size of the same images (2.3 GiB of uint8 for 200,000),
   which an in-memory run would hold, and whether it is under
   `--rss_limit_mb` (2 GB). The streamed training images/s that run
   measured (metrics.json) is printed too.

The data is generated, not downloaded: smooth random images (bilinearly
upsampled 6x6 colour fields, three soft blobs and fixed-amplitude pixel
noise) whose JPEG/PNG sizes resemble small photographs' (about 2.9 KB and
0.75 KB a record) rather than white noise's. Shards of
`--records_per_shard` records are encoded by `--workers` processes
(`tfrecord.example_bytes`, no TensorFlow in the workers) and written with
`tf.io.TFRecordWriter`, then `manifest.json`; each set is cached under
`--data_root` in a folder named by its counts and reused by later runs
(remove it to regenerate).

Run: `python benchmarks/input_pipeline.py`: 8 minutes on the project's
2-core machine with a test suite running beside it, of which generating
the data took 35 s (7,000 JPEG images/s with 2 processes) and the
training subprocess 6 minutes; 5 minutes with the data cached and less
load. `--skip_rss` skips that subprocess, `--skip_train` the in-memory
step, `--sets=grey28` leaves out the large set. Prints a summary table, a
README-ready markdown table and, last, `peak_rss_mb N`.
"""

import concurrent.futures
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import numpy as np

# Not TensorFlow: the spawned generator processes import this module.
from tfvae.data import tfrecord

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_DATA_ROOT = flags.DEFINE_string(
    "data_root", "/tmp/tfvae_bench_data",
    "Where the generated datasets are written and cached.")
_SETS = flags.DEFINE_list("sets", ["rgb64", "grey28"],
                          "Datasets to measure: rgb64 and/or grey28.")
_RGB64_COUNT = flags.DEFINE_integer(
    "rgb64_count", 200_000, "rgb64 training images (the RSS run's data).",
    lower_bound=1)
_RGB64_TEST = flags.DEFINE_integer("rgb64_test", 10_000, "rgb64 test images.",
                                   lower_bound=1)
_GREY28_COUNT = flags.DEFINE_integer("grey28_count", 60_000,
                                     "grey28 training images.", lower_bound=1)
_GREY28_TEST = flags.DEFINE_integer("grey28_test", 10_000,
                                    "grey28 test images.", lower_bound=1)
_RECORDS_PER_SHARD = flags.DEFINE_integer(
    "records_per_shard", 5000, "Records per generated shard.", lower_bound=1)
_WORKERS = flags.DEFINE_integer(
    "workers", 0, "Generator processes; 0: one per CPU.", lower_bound=0)
_STEPS = flags.DEFINE_integer("steps", 1000,
                              "Timed pipeline batches per set.", lower_bound=1)
_WARMUP = flags.DEFINE_integer(
    "warmup", 50, "Pipeline batches read before timing.", lower_bound=0)
_CONV_STEPS = flags.DEFINE_integer(
    "conv_steps", 60, "Timed conv VAE training steps.", lower_bound=1)
_MLP_STEPS = flags.DEFINE_integer(
    "mlp_steps", 2000, "Timed MLP VAE training steps.", lower_bound=1)
_SKIP_TRAIN = flags.DEFINE_bool(
    "skip_train", False, "Skip the in-memory training step measurement.")
_SKIP_RSS = flags.DEFINE_bool("skip_rss", False,
                              "Skip the peak-memory training subprocess.")
_RSS_STEPS = flags.DEFINE_integer(
    "rss_steps", 300, "Training steps of the peak-memory run.", lower_bound=1)
_RSS_EVAL_EXAMPLES = flags.DEFINE_integer(
    "rss_eval_examples", 500, "Test examples the peak-memory run evaluates.",
    lower_bound=1)
_RSS_TRAIN_FLAGS = flags.DEFINE_list(
    "rss_train_flags", [],
    "Extra train.py flags of the peak-memory run, e.g. "
    "--rss_train_flags=--eval_batch_size=100 (comma-separated).")
_RSS_LIMIT_MB = flags.DEFINE_integer(
    "rss_limit_mb", 2048, "The peak RSS the run must stay under.")
_THREADS = flags.DEFINE_integer(
    "threads", 0,
    "TF intra-op threads (inter-op 1) of this process's measurements; 0 "
    "keeps TF's default. The training subprocess keeps TF's default.")

# name -> image shape, encoding, batch size, binarized, training-step model.
SETS = {
    "rgb64": dict(shape=(64, 64, 3), encoding="jpeg", batch_size=64,
                  binarized=False, model="conv", likelihood="gaussian"),
    "grey28": dict(shape=(28, 28, 1), encoding="png", batch_size=128,
                   binarized=True, model="mlp", likelihood="bernoulli"),
}
_MODEL_NAMES = {"conv": "conv VAE", "mlp": "MLP VAE"}
# Bumped when the generator changes, so cached data is not reused.
_GENERATOR_VERSION = 1
_JPEG_QUALITY = 95
_CHUNK = 128  # Images generated at once (cache-sized arrays).
_NOISE_FIELDS = 64
_NOISE_STD = 0.03
_LOW_RES = 6
_BLOBS = 3
_VALIDATION_FRACTION = 0.1


# ---- Generating the datasets ------------------------------------------------


def _upsample_matrix(low, size):
  """`[size, low]` float32 bilinear interpolation weights."""
  position = np.linspace(0, low - 1, size)
  left = np.floor(position).astype(int)
  right = np.minimum(left + 1, low - 1)
  weight = (position - left).astype(np.float32)
  matrix = np.zeros((size, low), np.float32)
  matrix[np.arange(size), left] += 1 - weight
  matrix[np.arange(size), right] += weight
  return matrix


def smooth_images(rng, count, shape, noise):
  """Random smooth images: upsampled colour fields, blobs, a little noise.

  Args:
    rng: a `np.random.Generator`.
    count: number of images n.
    shape: `(S, S, C)`.
    noise: `[K, C, S, S]` float32 noise fields; each image adds one.

  Returns:
    `[n, S, S, C]` uint8.
  """
  size, channels = shape[0], shape[2]
  matrix = _upsample_matrix(_LOW_RES, size)
  fields = rng.random((count, channels, _LOW_RES, _LOW_RES), dtype=np.float32)
  images = np.matmul(np.matmul(matrix, fields), matrix.T)  # [n, C, S, S]
  grid = (np.arange(size, dtype=np.float32) + 0.5) / size
  for _ in range(_BLOBS):
    centre_y, centre_x = rng.random((2, count, 1), dtype=np.float32)
    width = 2 * (0.04 + 0.15 * rng.random((count, 1), dtype=np.float32))**2
    rows = np.exp(-(grid - centre_y)**2 / width)  # [n, S]
    cols = np.exp(-(grid - centre_x)**2 / width)
    amplitude = rng.uniform(-0.8, 0.8, (count, channels, 1, 1)).astype(
        np.float32)
    images += amplitude * (rows[:, None, :, None] * cols[:, None, None, :])
  images += noise[rng.integers(0, len(noise), count)]
  np.clip(images, 0, 1, out=images)
  images *= 255
  return np.ascontiguousarray(images.astype(np.uint8).transpose(0, 2, 3, 1))


def encode_shard(task):
  """Generates and serializes one shard's records; what a worker runs.

  Args:
    task: `(seed, shape, encoding, count)`: the shard's own seed sequence
      entropy, image shape, encoding and number of records.

  Returns:
    The serialized `tf.train.Example`s.
  """
  seed, shape, encoding, count = task
  rng = np.random.default_rng(seed)
  noise = rng.standard_normal(
      (_NOISE_FIELDS, shape[2], shape[0], shape[1]), dtype=np.float32)
  noise *= _NOISE_STD
  records = []
  for start in range(0, count, _CHUNK):
    for image in smooth_images(rng, min(_CHUNK, count - start), shape, noise):
      records.append(tfrecord.example_bytes(image, None, encoding,
                                            _JPEG_QUALITY))
  return records


def dataset_dir(name, train_count, test_count):
  """The cache folder of one generated set, named by what it holds."""
  setup = SETS[name]
  return os.path.join(
      _DATA_ROOT.value,
      f"{name}-{setup['encoding']}-train{train_count}-test{test_count}-"
      f"{_RECORDS_PER_SHARD.value}per-v{_GENERATOR_VERSION}")


def _cached(folder, train_count, test_count):
  """Whether `folder` holds a complete, readable generated set."""
  if not os.path.isfile(os.path.join(folder, tfrecord.MANIFEST_NAME)):
    return False
  try:
    manifest = tfrecord.read_manifest(folder)
  except Exception as e:  # pylint: disable=broad-except; regenerate.
    print(f"  cached {folder} is unusable ({e}); regenerating", flush=True)
    return False
  return (manifest.count("train") == train_count
          and manifest.count("test") == test_count)


def generate(name, train_count, test_count, workers):
  """Writes (or reuses) one set's shards and manifest.

  Args:
    name: a key of `SETS`.
    train_count: training records.
    test_count: test records.
    workers: encoder processes (1: in this process).

  Returns:
    `(folder, seconds spent generating, 0 when cached)`.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top; not workers.

  folder = dataset_dir(name, train_count, test_count)
  if _cached(folder, train_count, test_count):
    return folder, 0.0
  began = time.perf_counter()
  setup = SETS[name]
  if os.path.isdir(folder):
    shutil.rmtree(folder)
  os.makedirs(folder)
  per_shard = _RECORDS_PER_SHARD.value
  shards = []  # (split, index, num_shards, count)
  for split, count in (("train", train_count), ("test", test_count)):
    num_shards = -(-count // per_shard)
    shards += [(split, index, num_shards,
                min(per_shard, count - index * per_shard))
               for index in range(num_shards)]
  split_seed = {"train": 1, "test": 2}
  tasks = [([_GENERATOR_VERSION, split_seed[split], index], setup["shape"],
            setup["encoding"], count)
           for split, index, _, count in shards]
  pool = (None if workers <= 1 else concurrent.futures.ProcessPoolExecutor(
      workers, mp_context=multiprocessing.get_context("spawn")))
  entries = {"train": [], "test": []}
  try:
    results = (map(encode_shard, tasks) if pool is None
               else pool.map(encode_shard, tasks))
    for (split, index, num_shards, count), records in zip(shards, results):
      assert len(records) == count, (len(records), count)
      path = os.path.join(folder, tfrecord.shard_name(split, index,
                                                      num_shards))
      with tf.io.TFRecordWriter(path + ".tmp") as writer:
        for record in records:
          writer.write(record)
      os.replace(path + ".tmp", path)
      entries[split].append({"file": os.path.basename(path), "count": count,
                             "bytes": os.path.getsize(path)})
  finally:
    if pool is not None:
      pool.shutdown(wait=True, cancel_futures=True)
  manifest = tfrecord.manifest_dict(
      source=f"synthetic {name} (benchmarks/input_pipeline.py)",
      data_shape=setup["shape"], dtype="uint8", encoding=setup["encoding"],
      num_classes=None, class_names=None, column_names=None, columns=None,
      splits=entries)
  path = os.path.join(folder, tfrecord.MANIFEST_NAME)
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(manifest, f, indent=2)
  os.replace(path + ".tmp", path)  # Last: a partial set has no manifest.
  return folder, time.perf_counter() - began


def folder_mb(folder):
  return sum(os.path.getsize(os.path.join(folder, name))
             for name in os.listdir(folder)) / 2**20


# ---- Measuring --------------------------------------------------------------


def training_split(folder, likelihood):
  """The streamed split `train.py` trains on (less the validation hold-out)."""
  from tfvae import config as config_lib  # pylint: disable=g-import-not-at-top
  from tfvae.data import pipeline  # pylint: disable=g-import-not-at-top
  from tfvae.data import sources  # pylint: disable=g-import-not-at-top

  splits = sources.load_splits(config_lib.DataConfig(dataset="tfrecord",
                                                     data_dir=folder))
  return pipeline.prepare(splits, _VALIDATION_FRACTION, likelihood).train_x


def pipeline_rate(split, batch_size, binarized, steps, warmup):
  """Images/s of the training stream alone (`steps` timed batches).

  Args:
    split: a `streams.RecordSplit`.
    batch_size: images per batch.
    binarized: binarize as for a Bernoulli likelihood.
    steps: timed batches.
    warmup: batches read first (the first shuffle window, tracing).

  Returns:
    `(images/s, seconds of the timed batches)`.
  """
  from tfvae import config as config_lib  # pylint: disable=g-import-not-at-top
  from tfvae.data import pipeline  # pylint: disable=g-import-not-at-top

  dataset = pipeline.train_dataset(
      split, None, batch_size=batch_size, seed=0, start_step=0,
      total_steps=warmup + steps, binarized=binarized,
      shuffle_buffer=config_lib.DataConfig().shuffle_buffer)
  iterator = iter(dataset)
  for _ in range(warmup):
    next(iterator)
  began = time.perf_counter()
  for _ in range(steps):
    batch = next(iterator)
  seconds = time.perf_counter() - began
  assert batch["image"].shape[0] == batch_size
  return steps * batch_size / seconds, seconds


def _throughput_module():
  """`benchmarks/throughput.py`, imported (it imports TensorFlow)."""
  here = os.path.dirname(os.path.abspath(__file__))
  if here not in sys.path:
    sys.path.insert(0, here)
  import throughput  # pylint: disable=g-import-not-at-top
  return throughput


def train_step_rate(model, steps):
  """The in-memory training step's images/s (`throughput.measure`)."""
  throughput = _throughput_module()
  # A short first (untimed, tracing) call, then `steps` timed steps.
  steps_per_loop = min(100, steps) if model == "mlp" else min(20, steps)
  return throughput.measure(
      model, steps, repeats=1, steps_per_loop=steps_per_loop,
      count_flops=False,
      log=lambda line: print("  " + line, flush=True)).images_per_second


def rss_run(folder, steps, eval_examples, extra_flags=()):
  """Trains the conv VAE on the stream in a subprocess; its peak RSS.

  Args:
    folder: the rgb64 set.
    steps: training steps.
    eval_examples: test examples of the final evaluation.
    extra_flags: more train.py flags (`--name=value`), appended last.

  Returns:
    Dict: `peak_rss_mb`, `seconds`, `train_img_per_s` (the streamed
    training rate train.py measured), `step`.

  Raises:
    RuntimeError: the run failed (its log's tail in the message).
  """
  with tempfile.TemporaryDirectory(prefix="tfvae_rss_") as model_dir:
    command = [
        sys.executable, os.path.join(_ROOT, "train.py"),
        "--dataset=tfrecord", f"--data_dir={folder}",
        f"--model_dir={model_dir}/run", "--encoder=conv", "--decoder=conv",
        "--likelihood=gaussian", "--latent_dim=128", "--batch_size=64",
        f"--train_steps={steps}", "--steps_per_loop=50",
        f"--validation_fraction={_VALIDATION_FRACTION}",
        f"--eval_max_examples={eval_examples}", "--eval_iw_samples=10",
        "--noexport", "--noimages", "--noprogress", *extra_flags]
    print("  " + " ".join(command[1:]), flush=True)
    log_path = os.path.join(model_dir, "train.log")
    began = time.perf_counter()
    with open(log_path, "wb") as log:
      process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                 cwd=_ROOT)
      # wait4 reaps this child alone and gives its own rusage.
      _, status, usage = os.wait4(process.pid, 0)
      process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - began
    if process.returncode:
      with open(log_path, encoding="utf-8", errors="replace") as f:
        tail = f.read()[-3000:]
      raise RuntimeError(f"train.py exited with {process.returncode}:\n"
                         f"{tail}")
    with open(os.path.join(model_dir, "run", "metrics.json"),
              encoding="utf-8") as f:
      metrics = json.load(f)
  return {"peak_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux.
          "seconds": seconds, "train_img_per_s": metrics["train_img_per_s"],
          "step": metrics["step"]}


# ---- Reporting --------------------------------------------------------------


def _count(value):
  """`12,345`; `-` for None (e.g. a rate of a run too short to time)."""
  return "-" if value is None else f"{value:,.0f}"


def main(argv):
  del argv
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # The trainer's epoch lines.
  unknown = [name for name in _SETS.value if name not in SETS]
  if unknown:
    raise app.UsageError(f"Unknown --sets {unknown}; choose from "
                         f"{', '.join(SETS)}.")
  counts = {"rgb64": (_RGB64_COUNT.value, _RGB64_TEST.value),
            "grey28": (_GREY28_COUNT.value, _GREY28_TEST.value)}
  workers = _WORKERS.value or os.cpu_count() or 1
  load = os.getloadavg()
  print(f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f}, threads {_THREADS.value or 'default'}, "
        f"{workers} generator processes", flush=True)
  began_all = time.perf_counter()

  results = {}
  for name in _SETS.value:
    train_count, test_count = counts[name]
    print(f"{name}: generating {train_count:,} + {test_count:,} images "
          f"({SETS[name]['encoding']}) ...", flush=True)
    folder, seconds = generate(name, train_count, test_count, workers)
    size_mb = folder_mb(folder)
    print(f"  {folder}: {size_mb:.0f} MB, "
          + (f"generated in {seconds:.0f} s "
             f"({(train_count + test_count) / seconds:.0f} img/s)"
             if seconds else "cached"), flush=True)
    results[name] = dict(folder=folder, generate_s=seconds, size_mb=size_mb,
                         train_count=train_count, test_count=test_count)

  throughput = _throughput_module()  # Imports TensorFlow.
  throughput.set_threads(_THREADS.value)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  print(f"TensorFlow {tf.__version__}, {throughput.describe_devices()}",
        flush=True)

  for name in _SETS.value:
    setup, result = SETS[name], results[name]
    split = training_split(result["folder"], setup["likelihood"])
    rate, seconds = pipeline_rate(split, setup["batch_size"],
                                  setup["binarized"], _STEPS.value,
                                  _WARMUP.value)
    result.update(pipeline=rate, streamed=len(split))
    print(f"{name}: pipeline alone {rate:,.0f} img/s ({_STEPS.value} batches "
          f"of {setup['batch_size']} in {seconds:.1f} s, "
          f"{len(split):,} streamed training records)", flush=True)
    if not _SKIP_TRAIN.value:
      steps = _CONV_STEPS.value if setup["model"] == "conv" else (
          _MLP_STEPS.value)
      result["step"] = train_step_rate(setup["model"], steps)
      print(f"{name}: {setup['model']} VAE training step "
            f"{result['step']:,.0f} img/s (in-memory data)", flush=True)

  rss = None
  if not _SKIP_RSS.value and "rgb64" in results:
    print(f"rgb64: peak memory of training the conv VAE on the stream "
          f"({_RSS_STEPS.value} steps) ...", flush=True)
    rss = rss_run(results["rgb64"]["folder"], _RSS_STEPS.value,
                  _RSS_EVAL_EXAMPLES.value, _RSS_TRAIN_FLAGS.value)
    print(f"  finished in {rss['seconds']:.0f} s; streamed training "
          f"{_count(rss['train_img_per_s'])} img/s", flush=True)

  print()
  print(f"{'set':<7} {'encoding':<8} {'train':>8} {'MB':>6} {'gen s':>6} "
        f"{'pipeline img/s':>15} {'train step img/s':>17} {'ratio':>6}")
  for name, result in results.items():
    setup = SETS[name]
    step = result.get("step")
    step_text = "-" if step is None else f"{step:.0f} ({setup['model']})"
    ratio_text = "-" if step is None else f"{result['pipeline'] / step:.1f}"
    print(f"{name:<7} {setup['encoding']:<8} {result['train_count']:>8} "
          f"{result['size_mb']:>6.0f} {result['generate_s']:>6.0f} "
          f"{result['pipeline']:>15.0f} {step_text:>17} {ratio_text:>6}")
  if rss is not None:
    decoded = results["rgb64"]["train_count"] * 64 * 64 * 3
    limit = _RSS_LIMIT_MB.value
    print(f"streamed conv training (rgb64, {rss['step']} steps): "
          f"{_count(rss['train_img_per_s'])} img/s")
    print(f"decoded in memory the {results['rgb64']['train_count']:,} rgb64 "
          f"training images would take {decoded / 2**30:.2f} GiB as uint8 "
          f"({4 * decoded / 2**30:.1f} GiB as float32)")
    print(f"peak RSS {rss['peak_rss_mb']:.0f} MB: "
          f"{'under' if rss['peak_rss_mb'] < limit else 'NOT under'} "
          f"{limit} MB")
  print(f"total {time.perf_counter() - began_all:.0f} s")

  print()
  print("| data (streamed TFRecords) | pipeline alone (images/s) | "
        "training step (images/s) | ratio |")
  print("| --- | --- | --- | --- |")
  labels = {
      "rgb64": "64×64 RGB JPEG, {n} images, batch 64",
      "grey28": "28×28 grey PNG, {n} images, batch 128, binarized"}
  for name, result in results.items():
    setup = SETS[name]
    step = result.get("step")
    print(f"| {labels[name].format(n=_count(result['train_count']))} | "
          f"{_count(result['pipeline'])} | "
          + ("- | - |" if step is None else
             f"{_count(step)} ({_MODEL_NAMES[setup['model']]}) | "
             f"{result['pipeline'] / step:.1f}× |"))
  if rss is not None:
    count = results["rgb64"]["train_count"]
    print()
    print(f"| conv VAE trained {rss['step']} steps on the "
          f"{_count(count)}-image stream | |")
    print("| --- | --- |")
    under = rss["peak_rss_mb"] < _RSS_LIMIT_MB.value
    print(f"| peak resident memory | {_count(rss['peak_rss_mb'])} MB "
          f"({'under' if under else 'over'} {_RSS_LIMIT_MB.value} MB) |")
    print(f"| the same images decoded in memory (uint8) | "
          f"{_count(count * 64 * 64 * 3 / 2**20)} MB |")
    print(f"| streamed training throughput | "
          f"{_count(rss['train_img_per_s'])} images/s |")
  if rss is not None:
    print(f"peak_rss_mb {rss['peak_rss_mb']:.0f}")


if __name__ == "__main__":
  app.run(main)
