"""Anomaly scores of new data from a loaded model: what `tfvae-score` does.

The score of an example is -log p(x) in nats, the exported
`log_likelihood` signature's importance-weighted estimate: the less likely
an example under the model trained on normal data, the higher its score.
"""

import csv
import dataclasses
import os
from typing import Optional, Sequence

import numpy as np

from tfvae.data import columns as columns_lib
from tfvae.data import csv_files
from tfvae.data import image_splits
from tfvae.data import npz
from tfvae.errors import DataError, TfvaeError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclasses.dataclass(frozen=True)
class Examples:
  """Data to score.

  Attributes:
    x: `[N, ...]` float32 examples shaped like the model's data.
    ids: N names of the examples (row numbers, or image file names).
    labels: `[N]` 0/1 anomaly labels, or None.
    source: the file or folder read.
  """
  x: np.ndarray
  ids: Sequence[str]
  labels: Optional[np.ndarray]
  source: str


def read_examples(path, model, labels=None):
  """Reads a `.csv` file, a `.npz` file or an image folder for `model`.

  Args:
    path: the data (see `tfvae.cli.score`).
    model: a `tfvae.loading.LoadedModel`.
    labels: the CSV column or `.npz` array of 0/1 anomaly labels, or None.

  Returns:
    `Examples`.

  Raises:
    DataError: unreadable data, or data that do not fit the model.
  """
  if os.path.isdir(path):
    if labels is not None:
      raise DataError(f"--labels={labels} needs a .csv or .npz file; {path} "
                      "is a folder of images.")
    return _read_images(path, model.data_shape)
  if not os.path.isfile(path):
    raise DataError(f"{path} does not exist; pass a .csv file, a .npz file "
                    "or a folder of images.")
  if path.endswith(".npz"):
    return _read_npz(path, labels)
  if path.endswith(".csv"):
    return _read_csv(path, model, labels)
  raise DataError(f"{path} is neither a .csv nor a .npz file nor a folder "
                  "of images; convert it to one of those.")


def _read_csv(path, model, labels):
  if len(model.data_shape) != 1:
    raise DataError(
        f"{path} is a table, but the model at {model.path} takes images "
        f"{list(model.data_shape)}; pass a .npz file or an image folder.")
  columns = columns_lib.from_dicts(model.metadata.get("columns"))
  if columns is None:
    header, _ = csv_files.read_table(path)
    names = [n for n in header if n != labels]
    columns = tuple(columns_lib.Column(n) for n in names)
  if len(columns) != model.data_shape[0]:
    raise DataError(
        f"{path} has {len(columns)} feature columns but the model at "
        f"{model.path} takes vectors of length {model.data_shape[0]}; give "
        "it the columns it was trained on.")
  x, y = csv_files.read_for_columns(
      path, columns, labels,
      check_kinds=model.metadata.get("likelihood") == "tabular")
  return Examples(x, [str(i) for i in range(len(x))], y, path)


def _read_npz(path, labels):
  arrays = npz.load_arrays(path, ["x"] + ([labels] if labels else []),
                           fix="save it with np.savez(path, x=data)")
  x = image_splits.as_examples(arrays["x"], f"{path} array x")
  if x.dtype == np.uint8:
    x = x.astype(np.float32) / 255.0
  y = None
  if labels:
    y = image_splits.as_labels(arrays[labels], len(x),
                               f"{path} array {labels}")
    if np.any((y != 0) & (y != 1)):
      raise DataError(f"{path} array {labels} holds values other than 0 "
                      "and 1; --labels needs 0 (normal) or 1 (anomaly).")
  return Examples(x, [str(i) for i in range(len(x))], y, path)


def _read_images(folder, data_shape):
  from PIL import Image  # pylint: disable=g-import-not-at-top

  if len(data_shape) != 3:
    raise DataError(f"{folder} is a folder of images, but the model takes "
                    f"vectors [N, {data_shape[0]}]; pass a .csv or .npz file.")
  names = sorted(n for n in os.listdir(folder)
                 if n.lower().endswith(IMAGE_SUFFIXES))
  if not names:
    raise DataError(f"{folder} holds no PNG or JPEG files.")
  height, width, channels = data_shape
  images = []
  for name in names:
    file = os.path.join(folder, name)
    try:
      with Image.open(file) as image:
        image = image.convert("L" if channels == 1 else "RGB")
        pixels = np.asarray(image, np.float32) / 255.0
    except (OSError, ValueError) as e:
      raise DataError(f"{file} is not a readable image "
                      f"({image_splits.describe_exception(e)}).") from e
    if pixels.shape[:2] != (height, width):
      raise DataError(f"{file} is {pixels.shape[1]}x{pixels.shape[0]} but "
                      f"the model takes {width}x{height} images; resize it.")
    images.append(pixels.reshape(height, width, channels))
  return Examples(np.stack(images), names, None, folder)


def score(model, x, num_samples, batch_size=256):
  """`[N]` float64 -log p(x) of each example, `batch_size` at a time.

  Requests stay within the exported signature's limits
  (`tfvae.export.signatures.LOG_LIKELIHOOD_MAX_*`): fewer examples per
  request when k is large.

  Raises:
    TfvaeError: k above the signature's limit, or from the model (e.g. no
      likelihood bound, a wrong shape).
  """
  from tfvae.export import signatures  # pylint: disable=g-import-not-at-top

  if num_samples > signatures.LOG_LIKELIHOOD_MAX_SAMPLES:
    raise DataError(
        f"--num_samples={num_samples} is above the exported log_likelihood's "
        f"limit of {signatures.LOG_LIKELIHOOD_MAX_SAMPLES}; use fewer.")
  batch_size = max(1, min(batch_size, signatures.LOG_LIKELIHOOD_MAX_DRAWS
                          // num_samples))
  parts = [model.log_likelihood(x[i:i + batch_size], num_samples)
           for i in range(0, len(x), batch_size)]
  scores = -np.concatenate(parts).astype(np.float64)
  if not np.all(np.isfinite(scores)):
    row = int(np.flatnonzero(~np.isfinite(scores))[0])
    raise TfvaeError(f"The score of example {row} is not finite; check that "
                     "its values are in the model's range.")
  return scores


def write_scores(path, examples, scores):
  """Writes `id,neg_log_likelihood[,label]` rows to `path`, atomically."""
  tmp = f"{path}.tmp-{os.getpid()}"
  try:
    with open(tmp, "w", newline="") as f:
      writer = csv.writer(f)
      writer.writerow(["id", "neg_log_likelihood"]
                      + ([] if examples.labels is None else ["label"]))
      for index, (name, value) in enumerate(zip(examples.ids, scores)):
        row = [name, f"{value:.6f}"]
        if examples.labels is not None:
          row.append(int(examples.labels[index]))
        writer.writerow(row)
    os.replace(tmp, path)
  except OSError as e:
    raise TfvaeError(f"Cannot write --output={path}: {e.strerror}; choose a "
                     "writable path.") from e
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def auroc(scores, labels):
  """Area under the ROC curve of `scores` for 0/1 `labels` (1 = positive).

  The probability that a positive scores above a negative, ties counting
  one half (the Mann-Whitney statistic).

  Raises:
    DataError: when one of the two classes is absent.
  """
  scores = np.asarray(scores, np.float64)
  labels = np.asarray(labels).astype(bool)
  positives, negatives = int(labels.sum()), int((~labels).sum())
  if not positives or not negatives:
    raise DataError("The AUROC needs both normal (0) and anomalous (1) "
                    "examples in --labels.")
  order = np.argsort(scores, kind="mergesort")
  ranks = np.empty(len(scores))
  sorted_scores = scores[order]
  # Average ranks over ties.
  starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
  ends = np.r_[starts[1:], len(scores)]
  for start, end in zip(starts, ends):
    ranks[order[start:end]] = (start + end + 1) / 2.0
  return float((ranks[labels].sum() - positives * (positives + 1) / 2)
               / (positives * negatives))
