"""Pictures of what a model learned, as PNG grids and image summaries.

- `reconstructions.png`: rows of test inputs, each above its reconstruction.
- `samples.png`: pixel means of p(x|z) for z drawn from the prior.
- `traversals.png`: one row per active latent dimension (the most used
  ones first), varying that coordinate from -3 to 3 around a test image's
  code, and a caption saying how many inactive ones were left out
  (`traversal_rows`).
- `interpolations.png`: one row per pair of test images, decoding codes on
  the straight line between their posterior means.
"""

import dataclasses
import functools
import os
from typing import Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont
import tensorflow as tf

from tfvae.evaluation.likelihood import ACTIVE_UNIT_THRESHOLD

TRAVERSAL_RANGE = 3.0
MAX_TRAVERSAL_ROWS = 32
_COLUMNS = 10
_CAPTION_FONT_SIZE = 11
_CAPTION_LINE = 14  # Pixels per line of the caption.
_CAPTION_PAD = 3


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


@dataclasses.dataclass(frozen=True)
class TraversalRows:
  """Which code dimensions `traversals.png` shows, one row each.

  Attributes:
    dims: the dimensions shown, most used first.
    active: how many of the code's dimensions are active (their code's
      variance over the test data is above `ACTIVE_UNIT_THRESHOLD`, as
      `likelihood.active_units` counts them).
    code_dim: the code's size.
  """
  dims: Tuple[int, ...]
  active: int
  code_dim: int

  @property
  def inactive(self):
    return self.code_dim - self.active

  @property
  def left_out(self):
    """Dimensions not shown: the inactive ones and any over the cap."""
    return self.code_dim - len(self.dims)

  def caption(self):
    """One line saying what the rows are and how many were left out."""
    if not self.active:
      return (f"no active dimensions (all {self.code_dim} inactive); the "
              f"most used one is shown")
    shown = len(self.dims)
    plural = "s" if shown != 1 else ""
    if shown < self.active:
      return (f"{shown} of {self.active} active dimensions shown, most used "
              f"first; {self.active - shown} more active and "
              f"{self.inactive} inactive left out")
    return (f"{shown} active dimension{plural} shown, most used first; "
            f"{self.inactive} inactive left out")

  def as_dict(self):
    """JSON-ready (`metrics.json`'s `traversals`)."""
    return {"dims": list(self.dims), "active": self.active,
            "inactive": self.inactive, "left_out": self.left_out,
            "code_dim": self.code_dim, "caption": self.caption()}


def traversal_rows(usage: Sequence[float],
                   code_variance: Optional[Sequence[float]] = None,
                   threshold: float = ACTIVE_UNIT_THRESHOLD,
                   max_rows: int = MAX_TRAVERSAL_ROWS) -> TraversalRows:
  """The active dimensions, most used first; the most used one if none is.

  Args:
    usage: `[code_dim]` how much each dimension is used (average KL, or the
      code's variance over the data): the rows' order.
    code_variance: `[code_dim]` the variance of each dimension of the
      deterministic code (the posterior mean) over the data; a dimension is
      active when it is above `threshold` (Burda et al. 2016). None counts
      every dimension as active.
    threshold: see `code_variance`.
    max_rows: at most this many rows.

  Returns:
    `TraversalRows`.
  """
  usage = np.asarray(usage, np.float64)
  order = np.argsort(-usage, kind="stable")
  if code_variance is None or len(code_variance) != len(usage):
    active = np.ones(len(usage), bool)
  else:
    active = np.asarray(code_variance, np.float64) > threshold
  dims = [int(d) for d in order if active[d]][:max_rows]
  if not dims:
    dims = [int(d) for d in order[:1]]
  return TraversalRows(tuple(dims), int(active.sum()), len(usage))


def captioned(picture, text):
  """`[H, W, C]` uint8 `picture` above a white band with `text` in black.

  The text is wrapped at spaces to the picture's width (a longer word is
  cut off at the edge), one band line per line. Pictures that are neither
  grey nor RGB are returned as they are.
  """
  _, width, channels = picture.shape
  mode = {1: "L", 3: "RGB"}.get(channels)
  if mode is None:
    return picture
  try:
    font = ImageFont.load_default(size=_CAPTION_FONT_SIZE)
  except TypeError:  # Pillow < 10.1: its one bitmap font.
    font = ImageFont.load_default()
  measure = functools.partial(
      ImageDraw.Draw(Image.new(mode, (1, 1))).textlength, font=font)
  lines = []
  for word in text.split():
    if lines and measure(f"{lines[-1]} {word}") <= width - 2 * _CAPTION_PAD:
      lines[-1] = f"{lines[-1]} {word}"
    else:
      lines.append(word)
  band = Image.new(mode, (width, len(lines) * _CAPTION_LINE + _CAPTION_PAD),
                   "white")
  draw = ImageDraw.Draw(band)
  for row, line in enumerate(lines):
    draw.text((_CAPTION_PAD, row * _CAPTION_LINE), line, fill="black",
              font=font)
  text_pixels = np.asarray(band, np.uint8).reshape(-1, width, channels)
  return np.concatenate([picture, text_pixels])


def traversals(model, image, usage, label=None, columns=_COLUMNS + 1,
               dims=None):
  """Code traversals around one image's code.

  Args:
    model: the model.
    image: `[1, H, W, C]` the image whose code is the centre.
    usage: `[code_dim]` how much each dimension is used (average KL, or the
      code's variance over the data).
    label: `[1]` int32 class of the image (conditional models only).
    columns: values per row, evenly spaced over [-3, 3] standard deviations
      of the prior (codes of models without one are scaled by `usage`).
    dims: the dimensions of the rows (`traversal_rows(...).dims`); default
      every dimension, ordered by `usage` (most used first) and capped at
      `MAX_TRAVERSAL_ROWS`.

  Returns:
    `[len(dims) * columns, H, W, C]` pixel means.
  """
  centre = model.encode_code(image, label).numpy()[0]
  if dims is None:
    dims = traversal_rows(usage).dims
  dims = np.asarray(dims, np.int64)
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
              seed=0, test_labels=None, num_classes=None, rows=None):
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
    rows: the `TraversalRows` of `traversals.png` (its rows and caption);
      default `traversal_rows(usage)`, every dimension.

  Returns:
    Dict of picture name -> PNG path.
  """
  if rows is None:
    rows = traversal_rows(usage)
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
                                None if labels is None else labels[:1],
                                dims=rows.dims),
                     _COLUMNS + 1),
      "interpolations": (interpolations(
          model, test_images[:12], None if labels is None else labels[:12]),
                         _COLUMNS),
  }
  captions = {"traversals": rows.caption()}
  paths = {}
  for name, (images, columns) in pictures.items():
    picture = grid(images, columns)
    if name in captions:
      picture = captioned(picture, captions[name])
    paths[name] = write_picture(picture, out_dir, name, writer, step)
  return paths


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
