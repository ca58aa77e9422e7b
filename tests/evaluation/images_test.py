"""Tests of `tfvae.evaluation.images`: grids, traversal rows, captions."""

import numpy as np
import pytest

from tfvae.evaluation import images


@pytest.mark.parametrize("count, columns, pad, channels", [
    (6, 3, 2, 1), (8, 4, 0, 3), (5, 2, 1, 1)])
def test_grid_shape(count, columns, pad, channels):
  pictures = np.zeros((count, 4, 5, channels), np.float32)
  picture = images.grid(pictures, columns, pad=pad)
  rows = -(-count // columns)
  assert picture.shape == (rows * (4 + pad) + pad,
                           columns * (5 + pad) + pad, channels)
  assert picture.dtype == np.uint8


def test_grid_pixel_placement():
  count, height, width, pad, columns = 6, 3, 2, 1, 3
  values = np.arange(1, count + 1, dtype=np.float32) / 10
  pictures = np.broadcast_to(values[:, None, None, None],
                             (count, height, width, 1)).copy()
  picture = images.grid(pictures, columns, pad=pad)[..., 0]
  for index in range(count):
    top = pad + (index // columns) * (height + pad)
    left = pad + (index % columns) * (width + pad)
    tile = picture[top:top + height, left:left + width]
    assert np.all(tile == round(values[index] * 255))
  # Padding (first row and column, gaps between tiles) is white.
  assert np.all(picture[0] == 255) and np.all(picture[:, 0] == 255)
  assert np.all(picture[pad + height] == 255)
  assert np.all(picture[:, pad + width] == 255)
  # Exactly count * H * W non-padding pixels.
  assert np.sum(picture != 255) == count * height * width


def test_grid_clips_and_keeps_pixel_detail():
  pictures = np.array([[[[-1.0], [0.5]], [[2.0], [0.0]]]], np.float32)
  picture = images.grid(pictures, 1, pad=0)
  np.testing.assert_array_equal(picture[..., 0], [[0, 128], [255, 0]])


def test_grid_partial_last_row_is_white():
  pictures = np.zeros((3, 2, 2, 1), np.float32)
  picture = images.grid(pictures, 2, pad=1)
  assert picture.shape == (7, 7, 1)
  # The second row's right slot is empty.
  assert np.all(picture[4:6, 4:6] == 255)
  assert np.all(picture[4:6, 1:3] == 0)


# ---- traversals.png: the active dimensions only ------------------------------

# Six code dimensions: usage (say average KL) and the code's variance over
# the data. Active (variance > 0.01): 1, 3, 4. By usage: 1, 3, 5, 0, 4, 2.
USAGE = [0.5, 3.0, 0.01, 2.0, 0.2, 1.0]
CODE_VARIANCE = [0.001, 0.9, 0.0, 0.5, 0.02, 0.01]


def test_traversal_rows_are_the_active_dimensions_by_usage():
  rows = images.traversal_rows(USAGE, CODE_VARIANCE)
  assert rows.dims == (1, 3, 4)
  assert (rows.active, rows.inactive, rows.left_out, rows.code_dim) == (
      3, 3, 3, 6)
  assert rows.caption() == ("3 active dimensions shown, most used first; "
                            "3 inactive left out")
  assert rows.as_dict() == {"dims": [1, 3, 4], "active": 3, "inactive": 3,
                            "left_out": 3, "code_dim": 6,
                            "caption": rows.caption()}


def test_traversal_rows_count_active_as_active_units_does():
  from tfvae.evaluation import likelihood  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  codes = rng.normal(size=(500, 6)) * np.sqrt(CODE_VARIANCE)
  rows = images.traversal_rows(USAGE, np.var(codes, axis=0))
  assert rows.active == likelihood.active_units(codes) == len(rows.dims)


def test_traversal_rows_all_active_and_capped():
  rows = images.traversal_rows(USAGE, [1.0] * 6)
  assert rows.dims == (1, 3, 5, 0, 4, 2)
  assert rows.caption() == ("6 active dimensions shown, most used first; "
                            "0 inactive left out")
  rows = images.traversal_rows(USAGE, CODE_VARIANCE, max_rows=2)
  assert rows.dims == (1, 3) and rows.left_out == 4
  assert rows.caption() == ("2 of 3 active dimensions shown, most used "
                            "first; 1 more active and 3 inactive left out")


def test_traversal_rows_without_active_dimensions_show_the_most_used():
  rows = images.traversal_rows(USAGE, [0.0] * 6)
  assert rows.dims == (1,) and rows.active == 0 and rows.left_out == 5
  assert rows.caption() == ("no active dimensions (all 6 inactive); the "
                            "most used one is shown")


def test_traversal_rows_one_active_dimension():
  rows = images.traversal_rows(USAGE, [0, 0, 0, 0, 0, 1.0])
  assert rows.dims == (5,)
  assert rows.caption() == ("1 active dimension shown, most used first; "
                            "5 inactive left out")


class _PixelPerDimension:
  """A stand-in model: code 0 everywhere; dimension d lights pixel (0, d).

  `decode_code` maps a code value v in [-3, 3] of dimension d to pixel
  (0, d) = (v + 3) / 6 (0.5 at the centre), every other pixel 0, so each
  traversal row shows which dimension it varies.
  """

  conditional = False
  has_likelihood_bound = True
  side = 8

  def __init__(self, code_dim):
    self.code_dim = code_dim

  def encode_code(self, images_, labels=None):
    del labels
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.zeros([len(images_), self.code_dim])

  def decode_code(self, codes, labels=None):
    del labels
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    codes = np.asarray(codes)
    pixels = np.zeros((len(codes), self.side, self.side, 1), np.float32)
    pixels[:, 0, :self.code_dim, 0] = (codes + 3.0) / 6.0
    return {"mean": tf.constant(pixels)}

  def reconstruct(self, images_, labels=None):
    return self.decode_code(self.encode_code(images_, labels))["mean"]

  def sample(self, count, seed, labels=None):
    del seed, labels
    return self.decode_code(np.zeros((count, self.code_dim)))["mean"]


def test_traversals_vary_the_rows_dimensions():
  model = _PixelPerDimension(6)
  dims = images.traversal_rows(USAGE, CODE_VARIANCE).dims
  pictures = images.traversals(model, np.zeros((1, 8, 8, 1), np.float32),
                               USAGE, dims=dims, columns=3)
  assert pictures.shape == (len(dims) * 3, 8, 8, 1)
  for row, dim in enumerate(dims):
    first_row = pictures[row * 3:(row + 1) * 3, 0, :6, 0]
    expected = np.full((3, 6), 0.5)
    expected[:, dim] = [0.0, 0.5, 1.0]  # -3, 0, 3.
    np.testing.assert_allclose(first_row, expected, atol=1e-6)


def test_traversals_default_to_every_dimension_by_usage():
  model = _PixelPerDimension(6)
  pictures = images.traversals(model, np.zeros((1, 8, 8, 1), np.float32),
                               USAGE, columns=3)
  varied = [int(np.argmax(np.ptp(pictures[r * 3:(r + 1) * 3, 0, :6, 0],
                                 axis=0))) for r in range(6)]
  assert varied == [1, 3, 5, 0, 4, 2]


def test_traversals_png_has_a_row_per_active_dimension_and_a_caption(
    tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top

  model = _PixelPerDimension(6)
  rows = images.traversal_rows(USAGE, CODE_VARIANCE)
  test_images = np.zeros((40, 8, 8, 1), np.float32)
  paths = images.write_all(model, test_images, USAGE, str(tmp_path),
                           rows=rows)
  with Image.open(paths["traversals"]) as picture:
    assert picture.mode == "L"
    pixels = np.asarray(picture)
  columns, pad = images._COLUMNS + 1, 2  # pylint: disable=protected-access
  grid_height = len(rows.dims) * (8 + pad) + pad
  assert pixels.shape[1] == columns * (8 + pad) + pad
  # The grid: exactly 3 rows of tiles, the same as drawing them directly.
  expected = images.grid(images.traversals(
      model, test_images[:1], USAGE, dims=rows.dims), columns)
  np.testing.assert_array_equal(pixels[:grid_height], expected[..., 0])
  # Below it, the caption: dark text on white, not more tiles.
  band = pixels[grid_height:]
  assert 0 < len(band) < 8 + pad + 4 * images._CAPTION_LINE  # pylint: disable=protected-access
  assert band.min() < 64 and np.mean(band == 255) > 0.7
  np.testing.assert_array_equal(
      band, images.captioned(expected, rows.caption())[grid_height:, :, 0])


def test_caption_wraps_to_the_pictures_width():
  text = images.traversal_rows(USAGE, CODE_VARIANCE).caption()
  wide = images.captioned(np.zeros((10, 400, 3), np.uint8), text)
  narrow = images.captioned(np.zeros((10, 80, 1), np.uint8), text)
  assert wide.shape[1:] == (400, 3) and narrow.shape[1:] == (80, 1)
  assert wide.dtype == narrow.dtype == np.uint8
  line = images._CAPTION_LINE  # pylint: disable=protected-access
  assert len(wide) - 10 < 2 * line  # One line.
  assert len(narrow) - 10 > 3 * line  # Several.
  for picture in (wide, narrow):
    assert np.all(picture[:10] == 0)  # The picture is left as it was.
    assert picture[10:].min() < 64  # Text was drawn, on white.
    assert np.median(picture[10:]) == 255
