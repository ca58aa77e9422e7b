"""Training on streamed data: TFRecord shards and image folders on disk.

A streamed run resumes exactly (100 -> 200 steps equals 200 straight), an
`image_folder` streamed from disk trains like the same folder decoded in
memory,
and a shard damaged after training started stops the run with one line
naming the file and record, the last checkpoint intact.
"""

import dataclasses
import os

import numpy as np
from PIL import Image
import pytest

from tests.integration import shapes
from tfvae import config as config_lib
from tfvae.data import streams
from tfvae.data import to_tfrecord
from tfvae.errors import DataError
from tfvae.training import experiment


def _config(model_dir, data_config, steps, **train):
  return config_lib.RunConfig(
      data=data_config,
      model=config_lib.ModelConfig(hidden_dims=(32,), latent_dim=4),
      train=config_lib.TrainConfig(model_dir=str(model_dir),
                                   train_steps=steps, batch_size=32,
                                   steps_per_loop=25, progress=False, **train),
      eval=config_lib.EvalConfig(eval_iw_samples=2, images=False),
      export=config_lib.ExportConfig(export=False)).validate()


def _weights(result):
  return [v.numpy() for v in result.trainer.model.trainable_variables]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
  """Drawn shapes (700 train, 100 test) as 5 PNG TFRecord shards a split."""
  folder = tmp_path_factory.mktemp("npz")
  shapes.write_npz(str(folder / "train.npz"), 700, seed=1)
  shapes.write_npz(str(folder / "test.npz"), 100, seed=2)
  out = str(tmp_path_factory.mktemp("records") / "shapes")
  to_tfrecord.convert(config_lib.DataConfig(dataset="npz",
                                            data_dir=str(folder)),
                      out, num_shards=5, workers=1)
  return out


def _records(data_dir, **options):
  return config_lib.DataConfig(dataset="tfrecord", data_dir=data_dir,
                               shuffle_buffer=64, **options)


def test_streamed_records_resume_exactly(shards, tmp_path):
  straight = experiment.train_and_evaluate(
      _config(tmp_path / "straight", _records(shards), 200))
  assert isinstance(straight.trainer.data.train_x, streams.RecordSplit)
  experiment.train_and_evaluate(_config(tmp_path / "resumed",
                                        _records(shards), 100))
  resumed = experiment.train_and_evaluate(
      _config(tmp_path / "resumed", _records(shards), 200))
  assert resumed.resumed_from.endswith("ckpt-100")
  for got, want in zip(_weights(resumed), _weights(straight)):
    np.testing.assert_array_equal(got, want)
  assert resumed.metrics["test_neg_elbo"] == straight.metrics["test_neg_elbo"]
  # 700 train records less a 10% validation hold-out, all read per epoch.
  assert straight.metrics["test_examples"] == 100
  assert len(straight.trainer.data.train_x) == 630


def test_every_record_is_seen_once_per_epoch(shards):
  from tfvae.data import pipeline  # pylint: disable=g-import-not-at-top
  from tfvae.data import sources  # pylint: disable=g-import-not-at-top

  split = sources.load_splits(_records(shards)).train_x
  batches = list(pipeline.train_dataset(
      split, None, batch_size=70, seed=3, start_step=0, total_steps=20,
      binarized=False, shuffle_buffer=64))
  images = np.concatenate([b["image"].numpy() for b in batches])
  labels = np.concatenate([b["label"].numpy() for b in batches])
  everything, everything_labels = split.load()
  key = lambda x: x.reshape(len(x), -1).tobytes()  # pylint: disable=unnecessary-lambda-assignment
  for epoch in (0, 1):
    seen = images[epoch * 700:(epoch + 1) * 700]
    rows = sorted(seen.reshape(700, -1).tolist())
    want = sorted((everything / 255.0).astype(np.float32).reshape(
        700, -1).tolist())
    assert rows == want
  # The two epochs differ in order, and labels travel with their images.
  assert key(images[:700]) != key(images[700:])
  assert sorted(labels[:700].tolist()) == sorted(everything_labels.tolist())


def _write_folder(root, count):
  images, labels = shapes.make_shapes(count, seed=5, size=20)
  for i, (image, label) in enumerate(zip(images, labels)):
    folder = os.path.join(root, shapes.CLASSES[label])
    os.makedirs(folder, exist_ok=True)
    Image.fromarray((image[..., 0] * 255).astype(np.uint8)).save(
        os.path.join(folder, f"{i:04d}.png"))


def test_streamed_image_folder_equals_in_memory(tmp_path):
  _write_folder(str(tmp_path / "images"), 300)
  data = config_lib.DataConfig(dataset="image_folder", image_size=16,
                               data_dir=str(tmp_path / "images"),
                               binarize=False)
  in_memory = experiment.train_and_evaluate(dataclasses.replace(
      _config(tmp_path / "memory", data, 30),
      model=config_lib.ModelConfig(hidden_dims=(32,), latent_dim=4,
                                   likelihood="gaussian")))
  streamed = experiment.train_and_evaluate(dataclasses.replace(
      _config(tmp_path / "streamed",
              dataclasses.replace(data, max_in_memory_mb=0), 30),
      model=config_lib.ModelConfig(hidden_dims=(32,), latent_dim=4,
                                   likelihood="gaussian")))
  assert isinstance(in_memory.trainer.data.train_x, np.ndarray)
  assert isinstance(streamed.trainer.data.train_x, streams.FileImages)
  # The same pixels in the same order; the batches live in other buffers,
  # which can change the last bit of oneDNN's sums.
  for got, want in zip(_weights(streamed), _weights(in_memory)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  assert streamed.metrics["test_nll"] == pytest.approx(
      in_memory.metrics["test_nll"], rel=1e-5)
  assert streamed.metrics["trivial_nll"] == pytest.approx(
      in_memory.metrics["trivial_nll"], rel=1e-9)
  # The feature classifier reads the streamed files like the arrays.
  for key in ("sample_frechet_distance", "frechet_reference",
              "feature_classifier_accuracy"):
    assert streamed.metrics[key] == pytest.approx(in_memory.metrics[key],
                                                  rel=1e-3), key


def test_corrupt_shard_stops_with_one_line(shards, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top

  damaged = str(tmp_path / "damaged")
  shutil.copytree(shards, damaged)
  shard = os.path.join(damaged, sorted(
      n for n in os.listdir(damaged) if n.startswith("train-"))[2])
  with open(shard, "r+b") as f:  # Flip a byte inside a record's data.
    f.seek(os.path.getsize(shard) // 2)
    byte = f.read(1)
    f.seek(-1, os.SEEK_CUR)
    f.write(bytes([byte[0] ^ 0xFF]))
  with pytest.raises(DataError) as error:
    experiment.train_and_evaluate(_config(tmp_path / "run",
                                          _records(damaged), 100,
                                          checkpoint_steps=0))
  message = str(error.value)
  assert "\n" not in message
  assert os.path.basename(shard) in message and "record" in message
  assert not os.path.exists(tmp_path / "run" / "checkpoints" / "checkpoint")
