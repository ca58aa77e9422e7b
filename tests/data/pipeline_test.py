"""Tests of `tfvae.data.pipeline`: order, resume exactness, binarization."""

import numpy as np
import pytest

from tfvae.data import pipeline
from tfvae.data.image_splits import Splits
from tfvae.errors import DataError

NUM_EXAMPLES = 10
BATCH = 3


def _indexed_images(num=NUM_EXAMPLES, size=2):
  """uint8 images whose pixels all equal 10 * index, so a batch names them."""
  values = (10 * np.arange(num)).astype(np.uint8)
  return np.broadcast_to(values[:, None, None, None],
                         (num, size, size, 1)).copy()


def _stream(images, labels=None, *, seed=0, start_step=0, total_steps=9,
            binarized=False, batch_size=BATCH):
  dataset = pipeline.train_dataset(
      images, labels, batch_size=batch_size, seed=seed,
      start_step=start_step, total_steps=total_steps, binarized=binarized)
  return [{name: value.numpy() for name, value in batch.items()}
          for batch in dataset]


def _batch_indices(batch):
  return np.round(batch["image"][:, 0, 0, 0] * 255 / 10).astype(int)


def test_steps_per_epoch():
  assert pipeline.steps_per_epoch(NUM_EXAMPLES, BATCH) == 3
  assert pipeline.steps_per_epoch(10, 10) == 1
  assert pipeline.steps_per_epoch(10, 1) == 10


def test_steps_per_epoch_rejects_batch_larger_than_data():
  with pytest.raises(DataError, match="--batch_size=11"):
    pipeline.steps_per_epoch(10, 11)
  with pytest.raises(DataError):
    pipeline.train_dataset(_indexed_images(), None, batch_size=11, seed=0,
                           start_step=0, total_steps=1, binarized=False)


def test_train_batches_have_shapes_and_matching_labels():
  labels = np.arange(NUM_EXAMPLES, dtype=np.int32) + 100
  batches = _stream(_indexed_images(), labels, total_steps=4)
  assert len(batches) == 4
  for batch in batches:
    assert batch["image"].shape == (BATCH, 2, 2, 1)
    assert batch["image"].dtype == np.float32
    assert batch["label"].dtype == np.int32
    np.testing.assert_array_equal(batch["label"] - 100,
                                  _batch_indices(batch))


def test_unbinarized_images_are_unit_floats():
  images = _indexed_images()
  batch = _stream(images, total_steps=1)[0]
  indices = _batch_indices(batch)
  np.testing.assert_allclose(batch["image"], images[indices] / 255.0,
                             rtol=1e-6)


def test_no_example_repeats_within_an_epoch():
  batches = _stream(_indexed_images(), total_steps=12)
  epochs = [np.concatenate([_batch_indices(b) for b in batches[e:e + 3]])
            for e in range(0, 12, 3)]
  for epoch in epochs:
    assert len(set(epoch.tolist())) == 3 * BATCH
    assert set(epoch.tolist()) <= set(range(NUM_EXAMPLES))
  # Each epoch has its own permutation.
  assert len({tuple(epoch) for epoch in epochs}) > 1


@pytest.mark.parametrize("start_step", [1, 3, 5])
def test_resume_continues_the_same_stream(start_step):
  images = np.random.default_rng(0).integers(
      0, 256, size=(NUM_EXAMPLES, 4, 4, 1)).astype(np.uint8)
  labels = np.arange(NUM_EXAMPLES, dtype=np.int32)
  full = _stream(images, labels, seed=3, total_steps=8, binarized=True)
  resumed = _stream(images, labels, seed=3, start_step=start_step,
                    total_steps=8, binarized=True)
  assert len(resumed) == 8 - start_step
  for expected, actual in zip(full[start_step:], resumed):
    np.testing.assert_array_equal(actual["label"], expected["label"])
    np.testing.assert_array_equal(actual["image"], expected["image"])


def test_seeds_change_the_order():
  labels = np.arange(NUM_EXAMPLES, dtype=np.int32)
  orders = [np.concatenate([b["label"] for b in _stream(
      _indexed_images(), labels, seed=seed, total_steps=6)])
            for seed in (0, 1, 2)]
  assert not np.array_equal(orders[0], orders[1])
  assert not np.array_equal(orders[0], orders[2])
  again = np.concatenate([b["label"] for b in _stream(
      _indexed_images(), labels, seed=1, total_steps=6)])
  np.testing.assert_array_equal(orders[1], again)


def _grey_images(level, size=16):
  return np.full((NUM_EXAMPLES, size, size, 1), level, np.uint8)


def test_binarization_is_binary_and_tracks_grey_level():
  for level in (32, 128, 224):
    batches = _stream(_grey_images(level), total_steps=6, binarized=True)
    pixels = np.concatenate([b["image"].ravel() for b in batches])
    assert set(np.unique(pixels).tolist()) <= {0.0, 1.0}
    # 4608 Bernoulli draws: std <= 0.0074.
    assert pixels.mean() == pytest.approx(level / 255.0, abs=0.03)


def test_binarization_deterministic_per_seed_and_step():
  images = _grey_images(128)
  first = _stream(images, seed=4, total_steps=4, binarized=True)
  second = _stream(images, seed=4, total_steps=4, binarized=True)
  other_seed = _stream(images, seed=5, total_steps=3, binarized=True)
  for a, b, c in zip(first, second, other_seed):
    np.testing.assert_array_equal(a["image"], b["image"])
    assert not np.array_equal(a["image"], c["image"])
  # All examples are the same grey: steps differ only by their draw, also
  # the same position in the next epoch (step 3).
  assert not np.array_equal(first[0]["image"], first[1]["image"])
  assert not np.array_equal(first[0]["image"], first[3]["image"])
  # Each example in a batch gets its own draw.
  assert len({image.tobytes() for image in first[0]["image"]}) == BATCH


def _eval_images(dataset):
  return np.concatenate([batch["image"].numpy() for batch in dataset])


def test_eval_dataset_binarization_independent_of_batch_size():
  images = np.random.default_rng(1).integers(
      0, 256, size=(7, 5, 5, 1)).astype(np.uint8)
  labels = np.arange(7, dtype=np.int64)
  results = []
  for batch_size in (1, 3, 7, 100):
    dataset = pipeline.eval_dataset(images, labels, batch_size=batch_size,
                                    binarized=True, binarization_seed=11)
    batches = list(dataset)
    assert [len(b["image"]) for b in batches] == (
        [batch_size] * (7 // batch_size) + ([7 % batch_size]
                                            if 7 % batch_size else []))
    labels_out = np.concatenate([b["label"].numpy() for b in batches])
    assert labels_out.dtype == np.int32
    np.testing.assert_array_equal(labels_out, labels)
    results.append(_eval_images(batches))
  for result in results[1:]:
    np.testing.assert_array_equal(result, results[0])
  assert set(np.unique(results[0]).tolist()) <= {0.0, 1.0}
  other = _eval_images(pipeline.eval_dataset(
      images, None, batch_size=3, binarized=True, binarization_seed=12))
  assert not np.array_equal(other, results[0])


def test_eval_dataset_binarizes_each_example_independently():
  images = np.full((8, 16, 16, 1), 64, np.uint8)
  out = _eval_images(pipeline.eval_dataset(
      images, None, batch_size=4, binarized=True, binarization_seed=0))
  assert len({image.tobytes() for image in out}) == 8
  assert out.mean() == pytest.approx(64 / 255, abs=0.03)


def test_eval_dataset_unbinarized_passes_values():
  images = np.random.default_rng(2).integers(
      0, 256, size=(4, 3, 3, 1)).astype(np.uint8)
  out = _eval_images(pipeline.eval_dataset(
      images, None, batch_size=3, binarized=False, binarization_seed=0))
  np.testing.assert_allclose(out, images / 255.0, rtol=1e-6)
  floats = np.random.default_rng(3).random((4, 3, 3, 1)).astype(np.float32)
  out = _eval_images(pipeline.eval_dataset(
      floats, None, batch_size=2, binarized=False, binarization_seed=0))
  np.testing.assert_array_equal(out, floats)


def _splits(train_x, test_x=None, labels=True):
  num = len(train_x)
  return Splits(
      train_x=train_x,
      train_y=np.arange(num, dtype=np.int32) if labels else None,
      test_x=train_x[:2] if test_x is None else test_x,
      test_y=None, num_classes=num if labels else None, source="test-data")


def test_prepare_holds_out_validation_deterministically():
  train_x = _indexed_images(20)
  first = pipeline.prepare(_splits(train_x), 0.1, "bernoulli")
  second = pipeline.prepare(_splits(train_x), 0.1, "bernoulli")
  assert len(first.validation_x) == 2
  assert len(first.train_x) == 18
  np.testing.assert_array_equal(first.validation_y, second.validation_y)
  np.testing.assert_array_equal(first.train_y, second.train_y)
  held, kept = set(first.validation_y.tolist()), set(first.train_y.tolist())
  assert not held & kept
  assert held | kept == set(range(20))
  # Images stay with their labels.
  np.testing.assert_array_equal(first.train_x[:, 0, 0, 0] // 10,
                                first.train_y)
  np.testing.assert_array_equal(first.validation_x[:, 0, 0, 0] // 10,
                                first.validation_y)
  assert first.data_shape == (2, 2, 1)
  assert first.num_classes == 20


def test_prepare_without_validation_keeps_everything():
  data = pipeline.prepare(_splits(_indexed_images(5), labels=False), 0.0,
                          "bernoulli")
  assert len(data.train_x) == 5 and len(data.validation_x) == 0
  assert data.train_y is None and data.validation_y is None


def test_prepare_rejects_too_few_examples():
  with pytest.raises(DataError, match="--validation_fraction"):
    pipeline.prepare(_splits(_indexed_images(1)), 0.5, "bernoulli")


@pytest.mark.parametrize("where", ["train", "test"])
def test_prepare_rejects_out_of_range_floats_for_bernoulli(where):
  good = np.random.default_rng(4).random((6, 2, 2, 1)).astype(np.float32)
  bad = good * 2.0 - 0.5
  train_x, test_x = (bad, good[:2]) if where == "train" else (good, bad[:2])
  with pytest.raises(DataError, match="--likelihood"):
    pipeline.prepare(_splits(train_x, test_x), 0.0, "bernoulli")
  data = pipeline.prepare(_splits(train_x, test_x), 0.0, "gaussian")
  np.testing.assert_array_equal(data.train_x, train_x)


def test_prepare_accepts_unit_floats_and_uint8_for_bernoulli():
  floats = np.random.default_rng(5).random((6, 2, 2, 1)).astype(np.float32)
  assert len(pipeline.prepare(_splits(floats), 0.0, "bernoulli").train_x) == 6
  assert len(pipeline.prepare(_splits(_indexed_images(6)), 0.0,
                              "bernoulli").train_x) == 6
