"""Tiny models and binary images for the variants' unit tests."""

import tensorflow as tf

from tfvae import models
from tfvae.config import ModelConfig

IMAGE_SHAPE = (4, 4, 1)
STEP = tf.constant(0, tf.int64)


def build(model, latent_dim, **overrides):
  """A built `model` variant on `IMAGE_SHAPE` with one hidden layer of 8."""
  config = ModelConfig(**dict(dict(model=model, hidden_dims=(8,),
                                   latent_dim=latent_dim), **overrides))
  built = models.build(config, IMAGE_SHAPE)
  built.build_from_shape()
  return built


def binary_images(count, seed=0):
  """`[count, 4, 4, 1]` float32 images of 0s and 1s, fixed by `seed`."""
  return tf.cast(tf.random.stateless_uniform((count,) + IMAGE_SHAPE,
                                             [seed, 1]) > 0.5, tf.float32)
