"""Pictures of what a model learned, as PNG grids and image summaries.

- `reconstructions.png`: rows of test inputs, each above its reconstruction.
- `samples.png`: pixel means of p(x|z) for z drawn from the prior.
- `traversals.png`: one row per latent dimension (the most used ones first),
  varying that coordinate from -3 to 3 around a test image's code.
- `interpolations.png`: one row per pair of test images, decoding codes on
  the straight line between their posterior means.
"""

import os

import numpy as np
import tensorflow as tf

TRAVERSAL_RANGE = 3.0
MAX_TRAVERSAL_ROWS = 32
_COLUMNS = 10


def grid(images, columns, pad=2):
  """Tiles images into one picture.

  Args:
    images: `[n, H, W, C]` floats in [0, 1]; n a multiple of `columns`.
    columns: images per row.
    pad: white pixels between images.

  Returns:
    `[rows * (H + pad) + pad, columns * (W + pad) + pad, C]` uint8 array.
  """
  images = np.clip(np.asarray(images), 0.0, 1.0)
  count, height, width, channels = images.shape
  rows = -(-count // columns)
  canvas = np.ones((rows * (height + pad) + pad,
                    columns * (width + pad) + pad, channels), np.float32)
  for index, image in enumerate(images):
    top = pad + (index // columns) * (height + pad)
    left = pad + (index % columns) * (width + pad)
    canvas[top:top + height, left:left + width] = image
  return np.round(canvas * 255).astype(np.uint8)


def write_png(path, picture):
  """Writes a `[H, W, C]` uint8 array as PNG, atomically."""
  tmp = path + ".tmp"
  tf.io.write_file(tmp, tf.io.encode_png(picture))
  os.replace(tmp, path)


def reconstructions(model, images, labels=None, columns=_COLUMNS):
  """Inputs and reconstructions on alternating rows; `[n * 2, H, W, C]`."""
  count = columns * (len(images) // columns)
  images = images[:count]
  labels = None if labels is None else labels[:count]
  recon = model.reconstruct(images, labels).numpy()
  rows = []
  for start in range(0, len(images), columns):
    rows += [images[start:start + columns], recon[start:start + columns]]
  return np.concatenate(rows)


def samples(model, count=64, seed=0, num_classes=None):
  """`[count, H, W, C]` pixel means of samples from the prior.

  Conditional models sample row by row: row r shows class r (cycling).
  """
  labels = None
  if model.conditional:
    labels = tf.constant(np.arange(count) // 8 % num_classes, tf.int32)
  return model.sample(count, tf.constant([seed, 0], tf.int32),
                      labels).numpy()


def traversals(model, image, usage, label=None, columns=_COLUMNS + 1):
  """Code traversals around one image's code.

  Args:
    model: the model.
    image: `[1, H, W, C]` the image whose code is the centre.
    usage: `[code_dim]` how much each dimension is used (average KL, or the
      code's variance over the data); rows are ordered by it (most used
      first) and capped at `MAX_TRAVERSAL_ROWS`.
    label: `[1]` int32 class of the image (conditional models only).
    columns: values per row, evenly spaced over [-3, 3] standard deviations
      of the prior (codes of models without one are scaled by `usage`).

  Returns:
    `[rows * columns, H, W, C]` pixel means.
  """
  centre = model.encode_code(image, label).numpy()[0]
  dims = np.argsort(-np.asarray(usage))[:MAX_TRAVERSAL_ROWS]
  values = np.linspace(-TRAVERSAL_RANGE, TRAVERSAL_RANGE, columns)
  if not model.has_likelihood_bound:  # usage is a variance: use its scale.
    values = values[None, :] * np.sqrt(np.asarray(usage)[dims])[:, None]
  else:
    values = np.broadcast_to(values, (len(dims), columns))
  codes = np.repeat(centre[None], len(dims) * columns, axis=0)
  for row, dim in enumerate(dims):
    codes[row * columns:(row + 1) * columns, dim] = values[row]
  labels = _repeat_label(label, len(codes))
  return model.decode_code(tf.constant(codes, tf.float32),
                           labels)["mean"].numpy()


def interpolations(model, images, labels=None, pairs=6, columns=_COLUMNS):
  """Decoded straight lines between pairs of codes.

  Args:
    model: the model.
    images: `[>= 2 * pairs, H, W, C]` test images; pair i is (2i, 2i + 1).
    labels: `[>= 2 * pairs]` int32 classes (conditional models only; each
      line is decoded with its first image's class).
    pairs: rows of the picture.
    columns: points per line, both ends included.

  Returns:
    `[pairs * columns, H, W, C]` pixel means.
  """
  pairs = min(pairs, len(images) // 2)
  labels = None if labels is None else labels[:2 * pairs]
  codes = model.encode_code(images[:2 * pairs], labels).numpy()
  weights = np.linspace(0.0, 1.0, columns)[None, :, None]
  lines = (codes[0::2, None] * (1 - weights) + codes[1::2, None] * weights)
  flat = lines.reshape(pairs * columns, -1)
  line_labels = None
  if labels is not None:
    line_labels = tf.constant(np.repeat(np.asarray(labels)[0::2], columns),
                              tf.int32)
  return model.decode_code(tf.constant(flat, tf.float32),
                           line_labels)["mean"].numpy()


def _repeat_label(label, count):
  if label is None:
    return None
  return tf.fill([count], tf.cast(tf.reshape(label, [])[()], tf.int32))


def write_all(model, test_images, usage, out_dir, writer=None, step=0,
              seed=0, test_labels=None, num_classes=None):
  """Writes every picture as PNG under `out_dir` and as image summaries.

  Args:
    model: the trained model.
    test_images: `[n, H, W, C]` test images, n >= 20.
    usage: `[code_dim]` per-dimension usage (average KL or code variance).
    out_dir: folder for the PNG files (created).
    writer: a `tf.summary` writer, or None.
    step: summary step.
    seed: seed of the prior samples.
    test_labels: `[n]` int32 labels (used by conditional models).
    num_classes: number of classes (used by conditional models).

  Returns:
    Dict of picture name -> PNG path.
  """
  os.makedirs(out_dir, exist_ok=True)
  test_images = np.asarray(test_images, np.float32)
  labels = None
  if model.conditional:
    labels = tf.constant(np.asarray(test_labels), tf.int32)
  pictures = {
      "reconstructions": (reconstructions(
          model, test_images[:40], None if labels is None else labels[:40]),
                          _COLUMNS),
      "samples": (samples(model, seed=seed, num_classes=num_classes), 8),
      "traversals": (traversals(model, test_images[:1], usage,
                                None if labels is None else labels[:1]),
                     _COLUMNS + 1),
      "interpolations": (interpolations(
          model, test_images[:12], None if labels is None else labels[:12]),
                         _COLUMNS),
  }
  return {name: write_picture(grid(images, columns), out_dir, name, writer,
                              step)
          for name, (images, columns) in pictures.items()}


def write_picture(picture, out_dir, name, writer=None, step=0):
  """Writes `[H, W, C]` uint8 `picture` as `out_dir/name.png` and as an
  image summary; returns the path."""
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, f"{name}.png")
  write_png(path, picture)
  if writer is not None:
    with writer.as_default(step=step):
      tf.summary.image(name, picture[None])
  return path
