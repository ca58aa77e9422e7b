"""Reads IDX files, the format MNIST and Fashion-MNIST are published in.

An IDX file is a 4-byte magic number (two zero bytes, a dtype code, the number
of dimensions), one big-endian uint32 per dimension, then the values. Files
may be gzip-compressed. Every way a file can be broken ends in a one-line
`DataError` naming the file.
"""

import gzip
import os
import struct
import zlib

import numpy as np

from tfvae.data.image_splits import describe_exception
from tfvae.errors import DataError

_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str, ndim: int) -> np.ndarray:
  """Reads an IDX file, gzip-compressed or not.

  Args:
    path: the file, e.g. '.../train-images-idx3-ubyte.gz'.
    ndim: the number of dimensions it must have (3 for images `[N, H, W]`,
      1 for labels `[N]`).

  Returns:
    The array, in native byte order, e.g. `[N, H, W]` uint8 images.

  Raises:
    DataError: the file is unreadable, empty, truncated, not gzip though named
      `.gz`, not IDX, or of another rank.
  """
  data = _read_bytes(path)
  dtype, shape, offset = _parse_header(path, data, ndim)
  expected = int(np.prod(shape)) * dtype.itemsize
  held = len(data) - offset
  if held != expected:
    problem = "truncated" if held < expected else "corrupt"
    raise DataError(
        f"{path} is {problem}: header says {_describe(shape)} "
        f"({expected} bytes) but it holds {held} bytes; re-download it.")
  array = np.frombuffer(data, dtype, offset=offset).reshape(shape)
  return array.astype(dtype.newbyteorder("="))


def _read_bytes(path: str) -> bytes:
  """Returns the file's content, decompressed when it is gzip."""
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    raise DataError(
        f"{path} cannot be read ({e.strerror}); check that it is a readable "
        "file.") from e
  if not data:
    raise DataError(f"{path} is empty; re-download it.")
  if data[:2] == _GZIP_MAGIC:
    try:
      return gzip.decompress(data)
    except EOFError as e:
      raise DataError(
          f"{path} is truncated: its gzip stream ends early; re-download it."
      ) from e
    except (OSError, zlib.error) as e:
      raise DataError(
          f"{path} is a corrupt gzip file ({describe_exception(e)}); "
          "re-download it.") from e
  if path.endswith(".gz"):
    raise DataError(
        f"{path} is not a gzip file; re-download it (or drop the .gz suffix "
        "if it holds uncompressed IDX data).")
  return data


def _parse_header(path: str, data: bytes, ndim: int):
  """Returns `(dtype, shape, offset of the values)` from an IDX header."""
  if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _DTYPES:
    raise DataError(
        f"{path} is not an IDX file (bad magic number "
        f"0x{data[:4].hex()}); re-download it.")
  if data[3] != ndim:
    raise DataError(
        f"{path} holds a {data[3]}-D array where a {ndim}-D one was expected; "
        f"check that it is {os.path.basename(path)} as published.")
  offset = 4 + 4 * ndim
  if len(data) < offset:
    raise DataError(
        f"{path} is truncated: it ends inside its header; re-download it.")
  shape = struct.unpack(f">{ndim}I", data[4:offset])
  return _DTYPES[data[2]], shape, offset


def _describe(shape) -> str:
  if len(shape) == 1:
    return f"{shape[0]} labels"
  if len(shape) == 3:
    return f"{shape[0]} images of {shape[1]}x{shape[2]}"
  return "an array of " + "x".join(map(str, shape))
