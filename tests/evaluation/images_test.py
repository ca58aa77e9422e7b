"""Tests of `tfvae.evaluation.images.grid`."""

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
