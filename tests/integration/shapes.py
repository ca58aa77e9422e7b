"""A small structured image dataset for the integration tests: drawn shapes.

Each 28x28 grey image holds one filled shape (square, circle, cross,
horizontal bar or vertical bar) at a random position and size on black, with
its own brightness in [0.85, 1]; the label is the shape's class. Unlike random
noise the images have structure a VAE can learn, so "the model learned
something" is a meaningful assertion on them.

`make_shapes(..., noise_std=s)` adds Gaussian pixel noise and returns float32
images, for Gaussian-likelihood runs: every pixel then varies across the data,
so the per-pixel Gaussian baseline (`trivial_nll`) is not dominated by pixels
that are always exactly 0.
"""

import numpy as np

SIZE = 28
CLASSES = ("square", "circle", "cross", "horizontal_bar", "vertical_bar")


def draw(shape, cy, cx, radius, size=SIZE):
  """One `[size, size]` image with `shape` drawn filled.

  Args:
    shape: one of `CLASSES`.
    cy: centre row.
    cx: centre column.
    radius: half the shape's extent in pixels.
    size: image side.

  Returns:
    `[size, size]` float32 array, 1 inside the shape and 0 outside.
  """
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
  dy, dx = np.abs(yy - cy), np.abs(xx - cx)
  thick = max(1.0, radius / 3.0)
  if shape == "square":
    mask = (dy <= radius) & (dx <= radius)
  elif shape == "circle":
    mask = dy**2 + dx**2 <= radius**2
  elif shape == "cross":
    mask = (((dy <= thick) & (dx <= radius))
            | ((dx <= thick) & (dy <= radius)))
  elif shape == "horizontal_bar":
    mask = (dy <= thick) & (dx <= radius)
  elif shape == "vertical_bar":
    mask = (dx <= thick) & (dy <= radius)
  else:
    raise ValueError(f"unknown shape {shape!r}")
  return mask.astype(np.float32)


def make_shapes(num_examples, seed=0, size=SIZE, noise_std=0.0):
  """Random shape images and their class ids.

  Args:
    num_examples: N.
    seed: numpy seed.
    size: image side.
    noise_std: std. deviation of Gaussian noise added to every pixel; 0 for
      none.

  Returns:
    `(images, labels)`: `[N, size, size]` images and `[N]` int64 class ids
    (indices into `CLASSES`). Without noise the images are uint8, 0 outside
    the shape and 217..255 inside; with noise they are unclipped float32 on
    the [0, 1] scale.
  """
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, len(CLASSES), num_examples)
  images = np.empty((num_examples, size, size), np.float32)
  for i, label in enumerate(labels):
    radius = rng.uniform(4.0, 9.0)
    cy, cx = rng.uniform(radius, size - 1 - radius, 2)
    images[i] = draw(CLASSES[label], cy, cx, radius, size) * rng.uniform(
        0.85, 1.0)
  if noise_std:
    images += rng.normal(0.0, noise_std, images.shape).astype(np.float32)
    return images, labels
  return np.round(images * 255).astype(np.uint8), labels


def write_npz(path, num_examples, seed=0, noise_std=0.0):
  """Writes `make_shapes(...)` as `np.savez(path, x=images, y=labels)`.

  Returns:
    `path`.
  """
  images, labels = make_shapes(num_examples, seed, noise_std=noise_std)
  np.savez(path, x=images, y=labels)
  return path
