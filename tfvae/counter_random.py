"""A counter-based random generator written in TFLite built-in ops.

TF's stateless random ops do not convert to TFLite built-ins, so exported
`sample` signatures draw their noise with this generator instead: element i
of a draw is a hash of (i, seed), computed with int32 ADD, MUL, FLOOR_DIV
and FLOOR_MOD only, then turned into Normal noise by Box-Muller (LOG, SQRT,
COS). The integer part is exact on every runtime, so the SavedModel and the
`.tflite` file draw the same noise for the same seed (up to float rounding in
the transcendental functions).

The hash works modulo the prime P = 32717: P < 2**15, so every product of two
residues stays below 2**30 and no int32 operation overflows; P = 2 (mod 3),
so cubing is a bijection of the residues and no round loses information.
Each round adds a word of the counter or seed plus a round key, then cubes.
Two 15-bit hashes with different keys make one uniform with ~30 bits.
Every float constant is exact in float16, so float16-quantized TFLite files
draw the same noise.
"""

import tensorflow as tf

PRIME = 32717
_INV_2_15 = 2.0**-15
_STRETCH = 1.0 + 2.0**-10
# 2 pi rounded to float16 (6.28125), so every runtime uses the same angle.
_TWO_PI = 6.28125
# Round keys: four rounds per hash, one hash per (uniform, half) pair.
_KEYS = (
    (1103, 20011, 7919, 31337), (2903, 17389, 12553, 29989),
    (4177, 15329, 23893, 9277), (6151, 27791, 3571, 19441),
)


def _cube(x):
  return x * x % PRIME * x % PRIME


def _hash(words, keys):
  """15-bit hash of int32 residues `words`, each in [0, PRIME)."""
  x = words[0]
  for word, key in zip(words[1:] + words[:1], keys):
    x = _cube((x + word + key) % PRIME)
  return x


def _uniform_from(words, keys_high, keys_low):
  """A uniform in (0, 0.99942) from two 15-bit hashes.

  Only float constants that are exact in float16 are used (powers of two and
  1 + 2**-10), because TFLite's float16 quantization stores every float
  constant in half precision: P itself would round to 32704 and push values
  past 1. Dividing by 2**15 instead of P leaves the top 0.16% of (0, 1)
  unused; the factor 1 + 2**-10 reclaims most of it and keeps u < 1.
  """
  high = tf.cast(_hash(words, keys_high), tf.float32)
  low = tf.cast(_hash(words, keys_low), tf.float32)
  return (high + (low + 0.5) * _INV_2_15) * (_INV_2_15 * _STRETCH)


def _counter_words(num_elements, seed):
  counter = tf.range(num_elements, dtype=tf.int32)
  seed = tf.cast(seed, tf.int32)
  seed_low = tf.math.floormod(seed, PRIME)
  seed_high = tf.math.floormod(tf.math.floordiv(seed, PRIME), PRIME)
  ones = tf.ones_like(counter)
  return [counter % PRIME, counter // PRIME % PRIME, seed_low * ones,
          seed_high * ones]


def uniform(shape, seed):
  """Uniform noise in (0, 1) that is a pure function of `shape` and `seed`.

  Args:
    shape: 1-D int32 tensor or list, the output shape (up to ~1e9 elements).
    seed: int32 scalar tensor.

  Returns:
    float32 tensor of `shape`.
  """
  shape = tf.cast(shape, tf.int32)
  words = _counter_words(tf.reduce_prod(shape), seed)
  return tf.reshape(_uniform_from(words, _KEYS[0], _KEYS[1]), shape)


def normal(shape, seed):
  """Standard Normal noise that is a pure function of `shape` and `seed`.

  Args:
    shape: 1-D int32 tensor or list, the output shape.
    seed: int32 scalar tensor.

  Returns:
    float32 tensor of `shape`, drawn by Box-Muller from two uniforms.
  """
  shape = tf.cast(shape, tf.int32)
  words = _counter_words(tf.reduce_prod(shape), seed)
  radius = tf.sqrt(-2.0 * tf.math.log(_uniform_from(words, *_KEYS[:2])))
  angle = _TWO_PI * _uniform_from(words, *_KEYS[2:])
  return tf.reshape(radius * tf.cos(angle), shape)
