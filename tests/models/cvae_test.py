"""Tests of `tfvae.models.cvae.CVAE`: conditioning, errors, zoo, generation.

The zoo part trains both conditionings on the harness's labelled shapes
(0 square, 1 disc, 2 horizontal bar, 3 vertical bar) and checks that the
exported `sample` signature, given a label, draws that class: horizontal bars
for 2 and vertical bars for 3, from the SavedModel and from TFLite.
"""

import numpy as np
import pytest
import tensorflow as tf

from tests.models import zoo_harness
from tfvae import models
from tfvae.config import ModelConfig
from tfvae.config import RunConfig
from tfvae.config import TrainConfig
from tfvae.data import pipeline
from tfvae.errors import ConfigError
from tfvae.models import registry
from tfvae.models.cvae import CVAE

IMAGE_SHAPE = (6, 6, 1)
NUM_CLASSES = 3
MODES = ("add", "concat")
HORIZONTAL_BAR, VERTICAL_BAR = 2, 3


def _model(conditioning, num_classes=NUM_CLASSES, **overrides):
  config = ModelConfig(**dict(dict(model="cvae", conditioning=conditioning,
                                   hidden_dims=(8,), latent_dim=3),
                              **overrides))
  model = models.build(config, IMAGE_SHAPE, num_classes)
  model.build_from_shape()
  return model


def _images(batch, seed=0):
  rng = np.random.default_rng(seed)
  return tf.constant((rng.random((batch,) + IMAGE_SHAPE) < 0.5).astype(
      np.float32))


# ---- Unit ------------------------------------------------------------------


def test_registered_as_conditional():
  assert registry.get("cvae") is CVAE
  assert CVAE.conditional
  assert "conditioning" in CVAE.OPTIONS


@pytest.mark.parametrize("mode", MODES)
def test_output_shapes_with_labels(mode):
  model = _model(mode)
  images = _images(4)
  labels = tf.constant([0, 1, 2, 1], tf.int32)
  params = model.encode(images, labels)
  assert params["loc"].shape == (4, 3) and params["scale"].shape == (4, 3)
  decoded = model.decode(tf.zeros([4, 3]), labels)
  assert decoded["mean"].shape == (4,) + IMAGE_SHAPE
  assert decoded["logits"].shape == (4,) + IMAGE_SHAPE
  assert model.reconstruct(images, labels).shape == (4,) + IMAGE_SHAPE
  assert model.sample(5, [0, 1], tf.constant([2] * 5)).shape == (
      (5,) + IMAGE_SHAPE)
  terms = model.compute_loss(images, tf.zeros([4, 3]),
                             tf.constant(0, tf.int64), tf.constant(1.0),
                             labels, training=False)
  for value in terms.values():
    assert value.shape == (4,) and np.all(np.isfinite(value.numpy()))
  log_w = model.log_weights(images, tf.zeros([7, 4, 3]), labels)
  assert log_w.shape == (7, 4)


@pytest.mark.parametrize("mode", MODES)
def test_label_changes_decoded_image_and_posterior(mode):
  model = _model(mode)
  z = tf.random.stateless_normal([NUM_CLASSES, 3], seed=[1, 2])
  z = tf.tile(z[:1], [NUM_CLASSES, 1])  # the same z for every class
  means = model.decode(z, tf.range(NUM_CLASSES))["mean"].numpy()
  for a in range(NUM_CLASSES):
    for b in range(a + 1, NUM_CLASSES):
      assert np.max(np.abs(means[a] - means[b])) > 1e-4, (a, b)
  images = tf.tile(_images(1), [NUM_CLASSES, 1, 1, 1])
  loc = model.encode(images, tf.range(NUM_CLASSES))["loc"].numpy()
  assert np.max(np.abs(loc[0] - loc[1])) > 1e-6


def test_concat_out_of_range_label_is_zero_one_hot():
  model = _model("concat")
  z = tf.random.stateless_normal([2, 3], seed=[3, 4])
  got = model.decode(z, tf.constant([NUM_CLASSES, -1]))["logits"]
  want = model.decoder(tf.concat([z, tf.zeros([2, NUM_CLASSES])], -1))
  np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)


def test_conditioning_rejected_for_unconditional_model():
  with pytest.raises(ConfigError, match="--conditioning=add") as error:
    registry.check_options(ModelConfig(model="vae", conditioning="add"))
  assert "cvae" in str(error.value)


@pytest.mark.parametrize("mode", MODES)
def test_conditioning_accepted(mode):
  registry.check_options(ModelConfig(model="cvae", conditioning=mode))


def test_vamp_prior_rejected():
  with pytest.raises(ConfigError, match="--prior=vamp"):
    registry.check_options(ModelConfig(model="cvae", prior="vamp"))


def test_needs_num_classes():
  with pytest.raises(ConfigError, match="--model=cvae needs class labels"):
    models.build(ModelConfig(model="cvae"), IMAGE_SHAPE, None)


def test_trainer_rejects_unlabelled_data(tmp_path):
  from tfvae.training import loop  # pylint: disable=g-import-not-at-top
  x = np.zeros((10,) + IMAGE_SHAPE, np.uint8)
  data = pipeline.Data(train_x=x, train_y=None, validation_x=x[:2],
                       validation_y=None, test_x=x[:2], test_y=None,
                       num_classes=None, source="unlabelled.npz")
  config = RunConfig(
      model=ModelConfig(model="cvae", hidden_dims=(8,), latent_dim=3),
      train=TrainConfig(model_dir=str(tmp_path / "run"), train_steps=1,
                        batch_size=2, progress=False)).validate()
  with pytest.raises(ConfigError) as error:
    loop.Trainer(config, data)
  message = str(error.value)
  assert "--model=cvae" in message
  assert "labels" in message and "unlabelled.npz" in message


# ---- Zoo: learns, serves, converts, generates the asked-for class ----------


@pytest.fixture(scope="module", params=MODES)
def run(request, tmp_path_factory):
  return zoo_harness.train_variant(
      ModelConfig(model="cvae", conditioning=request.param, hidden_dims=(64,),
                  latent_dim=4),
      tmp_path_factory.mktemp(f"cvae_{request.param}"))


def _bar_orientation(images):
  """Mean over images of var(row means) - var(column means).

  Measured per image, then averaged: a horizontal bar fills a few rows (row
  means vary much, column means little), a vertical bar the other way round;
  the mean image of bars at random positions blurs this out.

  Args:
    images: `[n, H, W, 1]` pixel means.

  Returns:
    A scalar: > 0 for horizontal bars, < 0 for vertical ones.
  """
  images = np.asarray(images)[..., 0]
  rows = images.mean(axis=2).var(axis=1)
  columns = images.mean(axis=1).var(axis=1)
  return float(np.mean(rows - columns))


def _assert_generates_bars(sample_fn):
  """`sample_fn(label, n)` -> `[n, H, W, 1]` draws the asked-for bars."""
  num = 64
  horizontal = _bar_orientation(sample_fn(HORIZONTAL_BAR, num))
  vertical = _bar_orientation(sample_fn(VERTICAL_BAR, num))
  assert horizontal > 0 > vertical, (horizontal, vertical)


def test_learns(run):
  zoo_harness.assert_learns(run)
  assert run.metrics["test_nll"] <= run.metrics["test_neg_elbo"] + 0.5


def test_exports_and_serves(run, tmp_path):
  served = zoo_harness.assert_serves(run, tmp_path)
  zoo_harness.assert_loads(run)
  assert served["sample"]["images"].shape == (2, 16, 16, 1)


def test_tflite_runs_with_label_inputs(run):
  interpreter = zoo_harness.assert_tflite_runs(run)
  signatures = interpreter.get_signature_list()
  for name in ("sample", "decode", "encode"):
    assert "label" in signatures[name]["inputs"], (name, signatures[name])


def test_saved_model_samples_the_asked_for_class(run):
  loaded = tf.saved_model.load(run.export.version_dir)
  sample = loaded.signatures["sample"]

  def sample_fn(label, num):
    return sample(num_samples=tf.constant(num), seed=tf.constant(3),
                  label=tf.constant([label] * num, tf.int32))["images"]

  _assert_generates_bars(sample_fn)


def test_tflite_samples_the_asked_for_class(run):
  from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top
  runner = Interpreter(
      model_path=run.export.tflite_path).get_signature_runner("sample")

  def sample_fn(label, num):
    return runner(num_samples=np.int32(num), seed=np.int32(3),
                  label=np.full([num], label, np.int32))["images"]

  _assert_generates_bars(sample_fn)
