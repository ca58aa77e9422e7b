"""The `image_folder` source: a folder tree of PNG/JPEG files.

`--data_dir` is the root. With `train/` (and optionally `test/`) sub-folders,
those are the splits; otherwise the root is the train split and a test split
is held out. Inside a split, one sub-folder per class gives labels (the sorted
folder names are the classes, the test split reuses the train split's); images
directly in it are unlabeled. Every image is converted to RGB, resized so its
shorter side is `image_size` and center-cropped to `image_size` squared.

When the decoded images would take more than `--max_in_memory_mb` (default a
quarter of the machine's memory), the splits are `streams.FileImages`: the
files are decoded in the input pipeline instead of up front.
"""

import concurrent.futures
import os
from typing import List, Optional, Sequence, Tuple

from absl import logging
import numpy as np
from PIL import Image
from PIL import ImageOps

from tfvae.config import DataConfig
from tfvae.data import image_splits
from tfvae.errors import ConfigError, DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
TRAIN_FOLDER = "train"
TEST_FOLDER = "test"
_MAX_WORKERS = min(16, (os.cpu_count() or 1) + 4)


def load_image_folder(config: DataConfig) -> image_splits.Splits:
  """Loads the images under `config.data_dir` as the module docstring says.

  Args:
    config: uses `data_dir`, `image_size` and `test_fraction`.

  Returns:
    The `Splits` with `[N, S, S, 3]` uint8 images, S = `image_size`, as
    arrays or as `streams.FileImages`.

  Raises:
    ConfigError: `data_dir` is unset or not a folder.
    DataError: a split holds no images, mixes loose images and class
      folders, has a class the train split lacks, or an image is unreadable.
  """
  # Imported here: streams imports this module for `read_image`.
  from tfvae.data import streams  # pylint: disable=g-import-not-at-top

  train_dir, test_dir = _split_folders(config.data_dir)
  train_files, train_classes = list_images(train_dir)
  class_names = sorted(set(train_classes)) if train_classes else None
  train_x = streams.FileImages(train_files, config.image_size)
  train_y = _labels(train_classes, class_names, train_dir, train_dir)
  if test_dir is None:
    train_x, train_y, test_x, test_y = image_splits.hold_out_test(
        train_x, train_y, config.test_fraction, train_dir)
  else:
    test_files, test_classes = list_images(test_dir)
    test_x = streams.FileImages(test_files, config.image_size)
    test_y = _labels(test_classes, class_names, test_dir, train_dir)
  limit_mb = in_memory_limit_mb(config.max_in_memory_mb)
  decoded_mb = (train_x.size_bytes + test_x.size_bytes) / 2**20
  if decoded_mb <= limit_mb:
    train_x, test_x = train_x.load(), test_x.load()
  else:
    logging.info(
        "Streaming %s from disk: its %d images take %.0f MB decoded, above "
        "--max_in_memory_mb=%d.", config.data_dir,
        len(train_x) + len(test_x), decoded_mb, limit_mb)
  return image_splits.make_splits(
      train_x, train_y, test_x, test_y, source=config.data_dir,
      num_classes=len(class_names) if class_names else None)


def in_memory_limit_mb(max_in_memory_mb: Optional[int]) -> int:
  """`--max_in_memory_mb`, or a quarter of physical memory when None."""
  if max_in_memory_mb is not None:
    return max_in_memory_mb
  total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  return int(total / 4 / 2**20)


def list_images(folder: str) -> Tuple[List[str], Optional[List[str]]]:
  """Lists a split's image files, in a fixed order, with their classes.

  Args:
    folder: a split: images directly in it, or one sub-folder per class
      (searched recursively). Hidden files and folders are skipped.

  Returns:
    `(paths, classes)`: `classes[i]` is the class folder of `paths[i]`, or
    `classes` is None when the images are directly in `folder`.

  Raises:
    DataError: no images, a class folder without images, or loose images
      beside class folders.
  """
  entries = sorted(e for e in os.listdir(folder) if not e.startswith("."))
  subfolders = [e for e in entries if os.path.isdir(os.path.join(folder, e))]
  loose = [os.path.join(folder, e) for e in entries if _is_image(folder, e)]
  if not subfolders:
    if not loose:
      raise DataError(
          f"{folder} holds no {'/'.join(IMAGE_EXTENSIONS)} images; add "
          "images, directly or in one sub-folder per class.")
    return loose, None
  if loose:
    raise DataError(
        f"{folder} holds both class sub-folders and {len(loose)} loose "
        f"images (e.g. {os.path.basename(loose[0])}); move the images into "
        "class folders, or remove the sub-folders for unlabeled data.")
  paths, classes = [], []
  for name in subfolders:
    found = _images_under(os.path.join(folder, name))
    if not found:
      raise DataError(
          f"Class folder {os.path.join(folder, name)} holds no "
          f"{'/'.join(IMAGE_EXTENSIONS)} images; add some or remove it.")
    paths += found
    classes += [name] * len(found)
  return paths, classes


def read_images(paths: Sequence[str], size: int) -> np.ndarray:
  """Reads images in parallel threads; returns `[N, size, size, 3]` uint8."""
  images = np.empty((len(paths), size, size, 3), np.uint8)

  def read_into(i):
    images[i] = read_image(paths[i], size)

  with concurrent.futures.ThreadPoolExecutor(_MAX_WORKERS) as pool:
    list(pool.map(read_into, range(len(paths))))
  return images


def read_image(path: str, size: int) -> np.ndarray:
  """Reads one image as RGB, shorter side resized to `size`, center-cropped.

  Args:
    path: a PNG or JPEG file.
    size: side S of the result.

  Returns:
    `[S, S, 3]` uint8 pixels.

  Raises:
    DataError: the file is not a readable image.
  """
  try:
    with Image.open(path) as image:
      image.draft("RGB", (size, size))
      image = ImageOps.exif_transpose(image).convert("RGB")
      return np.asarray(_resize_and_crop(image, size))
  # PIL's format plugins raise many exception types for malformed files.
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(
        f"{path} is not a readable image "
        f"({image_splits.describe_exception(e)}); replace or remove it."
    ) from e


def _resize_and_crop(image: Image.Image, size: int) -> Image.Image:
  width, height = image.size
  scale = size / min(width, height)
  resized = (max(size, round(width * scale)), max(size, round(height * scale)))
  if resized != image.size:
    image = image.resize(resized, Image.Resampling.BICUBIC)
  left, top = (resized[0] - size) // 2, (resized[1] - size) // 2
  return image.crop((left, top, left + size, top + size))


def _split_folders(data_dir: Optional[str]) -> Tuple[str, Optional[str]]:
  """Returns the train folder and the test folder (None: hold one out)."""
  if not data_dir:
    raise ConfigError(
        "--data_dir must point to the image folder root when "
        "--dataset=image_folder.")
  if not os.path.isdir(data_dir):
    raise ConfigError(
        f"--data_dir={data_dir} is not a folder; point it to the root of "
        "your images (optionally with train/ and test/ sub-folders).")
  train_dir = os.path.join(data_dir, TRAIN_FOLDER)
  test_dir = os.path.join(data_dir, TEST_FOLDER)
  if os.path.isdir(train_dir):
    return train_dir, test_dir if os.path.isdir(test_dir) else None
  if os.path.isdir(test_dir):
    raise DataError(
        f"{data_dir} has a {TEST_FOLDER}/ folder but no {TRAIN_FOLDER}/; add "
        f"{TRAIN_FOLDER}/ or rename {TEST_FOLDER}/.")
  return data_dir, None


def _labels(classes: Optional[List[str]], class_names: Optional[List[str]],
            folder: str, train_dir: str) -> Optional[np.ndarray]:
  """Maps each image's class folder to its index in the train split's."""
  if (classes is None) != (class_names is None):
    raise DataError(
        f"{folder} and {train_dir} disagree: one has class sub-folders and "
        "the other not; use class folders in both or in neither.")
  if classes is None:
    return None
  unknown = sorted(set(classes) - set(class_names))
  if unknown:
    raise DataError(
        f"{folder} has class folder(s) {', '.join(unknown)} that {train_dir} "
        f"lacks (its classes: {', '.join(class_names)}); add them there or "
        "remove them.")
  index = {name: i for i, name in enumerate(class_names)}
  return np.array([index[c] for c in classes], np.int32)


def _images_under(folder: str) -> List[str]:
  """Image files under `folder`, recursively, skipping hidden entries."""
  paths = []
  for parent, dirs, files in os.walk(folder):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    paths += [os.path.join(parent, f) for f in sorted(files)
              if not f.startswith(".") and _is_image(parent, f)]
  return paths


def _is_image(folder: str, name: str) -> bool:
  return (name.lower().endswith(IMAGE_EXTENSIONS)
          and os.path.isfile(os.path.join(folder, name)))
