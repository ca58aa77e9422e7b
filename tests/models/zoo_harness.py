"""Shared checks of every model variant: it learns, exports, and serves.

A variant's test calls `train_variant(model_config, tmp_path)` once (module
fixture) and then the `assert_*` helpers:

- `assert_learns`: the training loss fell clearly below its start, and the
  test reconstructions beat the mean training image;
- `assert_serves`: the export's every signature runs through TF's graph-mode
  loader with the `serve` tag in a fresh process without tfvae or TFP (as TF
  Serving loads it) and equals the in-memory model within 1e-5;
- `assert_tflite_runs`: the TFLite `sample`/`decode`/`encode` run and are
  finite;
- `assert_loads`: `tfvae.load` of the export gives every signature's outputs
  (numpy in, numpy out) equal to the in-memory model within 1e-5;
- `assert_discriminator_is_auxiliary` (adversarial variants): the
  discriminator trained by its own optimizer only, is in the checkpoint and
  not in the export;
- `assert_samples_from_fitted_mixture` (`--sampler=gmm`): the mixture has
  the training codes' mean and covariance, and the SavedModel and TFLite
  `sample` decode its draws, not N(0, I) codes.

The data are 16x16 grey shapes (squares, discs, bars) with their class as
label, so conditional variants train on the same data.
"""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np

from tests.conftest import REPO_ROOT

SIZE = 16
NUM_CLASSES = 4
_LOADER = os.path.join(REPO_ROOT, "tests", "export", "graph_loader_main.py")


def make_shapes(num_examples, seed=0):
  """`[N, 16, 16, 1]` uint8 images and `[N]` int32 labels of 4 shapes."""
  rng = np.random.default_rng(seed)
  images = np.zeros((num_examples, SIZE, SIZE, 1), np.uint8)
  labels = rng.integers(0, NUM_CLASSES, num_examples).astype(np.int32)
  yy, xx = np.mgrid[0:SIZE, 0:SIZE]
  for image, label in zip(images, labels):
    radius = rng.integers(3, 6)
    cy, cx = rng.integers(radius, SIZE - radius, 2)
    if label == 0:
      mask = (np.abs(yy - cy) <= radius) & (np.abs(xx - cx) <= radius)
    elif label == 1:
      mask = (yy - cy)**2 + (xx - cx)**2 <= radius**2
    elif label == 2:
      mask = (np.abs(yy - cy) <= 1) & (np.abs(xx - cx) <= radius)
    else:
      mask = (np.abs(xx - cx) <= 1) & (np.abs(yy - cy) <= radius)
    image[mask] = 255
  return images, labels


@dataclasses.dataclass
class VariantRun:
  """A trained variant: its `RunResult`, export and data."""
  result: object
  export: object
  config: object
  train_x: np.ndarray
  test_x: np.ndarray
  test_y: np.ndarray

  @property
  def model(self):
    return self.result.trainer.model

  @property
  def metrics(self):
    return self.result.metrics


def train_variant(model_config, root, train_steps=300, batch_size=64,
                  learning_rate=2e-3, eval_iw_samples=10, frechet_samples=0):
  """Trains `model_config` on the shapes in-process, evaluates, exports.

  Args:
    model_config: a `ModelConfig`.
    root: a folder for data, run and export (e.g. a pytest tmp folder).
    train_steps: optimizer steps.
    batch_size: batch size.
    learning_rate: Adam learning rate.
    eval_iw_samples: k of the test log p(x) estimate.
    frechet_samples: `--frechet_samples` (0 skips the Frechet distance and
      its feature classifier, which `sample_quality_test` covers).

  Returns:
    A `VariantRun`.
  """
  from tfvae import config as config_lib  # pylint: disable=g-import-not-at-top
  from tfvae.export import exporter  # pylint: disable=g-import-not-at-top
  from tfvae.training import experiment  # pylint: disable=g-import-not-at-top
  root = str(root)
  images, labels = make_shapes(1500)
  data_path = os.path.join(root, "shapes.npz")
  np.savez(data_path, x=images, y=labels)
  config = config_lib.RunConfig(
      data=config_lib.DataConfig(dataset="npz", data_dir=data_path,
                                 download=False, test_fraction=0.2),
      model=model_config,
      train=config_lib.TrainConfig(
          model_dir=os.path.join(root, "run"), epochs=0,
          train_steps=train_steps, batch_size=batch_size,
          learning_rate=learning_rate, steps_per_loop=50, progress=False),
      eval=config_lib.EvalConfig(eval_iw_samples=eval_iw_samples,
                                 eval_batch_size=200, images=True,
                                 frechet_samples=frechet_samples),
      export=config_lib.ExportConfig(
          export_dir=os.path.join(root, "export")),
  ).validate()
  result = experiment.train_and_evaluate(config)
  export = exporter.export_run(result.trainer.model, config)
  data = result.trainer.data
  return VariantRun(result, export, config, data.train_x, data.test_x,
                    data.test_y)


def _train_losses(model_dir):
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  events = event_accumulator.EventAccumulator(
      os.path.join(model_dir, "train"), size_guidance={"tensors": 0})
  events.Reload()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return [float(tf.make_ndarray(e.tensor_proto))
          for e in events.Tensors("loss")]


def assert_learns(run, min_drop=0.2):
  """The loss fell by `min_drop` of its start; reconstructions beat the mean.

  Args:
    run: a `VariantRun`.
    min_drop: required relative drop of the logged training loss.
  """
  losses = _train_losses(run.config.train.model_dir)
  assert len(losses) >= 2, losses
  first, last = losses[0], losses[-1]
  assert np.isfinite(last)
  assert last < first - min_drop * abs(first), (first, last)
  train = run.train_x.astype(np.float32) / 255.0
  test = run.test_x.astype(np.float32) / 255.0
  mean_image_mse = float(np.mean((test - train.mean(axis=0))**2))
  mse = run.metrics["test_reconstruction_mse"]
  assert mse < 0.8 * mean_image_mse, (mse, mean_image_mse)


def assert_serves(run, tmp_path, inputs_by_signature=None):
  """Every signature runs on the serve-tag graph loader and equals the model.

  Args:
    run: a `VariantRun`.
    tmp_path: a folder for the inputs and outputs.
    inputs_by_signature: signature -> input name -> array; default
      `signatures.example_inputs(model)`.

  Returns:
    Dict signature -> output name -> array, as the loader returned them.
  """
  from tfvae.export import signatures  # pylint: disable=g-import-not-at-top
  model = run.model
  if inputs_by_signature is None:
    inputs_by_signature = {
        name: {k: v.numpy() for k, v in inputs.items()}
        for name, inputs in signatures.example_inputs(model).items()}
  functions = signatures.signature_functions(model)
  assert set(inputs_by_signature) == set(functions)
  manifest = {"model": {"saved_model": run.export.version_dir,
                        "inputs": str(tmp_path / "inputs"),
                        "outputs": str(tmp_path / "outputs")}}
  for name, inputs in inputs_by_signature.items():
    folder = tmp_path / "inputs" / name
    folder.mkdir(parents=True, exist_ok=True)
    for key, value in inputs.items():
      np.save(folder / f"{key}.npy", np.asarray(value))
  manifest_path = tmp_path / "manifest.json"
  manifest_path.write_text(json.dumps(manifest))
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  done = subprocess.run([sys.executable, "-I", _LOADER, str(manifest_path)],
                        capture_output=True, text=True, env=env, timeout=300,
                        check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  served = {}
  for name, inputs in inputs_by_signature.items():
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    want = functions[name](**{k: tf.constant(v) for k, v in inputs.items()})
    served[name] = {}
    for key, value in want.items():
      got = np.load(tmp_path / "outputs" / name / f"{key}.npy")
      np.testing.assert_allclose(got, value.numpy(), atol=1e-5, rtol=0,
                                 err_msg=f"{name}/{key}")
      served[name][key] = got
  return served


def assert_tflite_runs(run):
  """The TFLite signatures run on example inputs and return finite values."""
  from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top
  from tfvae.export import signatures  # pylint: disable=g-import-not-at-top
  interpreter = Interpreter(model_path=run.export.tflite_path)
  examples = signatures.example_inputs(run.model)
  for name in signatures.TFLITE_SIGNATURES:
    outputs = interpreter.get_signature_runner(name)(
        **{k: v.numpy() for k, v in examples[name].items()})
    for key, value in outputs.items():
      if np.issubdtype(value.dtype, np.floating):
        assert np.all(np.isfinite(value)), (name, key)
  return interpreter


def assert_loads(run):
  """`tfvae.load(version_dir)` equals the in-memory signatures within 1e-5.

  Calls `reconstruct`, `encode`, `decode`, `sample` and (when the model has
  a likelihood bound) `log_likelihood` of the loaded model on
  `signatures.example_inputs`, with `labels=` for conditional models; a
  model without a bound must refuse `log_likelihood` with a `TfvaeError`.

  Returns:
    The `tfvae.loading.LoadedModel`.
  """
  import pytest  # pylint: disable=g-import-not-at-top
  import tfvae  # pylint: disable=g-import-not-at-top
  from tfvae.export import signatures  # pylint: disable=g-import-not-at-top
  model = run.model
  loaded = tfvae.load(run.export.version_dir)
  functions = signatures.signature_functions(model)
  examples = signatures.example_inputs(model)
  assert set(loaded.signatures) == set(functions)
  assert loaded.data_shape == tuple(model.data_shape)
  assert loaded.conditional == model.conditional

  def want(name):
    return {k: v.numpy() for k, v in functions[name](**examples[name]).items()}

  def numpy(name, key):
    return examples[name][key].numpy()

  labels = numpy("encode", "label") if model.conditional else None
  sample_labels = numpy("sample", "label") if model.conditional else None
  z_name = next(k for k in examples["decode"] if k != "label")
  out = "images" if len(model.data_shape) == 3 else "x"
  got = {
      "reconstruct": {out: loaded.reconstruct(numpy("reconstruct", "x"),
                                              labels=labels)},
      "encode": loaded.encode(numpy("encode", "x"), labels=labels),
      "decode": loaded.decode(numpy("decode", z_name), labels=labels),
      "sample": {out: loaded.sample(
          int(numpy("sample", "num_samples")), int(numpy("sample", "seed")),
          labels=sample_labels)},
  }
  if "log_likelihood" in functions:
    got["log_likelihood"] = {"log_prob": loaded.log_likelihood(
        numpy("log_likelihood", "x"),
        int(numpy("log_likelihood", "num_samples")), labels=labels)}
  else:
    with pytest.raises(tfvae.TfvaeError, match="log_likelihood"):
      loaded.log_likelihood(numpy("encode", "x"), labels=labels)
  for name, outputs in got.items():
    expected = want(name)
    assert set(outputs) == set(expected), name
    for key, value in expected.items():
      np.testing.assert_allclose(outputs[key], value, atol=1e-5, rtol=0,
                                 err_msg=f"tfvae.load: {name}/{key}")
  return loaded


def _mixture_moments(weights, means, covariances):
  """Mean `[D]` and covariance `[D, D]` of a Gaussian mixture."""
  mean = weights @ means
  second = np.einsum("k,kij->ij", weights, covariances + np.einsum(
      "ki,kj->kij", means, means))
  return mean, second - np.outer(mean, mean)


def assert_samples_from_fitted_mixture(run, num_samples=64, seed=3):
  """The exported `sample` draws from the fitted `gmm` sampler.

  Checks, for an unconditional model trained with `--sampler=gmm`:
  the mixture's mean and covariance equal those of the training codes
  (`fitted_code` of the binarized training split; EM's M step keeps them,
  with the unbiased covariance for K = 1) plus the jitter; the SavedModel's
  and the TFLite `sample` equal decoding mean_k + L_k eps of the noise the
  signature draws, k chosen by inverse CDF of the weights (numpy); and they
  differ from decoding that noise as N(0, I) codes (the unfitted sampler).

  Args:
    run: a `VariantRun`.
    num_samples: samples drawn from each export.
    seed: their seed.

  Returns:
    `[num_samples, D]` the codes the samples decode.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top
  from tfvae import counter_random  # pylint: disable=g-import-not-at-top
  from tfvae import samplers  # pylint: disable=g-import-not-at-top
  from tfvae.data import pipeline  # pylint: disable=g-import-not-at-top
  from tfvae.export import signatures  # pylint: disable=g-import-not-at-top
  model, trainer = run.model, run.result.trainer
  sampler = model.code_sampler
  assert sampler is not None and sampler.is_fitted()
  dataset = pipeline.eval_dataset(
      trainer.data.train_x, None, batch_size=256, binarized=trainer.binarized,
      binarization_seed=run.config.eval.test_binarization_seed)
  codes = np.concatenate([model.fitted_code(batch["image"]).numpy()
                          for batch in dataset]).astype(np.float64)
  assert int(sampler.fitted_codes.numpy()) == min(len(codes),
                                                  samplers.MAX_FIT_CODES)
  log_weights, means, trils = (v.numpy().astype(np.float64) for v in (
      sampler.log_weights, sampler.means, sampler.scale_trils))
  weights = np.exp(log_weights - log_weights.max())
  weights /= weights.sum()
  mean, covariance = _mixture_moments(weights, means,
                                      trils @ np.swapaxes(trils, 1, 2))
  scale = codes.std()
  np.testing.assert_allclose(mean, codes.mean(0), rtol=0, atol=1e-4 * scale)
  ddof = 1 if sampler.num_components == 1 else 0
  np.testing.assert_allclose(
      covariance, np.cov(codes, rowvar=False, ddof=ddof)
      + samplers.COVARIANCE_JITTER * np.eye(codes.shape[1]),
      rtol=0, atol=1e-4 * scale**2)
  # The noise the `sample` signature draws, and the numpy mixture draw.
  dim = sampler.code_dim
  normal = counter_random.normal([num_samples, dim], seed).numpy()
  uniform = counter_random.uniform(
      [num_samples, 1],
      seed + signatures._UNIFORM_SEED_OFFSET).numpy()  # pylint: disable=protected-access
  component = np.minimum(
      np.sum(uniform > np.cumsum(weights)[None, :], axis=1),
      len(weights) - 1)
  z = means[component] + np.einsum("nij,nj->ni", trils[component], normal)
  want = model.decode(tf.constant(z, tf.float32))["mean"].numpy()
  saved = tf.saved_model.load(run.export.version_dir).signatures["sample"](
      num_samples=tf.constant(num_samples), seed=tf.constant(seed))
  out = signatures.output_name(model)
  saved = saved[out].numpy()
  lite = Interpreter(model_path=run.export.tflite_path).get_signature_runner(
      "sample")(num_samples=np.int32(num_samples), seed=np.int32(seed))[out]
  np.testing.assert_allclose(saved, want, rtol=0, atol=1e-4)
  np.testing.assert_allclose(lite, saved, rtol=0, atol=1e-4)
  unfitted = model.decode(tf.constant(normal))["mean"].numpy()
  assert np.abs(saved - unfitted).max() > 0.05
  return z


def assert_discriminator_is_auxiliary(run, train_steps):
  """The discriminator trained by its own optimizer only (`train_steps`
  steps, like the model); the checkpoint holds it, the export does not."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  trainer, model = run.result.trainer, run.model
  discriminator = {id(v) for v in model.discriminator.trainable_variables}
  assert discriminator
  assert not discriminator & {id(v) for v in trainer.model_variables}
  assert {id(v) for v in model.encoder.trainable_variables} <= {
      id(v) for v in trainer.model_variables}
  assert int(trainer.auxiliary_optimizers["discriminator"].iterations) == (
      train_steps)
  assert int(trainer.optimizer.iterations) == train_steps
  assert trainer.metrics_names[-2:] == ("discriminator_loss",
                                        "discriminator_accuracy")
  assert not {id(v) for v in model.discriminator.variables} & {
      id(v) for v in model.variables}
  saved = [name for name, _ in tf.train.list_variables(os.path.join(
      run.export.version_dir, "variables", "variables"))
           if name.startswith("variables/")]
  assert len(saved) == len(model.variables)
  checkpoint = trainer.manager.latest_checkpoint
  reader = tf.train.load_checkpoint(checkpoint)
  kernel = model.discriminator.head.kernel
  stored = [name for name, shape in tf.train.list_variables(checkpoint)
            if tuple(shape) == tuple(kernel.shape)
            and np.array_equal(reader.get_tensor(name), kernel.numpy())]
  assert stored, "the discriminator's logit kernel is not in the checkpoint"
