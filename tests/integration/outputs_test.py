"""What a finished `train.py` run leaves in `--model_dir`."""

import json
import os

import numpy as np
from PIL import Image
import pytest

from tests.integration import cli
from tests.integration import conftest

_SIDE = 28
_PAD = 2


def _grid_size(rows, columns):
  """(width, height) of a grid of 28x28 images with 2-pixel padding."""
  return (columns * (_SIDE + _PAD) + _PAD, rows * (_SIDE + _PAD) + _PAD)


# Picture -> (rows, columns) of 28x28 images.
_GRIDS = {
    "samples": (8, 8),  # 64 prior samples.
    "reconstructions": (8, 10),  # 4 rows of 10 inputs, each above its output.
    "traversals": (None, 11),  # A row per active dimension, 11 values.
    "interpolations": (6, 10),  # 6 pairs, 10 points per line.
}


def _rows_columns(run, name):
  rows, columns = _GRIDS[name]
  if name == "traversals":
    rows = len(run.metrics["traversals"]["dims"])
  return rows, columns


@pytest.mark.parametrize("name", sorted(_GRIDS))
def test_png_is_a_plausible_grid(bernoulli_run, name):
  path = os.path.join(bernoulli_run.model_dir, "images", f"{name}.png")
  rows, columns = _rows_columns(bernoulli_run, name)
  width, height = _grid_size(rows, columns)
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  with Image.open(path) as picture:
    picture.verify()
  with Image.open(path) as picture:
    assert picture.format == "PNG"
    assert picture.mode == "L"  # Grey data, grey pictures.
    if name == "traversals":  # The grid, then its caption below.
      assert picture.size[0] == width and picture.size[1] > height
    else:
      assert picture.size == (width, height)
    pixels = np.asarray(picture)[:height]
  tiles = [pixels[_PAD + r * (_SIDE + _PAD):][:_SIDE,
                  _PAD + c * (_SIDE + _PAD):][:, :_SIDE]
           for r in range(rows) for c in range(columns)]
  # White padding between the tiles.
  assert (pixels[:_PAD] == 255).all() and (pixels[:, :_PAD] == 255).all()
  # Tiles look like the shapes (dark background, bright blobs; blurry prior
  # samples allowed) and differ from each other: not a constant picture.
  assert sum(tile.min() < 64 for tile in tiles) >= 0.75 * len(tiles)
  assert sum(tile.max() > 128 for tile in tiles) >= 0.5 * len(tiles)
  assert np.std([tile.astype(float) for tile in tiles], axis=0).mean() > 5


def test_reconstructions_resemble_their_inputs(bernoulli_run):
  path = os.path.join(bernoulli_run.model_dir, "images", "reconstructions.png")
  with Image.open(path) as picture:
    pixels = np.asarray(picture, np.float64) / 255
  band = _SIDE + _PAD
  inputs = np.concatenate([pixels[_PAD + 2 * r * band:][:_SIDE]
                           for r in range(4)])
  outputs = np.concatenate([pixels[_PAD + (2 * r + 1) * band:][:_SIDE]
                            for r in range(4)])
  # Inputs are binarized test images, outputs pixel means: compare loosely,
  # and against a mismatched pairing (the rows shifted by one image).
  error = np.mean((inputs - outputs)**2)
  shifted = np.mean((inputs - np.roll(outputs, band, axis=1))**2)
  assert error < 0.6 * shifted, (error, shifted)


def test_train_events_hold_scalars(bernoulli_run):
  events = cli.read_events(os.path.join(bernoulli_run.model_dir, "train"))
  for tag in ("loss", "neg_elbo", "distortion", "rate", "kl_weight",
              "learning_rate", "images_per_second"):
    assert tag in events, sorted(events)
    assert {plugin for _, plugin, _ in events[tag]} == {"scalars"}
    assert all(np.isfinite(v) for _, _, v in events[tag])
  steps = [step for step, _, _ in events["loss"]]
  assert steps == sorted(set(steps))
  assert steps[-1] == conftest.TRAIN_STEPS
  assert max(np.diff([0] + steps)) <= 25  # --steps_per_loop=25.
  assert {v for _, _, v in events["kl_weight"]} == {1.0}
  assert [v for _, _, v in events["learning_rate"]] == pytest.approx(
      [1e-3] * len(steps))
  assert all(v > 0 for _, _, v in events["images_per_second"])
  losses = [v for _, _, v in events["loss"]]
  assert losses[-1] < losses[0]


def test_eval_events_hold_validation_test_and_images(bernoulli_run):
  events = cli.read_events(os.path.join(bernoulli_run.model_dir, "eval"))
  for tag in ("validation/neg_elbo", "validation/distortion",
              "validation/rate", "validation/active_units", "test/nll",
              "test/neg_elbo", "test/bits_per_dim", "test/active_units",
              "test/sample_frechet_distance", "test/frechet_reference"):
    assert tag in events, sorted(events)
    assert {plugin for _, plugin, _ in events[tag]} == {"scalars"}
  # Validation once per epoch (28 steps) and at the last step.
  validation_steps = [s for s, _, _ in events["validation/neg_elbo"]]
  assert validation_steps == list(range(28, 300, 28)) + [300]
  (step, _, nll), = events["test/nll"]
  assert step == conftest.TRAIN_STEPS
  assert nll == pytest.approx(bernoulli_run.metrics["test_nll"], rel=1e-5)
  for name in _GRIDS:
    assert [(s, p) for s, p, _ in events[name]] == [
        (conftest.TRAIN_STEPS, "images")], name


def test_checkpoints_config_and_metrics_files(bernoulli_run):
  model_dir = bernoulli_run.model_dir
  # One per epoch of 28 steps and one at the end; the 3 newest are kept.
  assert cli.checkpoint_numbers(model_dir) == [252, 280, 300]
  with open(os.path.join(model_dir, "checkpoints", "checkpoint")) as f:
    assert "ckpt-300" in f.readline()
  with open(os.path.join(model_dir, "config.json")) as f:
    config = json.load(f)
  assert config["model"]["latent_dim"] == 8
  assert config["model"]["hidden_dims"] == [128]
  assert config["train"]["train_steps"] == conftest.TRAIN_STEPS
  assert config["data"]["dataset"] == "npz"
  for key in ("step", "test_neg_elbo", "test_nll", "test_bits_per_dim",
              "eval_iw_samples", "active_units", "train_img_per_s",
              "trivial_nll", "kl_per_dim"):
    assert key in bernoulli_run.metrics
  # Labelled images: the classifier-feature Frechet distance of as many
  # samples as test images (the run asks for --frechet_samples=10000).
  metrics = bernoulli_run.metrics
  assert metrics["frechet_samples"] == conftest.NUM_TEST
  assert metrics["sample_frechet_distance"] > metrics["frechet_reference"] > 0
  assert 0.5 < metrics["feature_classifier_accuracy"] <= 1
  assert os.listdir(os.path.join(model_dir, "feature_classifier"))
  assert not [n for n in os.listdir(model_dir) if n.endswith(".tmp")]


def test_latent_scatter_colours_every_class(bernoulli_run):
  """Labelled images also get the 2-D code scatter, one colour per class."""
  from tests.integration import shapes  # pylint: disable=g-import-not-at-top
  from tfvae.evaluation import scatter  # pylint: disable=g-import-not-at-top

  path = os.path.join(bernoulli_run.model_dir, "images", "latent_scatter.png")
  with Image.open(path) as picture:
    assert picture.mode == "RGB"
    pixels = np.asarray(picture).reshape(-1, 3)
  colours = {tuple(c) for c in pixels.tolist()}
  used = [c for c in scatter.PALETTE[:len(shapes.CLASSES)] if c in colours]
  assert len(used) == len(shapes.CLASSES)


def test_traversals_show_the_active_dimensions(bernoulli_run):
  """One row per active unit (as metrics.json counts them), most used first,
  and a caption under the grid saying how many were left out."""
  metrics = bernoulli_run.metrics
  traversal = metrics["traversals"]
  active = metrics["active_units"]
  assert traversal["active"] == active
  assert traversal["inactive"] == traversal["left_out"] == 8 - active
  assert len(traversal["dims"]) == max(active, 1)
  kl = metrics["kl_per_dim"]
  assert [kl[d] for d in traversal["dims"]] == sorted(
      [kl[d] for d in traversal["dims"]], reverse=True)
  assert f"{8 - active} inactive left out" in traversal["caption"] or (
      not active and "no active dimensions" in traversal["caption"])
  output = cli.output(bernoulli_run.result)
  assert f"traversals.png: {traversal['caption']}." in output
  path = os.path.join(bernoulli_run.model_dir, "images", "traversals.png")
  with Image.open(path) as picture:
    pixels = np.asarray(picture)
  caption = pixels[_grid_size(len(traversal["dims"]), 11)[1]:]
  assert caption.size and caption.min() < 64  # Dark text on white.
  assert np.median(caption) == 255
