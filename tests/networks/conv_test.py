"""Tests of `tfvae.networks.conv`: channel defaults and output shapes."""

import keras
import numpy as np
import pytest

from tfvae.networks import conv

SHAPES = [(28, 28, 1), (32, 32, 3), (64, 64, 3)]


@pytest.mark.parametrize("image_size, expected", [
    (28, (32, 64)), (32, (32, 64, 128)), (64, (32, 64, 128, 256)),
    (8, (32,)), (4, (32,))])
def test_default_channels(image_size, expected):
  assert conv.default_channels(image_size) == expected


def test_default_channels_capped():
  assert max(conv.default_channels(1024)) == 512


@pytest.mark.parametrize("image_shape", SHAPES)
def test_encoder_shapes_with_default_channels(image_shape):
  channels = conv.default_channels(image_shape[0])
  encoder = conv.ConvEncoder(6, channels)
  images = np.random.default_rng(0).random((2,) + image_shape).astype(
      np.float32)
  loc, scale = encoder(images)
  assert tuple(loc.shape) == (2, 6)
  assert tuple(scale.shape) == (2, 6)
  assert np.all(np.asarray(scale) > 0)
  convs = [layer for layer in encoder.blocks.layers
           if isinstance(layer, keras.layers.Conv2D)]
  assert [layer.filters for layer in convs] == list(channels)
  assert all(layer.strides == (2, 2) for layer in convs)


@pytest.mark.parametrize("image_shape", SHAPES)
def test_decoder_shapes_with_default_channels(image_shape):
  channels = conv.default_channels(image_shape[0])
  decoder = conv.ConvDecoder(image_shape, channels)
  z = np.random.default_rng(1).normal(size=(2, 6)).astype(np.float32)
  assert tuple(decoder(z).shape) == (2,) + image_shape
  transposed = [layer.filters for layer in decoder.blocks.layers
                if isinstance(layer, keras.layers.Conv2DTranspose)]
  assert transposed == list(reversed(channels))


@pytest.mark.parametrize("image_shape, channels", [
    ((28, 28, 1), (8, 8, 8)),   # 28 -> 14 -> 7 -> 4: grows to 32, crops.
    ((30, 30, 3), (8, 8)),      # 30 -> 15 -> 8: grows to 32, crops 1 / 1.
    ((12, 20, 1), (4, 4, 4))])  # Non-square.
def test_decoder_crops_sizes_that_do_not_halve(image_shape, channels):
  decoder = conv.ConvDecoder(image_shape, channels, batch_norm=False)
  z = np.zeros((3, 2), np.float32)
  assert tuple(decoder(z).shape) == (3,) + image_shape
  encoder = conv.ConvEncoder(2, channels, batch_norm=False)
  loc, _ = encoder(np.zeros((3,) + image_shape, np.float32))
  assert tuple(loc.shape) == (3, 2)


# ---- The fused batch norm ----------------------------------------------------


def _batch_norm_pair(shape, seed=0):
  """A Keras BatchNormalization and a `conv.BatchNormalization` with equal,
  non-trivial weights, both built for `shape`."""
  rng = np.random.default_rng(seed)
  keras_bn, fused_bn = keras.layers.BatchNormalization(), (
      conv.BatchNormalization())
  for layer in (keras_bn, fused_bn):
    layer.build(shape)
  weights = [rng.uniform(0.5, 1.5, shape[-1]), rng.normal(size=shape[-1]),
             rng.normal(size=shape[-1]), rng.uniform(0.5, 2.0, shape[-1])]
  for layer in (keras_bn, fused_bn):
    layer.set_weights([w.astype(np.float32) for w in weights])
  return keras_bn, fused_bn


@pytest.mark.parametrize("shape", [(8, 6, 5, 4), (3, 1, 1, 2)])
def test_fused_batch_norm_matches_keras_in_training(shape):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  keras_bn, fused_bn = _batch_norm_pair(shape)
  x = tf.constant(np.random.default_rng(1).normal(1.0, 3.0, shape)
                  .astype(np.float32))
  upstream = tf.constant(np.random.default_rng(2).normal(size=shape)
                         .astype(np.float32))
  results = []
  for layer in (keras_bn, fused_bn):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = layer(x, training=True)
      loss = tf.reduce_sum(y * upstream)
    grads = tape.gradient(loss, [x] + layer.trainable_weights)
    results.append([y] + grads + [v.numpy() for v in
                                  layer.non_trainable_weights])
  for expected, got in zip(*results):
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_fused_batch_norm_inference_is_keras():
  keras_bn, fused_bn = _batch_norm_pair((4, 3, 3, 2))
  x = np.random.default_rng(3).normal(size=(4, 3, 3, 2)).astype(np.float32)
  np.testing.assert_array_equal(fused_bn(x, training=False),
                                keras_bn(x, training=False))


def test_fused_batch_norm_keeps_the_policy_dtype():
  layer = conv.BatchNormalization(dtype="mixed_bfloat16")
  y = layer(np.ones((2, 2, 2, 3), np.float32), training=True)
  assert y.dtype == "bfloat16"
  assert layer.moving_mean.dtype == "float32"


def test_conv_networks_keep_keras_batch_norm_names(tmp_path, monkeypatch):
  """Variable paths and checkpoints are those of Keras's BatchNormalization."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  images = np.random.default_rng(4).random((2, 8, 8, 3)).astype(np.float32)

  def build():
    keras.utils.clear_session()
    encoder = conv.ConvEncoder(4, (8, 16))
    encoder(images, training=True)  # Moves the moving statistics.
    return encoder

  ours = build()
  with monkeypatch.context() as patch:
    patch.setattr(conv, "BatchNormalization", keras.layers.BatchNormalization)
    theirs = build()
  assert not isinstance(theirs.blocks.layers[1], conv.BatchNormalization)
  assert [v.path for v in ours.variables] == [v.path for v in theirs.variables]
  assert "conv_encoder/blocks/batch_normalization_1/moving_variance" in [
      v.path for v in ours.variables]
  saved = tf.train.Checkpoint(encoder=ours).save(str(tmp_path / "ckpt"))
  tf.train.Checkpoint(encoder=theirs).restore(
      saved).assert_existing_objects_matched().assert_consumed()
  for mine, restored in zip(ours.variables, theirs.variables):
    np.testing.assert_array_equal(mine.numpy(), restored.numpy())
