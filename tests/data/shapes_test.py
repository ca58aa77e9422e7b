"""Tests of `tfvae.data.shapes`: the factor grid, rendering and the loader."""

import numpy as np
import pytest

from tfvae.config import DataConfig, RunConfig
from tfvae.data import image_folder
from tfvae.data import image_splits
from tfvae.data import pipeline
from tfvae.data import shapes as shapes_lib
from tfvae.data import sources
from tfvae.data.shapes import Shapes
from tfvae.errors import ConfigError, DataError

SQUARE, ELLIPSE, HEART = 0, 1, 2
ALL_OPTIONS = [dict(), dict(color=True), dict(background=True),
               dict(color=True, background=True)]


def raises_one_line(error, *parts, call):
  """Checks that `call()` raises `error` whose one-line message has parts."""
  with pytest.raises(error) as info:
    call()
  message = str(info.value)
  assert "\n" not in message, message
  for part in parts:
    assert str(part) in message, f"{part!r} not in {message!r}"
  return message


def mask(shape=SQUARE, scale=5, orientation=0, x=16, y=16):
  """The `[64, 64]` bool sprite of a grey factor point."""
  image = Shapes().render(np.array([[shape, scale, orientation, x, y]]))
  return image[0, ..., 0] == 255


def centroid(pixels):
  """`(column, row)` centre of mass of a `[64, 64]` bool image."""
  rows, columns = np.nonzero(pixels)
  return np.array([columns.mean(), rows.mean()])


def reference_render(factors, color=False, background=False):
  """Renders factor points directly from the documented geometry."""
  images = []
  centres = np.arange(64) + 0.5
  for point in factors:
    shape, scale, orientation, x, y = point[:5]
    radius = 14.0 * np.linspace(0.5, 1.0, 6)[scale]
    angle = 2 * np.pi * orientation / 40
    du, dv = np.meshgrid(centres - (16.5 + x), -(centres - (16.5 + y)))
    cos, sin = np.cos(angle), np.sin(angle)
    u = (cos * du + sin * dv) / radius
    v = (cos * dv - sin * du) / radius
    if shape == SQUARE:
      inside = np.maximum(np.abs(u), np.abs(v)) <= np.sqrt(0.5)
    elif shape == ELLIPSE:
      inside = u**2 + (v / 0.5)**2 <= 1
    else:
      hx, hy = 1.29348 * u, 1.29348 * v + 0.29348
      inside = (hx**2 + hy**2 - 1)**3 - hx**2 * hy**3 <= 0
    column = 5
    foreground = np.array([255], np.uint8)
    if color:
      foreground = shapes_lib.COLORS[point[column]]
      column += 1
    grey = shapes_lib.BACKGROUNDS[point[column]] if background else 0
    channels = 3 if color else 1
    images.append(np.where(inside[..., None], foreground,
                           np.full(channels, grey, np.uint8)))
  return np.array(images, np.uint8)


# ------------------------------------------------------------------- grid


def test_factor_grid_is_dsprites():
  shapes = Shapes()
  assert shapes.factor_names == ("shape", "scale", "orientation", "x", "y")
  assert shapes.factor_sizes == (3, 6, 40, 32, 32)
  assert shapes.num_factors == 5
  assert shapes.num_points == 737_280
  assert shapes.observation_shape == (64, 64, 1)
  assert shapes.class_names == ("square", "ellipse", "heart")
  values = dict(zip(shapes.factor_names, shapes.factor_values))
  np.testing.assert_allclose(values["scale"], np.linspace(0.5, 1, 6))
  assert values["orientation"][0] == 0
  assert values["orientation"][-1] < 2 * np.pi
  np.testing.assert_allclose(np.diff(values["orientation"]), 2 * np.pi / 40)
  assert values["x"][0] == values["y"][0] == 0
  assert values["x"][-1] == values["y"][-1] == 1


@pytest.mark.parametrize("options, names, sizes, channels", [
    (dict(color=True), ("color",), (6,), 3),
    (dict(background=True), ("background",), (4,), 1),
    (dict(color=True, background=True), ("color", "background"), (6, 4), 3),
])
def test_optional_factors_follow_dsprites_ones(options, names, sizes,
                                               channels):
  shapes = Shapes(**options)
  assert shapes.factor_names == Shapes().factor_names + names
  assert shapes.factor_sizes == (3, 6, 40, 32, 32) + sizes
  assert shapes.observation_shape == (64, 64, channels)
  assert shapes.num_points == 737_280 * int(np.prod(sizes))
  assert [len(v) for v in shapes.factor_values] == list(shapes.factor_sizes)


def test_index_is_mixed_radix_and_factors_at_inverts_it():
  shapes = Shapes()
  assert shapes.index(np.array([[0, 0, 0, 0, 1]]))[0] == 1
  assert shapes.index(np.array([[0, 0, 0, 1, 0]]))[0] == 32
  assert shapes.index(np.array([[1, 0, 0, 0, 0]]))[0] == 6 * 40 * 32 * 32
  everything = np.arange(shapes.num_points)
  factors = shapes.factors_at(everything)
  assert factors.dtype == np.int64 and factors.shape == (737_280, 5)
  np.testing.assert_array_equal(shapes.index(factors), everything)
  np.testing.assert_array_equal(factors.max(axis=0),
                                np.array(shapes.factor_sizes) - 1)


def test_sample_factors_is_uniform_over_each_factor_and_seeded():
  shapes = Shapes(color=True, background=True)
  factors = shapes.sample_factors(20_000, np.random.RandomState(3))
  assert factors.dtype == np.int64 and factors.shape == (20_000, 7)
  for column, size in enumerate(shapes.factor_sizes):
    counts = np.bincount(factors[:, column], minlength=size)
    assert len(counts) == size
    np.testing.assert_allclose(counts / 20_000, 1 / size, atol=0.02)
  np.testing.assert_array_equal(
      factors, shapes.sample_factors(20_000, np.random.RandomState(3)))
  assert shapes.sample_factors(0, np.random.RandomState(0)).shape == (0, 7)


# -------------------------------------------------------------- rendering


@pytest.mark.parametrize("options", ALL_OPTIONS)
def test_render_matches_the_documented_geometry(options):
  shapes = Shapes(**options)
  factors = shapes.sample_factors(300, np.random.RandomState(1))
  images = shapes.render(factors)
  assert images.dtype == np.uint8
  assert images.shape == (300,) + shapes.observation_shape
  np.testing.assert_array_equal(images, reference_render(factors, **options))


def test_render_is_deterministic_and_independent_of_chunking(monkeypatch):
  shapes = Shapes(color=True)
  factors = shapes.sample_factors(50, np.random.RandomState(2))
  images = shapes.render(factors)
  np.testing.assert_array_equal(images, shapes.render(factors))
  monkeypatch.setattr(shapes_lib, "_RENDER_CHUNK", 7)
  np.testing.assert_array_equal(images, shapes.render(factors))
  np.testing.assert_array_equal(images[13], shapes.render(factors[13:14])[0])


def test_grey_images_are_binary():
  shapes = Shapes()
  images = shapes.render(shapes.sample_factors(200, np.random.RandomState(0)))
  assert set(np.unique(images)) == {0, 255}


def test_colour_and_background_paint_the_grey_sprite():
  shapes = Shapes(color=True, background=True)
  factors = shapes.sample_factors(100, np.random.RandomState(4))
  images = shapes.render(factors)
  sprites = Shapes().render(factors[:, :5])[..., 0] == 255
  for image, sprite, point in zip(images, sprites, factors):
    np.testing.assert_array_equal(image[sprite],
                                  np.broadcast_to(shapes_lib.COLORS[point[5]],
                                                  image[sprite].shape))
    assert np.all(image[~sprite] == shapes_lib.BACKGROUNDS[point[6]])


def test_x_moves_the_sprite_one_pixel_right_and_y_one_pixel_down():
  for shape in (SQUARE, ELLIPSE, HEART):
    base = mask(shape, 3, 7, x=10, y=20)
    right = mask(shape, 3, 7, x=11, y=20)
    down = mask(shape, 3, 7, x=10, y=21)
    np.testing.assert_array_equal(right[:, 1:], base[:, :-1])
    np.testing.assert_array_equal(down[1:, :], base[:-1, :])
    far = [centroid(mask(shape, 5, 0, x=x, y=5)) for x in range(32)]
    np.testing.assert_allclose(np.diff(far, axis=0), [[1, 0]] * 31,
                               atol=1e-9)


def test_positions_span_the_canvas_symmetrically():
  first = centroid(mask(SQUARE, 5, 0, x=0, y=0))
  last = centroid(mask(SQUARE, 5, 0, x=31, y=31))
  np.testing.assert_allclose(first, [16, 16])  # Pixel indices.
  np.testing.assert_allclose(last, [47, 47])


def test_scale_increases_the_area_monotonically():
  for shape in (SQUARE, ELLIPSE, HEART):
    for orientation in (0, 5, 13):
      areas = [mask(shape, scale, orientation).sum() for scale in range(6)]
      assert np.all(np.diff(areas) > 0), (shape, orientation, areas)
      assert 3 < areas[5] / areas[0] < 5  # Area grows as scale^2 (x4).


def test_orientation_turns_the_ellipse_counter_clockwise():
  for orientation in range(0, 40, 3):
    pixels = mask(ELLIPSE, 5, orientation)
    rows, columns = np.nonzero(pixels)
    du, dv = columns - columns.mean(), -(rows - rows.mean())  # y up.
    covariance = np.cov(np.stack([du, dv]))
    values, vectors = np.linalg.eigh(covariance)
    major = vectors[:, np.argmax(values)]
    angle = np.arctan2(major[1], major[0]) % np.pi
    expected = (2 * np.pi * orientation / 40) % np.pi
    difference = (angle - expected + np.pi / 2) % np.pi - np.pi / 2
    assert abs(difference) < np.radians(3), (orientation, angle, expected)
    assert values.max() / values.min() > 3  # Elongated 2:1.


def test_orientation_rotates_about_the_sprite_centre():
  for shape in (SQUARE, ELLIPSE, HEART):
    centres = np.array([centroid(mask(shape, 5, k)) for k in range(40)])
    np.testing.assert_allclose(centres, np.broadcast_to([32, 32],
                                                        centres.shape),
                               atol=0.35)


def test_rotational_symmetries_are_those_of_dsprites():
  def differing(shape, k, turn):
    return np.sum(mask(shape, 5, k) != mask(shape, 5, (k + turn) % 40))

  for k in (0, 3, 7):
    assert differing(SQUARE, k, 10) <= 4  # 90 degrees.
    assert differing(ELLIPSE, k, 20) <= 4  # 180 degrees.
    assert differing(SQUARE, k, 5) > 20
    assert differing(ELLIPSE, k, 10) > 20
    for turn in (10, 20):
      assert differing(HEART, k, turn) > 20


def test_shapes_differ():
  for scale in (0, 5):
    for orientation in (0, 9):
      sprites = [mask(shape, scale, orientation) for shape in range(3)]
      for a in range(3):
        for b in range(a + 1, 3):
          assert np.sum(sprites[a] != sprites[b]) > 5 * (scale + 1)


def test_the_heart_is_upright_at_orientation_zero():
  pixels = mask(HEART, 5, 0)
  widest = np.argmax(pixels.sum(axis=1))
  assert widest < centroid(pixels)[1]  # The lobes are above the centre.
  rows, _ = np.nonzero(pixels)
  assert pixels[rows.max()].sum() <= 3  # The tip is below.


def test_heart_constants_are_its_centroid_and_radius():
  grid = np.linspace(-1.5, 1.5, 1201)
  x, y = np.meshgrid(grid, grid)
  inside = (x**2 + y**2 - 1)**3 - x**2 * y**3 <= 0
  centroid_y = y[inside].mean()
  assert abs(centroid_y - shapes_lib._HEART_CENTROID_Y) < 1e-3
  radius = np.sqrt(x[inside]**2 + (y[inside] - centroid_y)**2).max()
  assert abs(radius - shapes_lib._HEART_RADIUS) < 2e-3


def test_sprites_stay_inside_the_canvas():
  shapes = Shapes()
  corners = [(x, y) for x in (0, 31) for y in (0, 31)]
  factors = np.array([[shape, scale, k, x, y]
                      for shape in range(3) for scale in (0, 5)
                      for k in range(40) for x, y in corners])
  images = shapes.render(factors)[..., 0]
  border = np.ones((64, 64), bool)
  border[2:-2, 2:-2] = False
  assert not images[:, border].any()
  assert images.reshape(len(images), -1).any(axis=1).all()
  small = images[factors[:, 1] == 0].reshape(-1, 64 * 64)
  assert (small != 0).sum(axis=1).min() >= 40


@pytest.mark.parametrize("factors, parts", [
    (np.zeros((2, 4), np.int64), ["[num, 5]", "[2, 4]"]),
    (np.zeros((2, 5)), ["integers", "float64"]),
    (np.array([[0, 6, 0, 0, 0]]), ["scale", "[0, 6)", "got 6"]),
    (np.array([[0, 0, 0, 0, -1]]), ["y", "[0, 32)", "got -1"]),
])
def test_render_rejects_bad_factors(factors, parts):
  raises_one_line(ValueError, *parts, call=lambda: Shapes().render(factors))


def test_factors_at_rejects_indices_outside_the_grid():
  raises_one_line(ValueError, "737280",
                  call=lambda: Shapes().factors_at([737_280]))


# ----------------------------------------------------------------- loader


def load(**fields):
  return sources.load_splits(DataConfig(dataset="shapes", **fields))


@pytest.mark.parametrize("options", [dict(), dict(shapes_color=True,
                                                  shapes_background=True)])
def test_loader_splits_distinct_points_with_aligned_factors(options):
  splits = load(shapes_samples=500, **options)
  shapes = splits.ground_truth
  assert isinstance(shapes, Shapes)
  assert shapes.color == bool(options) == shapes.background
  assert len(splits.train_x) == 400 and len(splits.test_x) == 100
  assert splits.train_x.dtype == np.uint8
  assert splits.train_x.shape[1:] == shapes.observation_shape
  points = np.concatenate([shapes.index(splits.train_factors),
                           shapes.index(splits.test_factors)])
  assert len(np.unique(points)) == 500
  for x, y, factors in ((splits.train_x, splits.train_y,
                         splits.train_factors),
                        (splits.test_x, splits.test_y, splits.test_factors)):
    assert factors.dtype == np.int64
    assert factors.shape == (len(x), shapes.num_factors)
    np.testing.assert_array_equal(shapes.render(factors), x)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, factors[:, 0])
  assert splits.num_classes == 3
  assert splits.class_names == ("square", "ellipse", "heart")
  assert set(splits.train_y) == {0, 1, 2}


def test_loader_is_the_same_every_run_and_random_in_order():
  first, second = load(shapes_samples=300), load(shapes_samples=300)
  np.testing.assert_array_equal(first.train_factors, second.train_factors)
  np.testing.assert_array_equal(first.test_factors, second.test_factors)
  np.testing.assert_array_equal(first.train_x, second.train_x)
  # The test split's first examples are not all one shape (eval_max_examples
  # takes them).
  assert len(set(first.test_y[:20])) == 3
  assert len(load(shapes_samples=300, test_fraction=0.5).test_x) == 150


def test_loader_whole_grid_is_every_point(monkeypatch):
  # A smaller grid stands in for the 737,280 images of the real one.
  monkeypatch.setattr(shapes_lib, "ORIENTATIONS", shapes_lib.ORIENTATIONS[:1])
  monkeypatch.setattr(shapes_lib, "SCALES", shapes_lib.SCALES[:1])
  monkeypatch.setattr(shapes_lib, "POSITIONS", shapes_lib.POSITIONS[:4])
  # The sprites are drawn afresh for it.
  monkeypatch.setattr(shapes_lib, "_sprite_rows",
                      shapes_lib._sprite_rows.__wrapped__)
  splits = load(shapes_samples=0)
  shapes = splits.ground_truth
  assert shapes.num_points == 3 * 4 * 4
  points = np.concatenate([shapes.index(splits.train_factors),
                           shapes.index(splits.test_factors)])
  np.testing.assert_array_equal(np.sort(points), np.arange(48))
  np.testing.assert_array_equal(shapes.render(splits.test_factors),
                                splits.test_x)
  np.testing.assert_array_equal(splits.test_x, reference_render(
      splits.test_factors))


def test_prepare_keeps_factors_aligned_with_the_validation_split():
  splits = load(shapes_samples=400)
  data = pipeline.prepare(splits, 0.25, "bernoulli")
  shapes = data.ground_truth
  assert shapes is splits.ground_truth
  assert len(data.validation_x) == 80 and len(data.train_x) == 240
  assert data.train_x.dtype == np.uint8  # Not converted to float.
  for x, factors in ((data.train_x, data.train_factors),
                     (data.validation_x, data.validation_factors),
                     (data.test_x, data.test_factors)):
    assert len(factors) == len(x)
    np.testing.assert_array_equal(shapes.render(factors), x)
  np.testing.assert_array_equal(data.validation_y,
                                data.validation_factors[:, 0])
  other = pipeline.prepare(image_splits.make_splits(
      splits.train_x, None, splits.test_x, None, "plain"), 0.25, "bernoulli")
  assert other.ground_truth is None and other.validation_factors is None


def test_make_splits_rejects_factors_that_do_not_match():
  splits = load(shapes_samples=10)
  raises_one_line(
      DataError, "train factors", "[7, 5]", "8 examples",
      call=lambda: image_splits.make_splits(
          splits.train_x, None, splits.test_x, None, "here",
          ground_truth=splits.ground_truth,
          train_factors=splits.train_factors[:7],
          test_factors=splits.test_factors))
  raises_one_line(
      DataError, "ground_truth",
      call=lambda: image_splits.make_splits(
          splits.train_x, None, splits.test_x, None, "here",
          train_factors=splits.train_factors,
          test_factors=splits.test_factors))


@pytest.mark.parametrize("samples, parts", [
    (737_281, ["--shapes_samples=737281", "737280", "--shapes_samples=0"]),
    (1, ["--shapes_samples=1", "at least 2"]),
    (-3, ["--shapes_samples=-3"]),
])
def test_loader_rejects_bad_sample_counts(samples, parts):
  raises_one_line(ConfigError, *parts,
                  call=lambda: load(shapes_samples=samples))


def test_a_sample_too_large_for_memory_is_a_data_error(monkeypatch):
  monkeypatch.setattr(image_folder, "in_memory_limit_mb", lambda _: 1)
  message = raises_one_line(
      DataError, "--shapes_samples=0", "4423680 images", "64x64x3",
      "at most 85", call=lambda: load(shapes_samples=0, shapes_color=True))
  assert "Memory" not in message
  assert len(load(shapes_samples=80).train_x) == 64


@pytest.mark.parametrize("field, value, flag", [
    ("shapes_color", True, "--shapes_color"),
    ("shapes_background", True, "--shapes_background"),
    ("shapes_samples", 500, "--shapes_samples=500"),
])
def test_shapes_flags_with_another_dataset_are_config_errors(field, value,
                                                             flag):
  config = RunConfig(data=DataConfig(dataset="mnist", **{field: value}))
  raises_one_line(ConfigError, flag, "--dataset=shapes", "--dataset=mnist",
                  call=config.validate)
  RunConfig(data=DataConfig(dataset="shapes", **{field: value})).validate()
