"""Mistakes a user can make: each fails with one error line, no traceback.

Every case runs `train.py` as a subprocess; the error must name the flag or
file to fix, and errors in the data must leave `--model_dir` untouched.
"""

import os

import numpy as np
import pytest

from tests.integration import cli


@pytest.fixture(scope="module")
def bad_files(shapes_dir, tmp_path_factory):
  """Broken .npz files: name -> path."""
  folder = tmp_path_factory.mktemp("bad_files")
  with open(os.path.join(shapes_dir, "train.npz"), "rb") as f:
    good = f.read()
  contents = {
      "empty.npz": b"",
      "truncated.npz": good[:len(good) // 2],
      # A zip whose stored x.npy has garbage in the middle: the CRC fails.
      "corrupt.npz": (good[:len(good) // 2] + os.urandom(4096)
                      + good[len(good) // 2 + 4096:]),
      "garbage.npz": b"PK\x03\x04" + os.urandom(2000),
  }
  paths = {}
  for name, data in contents.items():
    paths[name] = str(folder / name)
    with open(paths[name], "wb") as f:
      f.write(data)
  paths["no_x.npz"] = str(folder / "no_x.npz")
  np.savez(paths["no_x.npz"], images=np.zeros((100, 28, 28), np.uint8),
           y=np.zeros(100, np.int64))
  paths["missing.npz"] = str(folder / "missing.npz")
  return paths


def _assert_one_error(result, *needles):
  assert result.returncode == 1, cli.describe(result)
  text = cli.output(result)
  assert "Traceback" not in text, cli.describe(result)
  lines = cli.error_lines(result)
  assert len(lines) == 1, cli.describe(result)
  line = lines[0]
  assert (line.startswith("train.py: error: ")
          or line.startswith("FATAL Flags parsing error: ")), line
  for needle in needles:
    assert needle in line, (needle, line)
  return line


# Flag mistakes: name -> (extra arguments, what the message must name).
_FLAG_CASES = {
    "negative_latent_dim": (["--latent_dim=-4"], ["--latent_dim"]),
    "negative_beta": (["--beta=-1"], ["--beta"]),
    "unknown_model": (["--model=gan"], ["--model", "gan"]),
    "unknown_dataset": (["--dataset=imagenet"], ["--dataset", "imagenet"]),
    "unknown_likelihood": (["--likelihood=poisson"],
                           ["--likelihood", "poisson"]),
    "unknown_flag": (["--latent_dims=4"], ["latent_dims"]),
    "missing_flagfile": (["--flagfile=/nonexistent/run.flags"],
                         ["/nonexistent/run.flags"]),
    "positional_argument": (["latent_dim=4"], ["latent_dim=4"]),
    "zero_steps_and_epochs": (["--train_steps=0", "--epochs=0"],
                              ["--epochs", "--train_steps"]),
}


@pytest.mark.parametrize("case", sorted(_FLAG_CASES))
def test_flag_mistake(case, shapes_dir, tmp_path):
  extra, needles = _FLAG_CASES[case]
  model_dir = str(tmp_path / "run")
  # The mistake comes last, so it overrides the valid settings before it.
  result = cli.run_train(*cli.shapes_args(shapes_dir, "--train_steps=30"),
                         *extra, model_dir=model_dir)
  _assert_one_error(result, *needles)
  assert not os.path.exists(os.path.join(model_dir, "checkpoints"))


def _data_case(case, shapes_dir, noisy_shapes_dir, bad_files):
  """(--data_dir, extra arguments, what the message must name)."""
  if case == "bernoulli_on_float_data_outside_0_1":
    # Noisy floats range over about [-0.5, 1.5].
    return noisy_shapes_dir, [], ["--likelihood", noisy_shapes_dir]
  if case == "batch_larger_than_data":
    return shapes_dir, ["--batch_size=4096"], ["--batch_size=4096"]
  path = bad_files[case + ".npz"]
  if case == "missing":
    return path, [], ["--data_dir", path]
  return path, [], [path]


_DATA_CASES = ("bernoulli_on_float_data_outside_0_1", "batch_larger_than_data",
               "missing", "empty", "truncated", "corrupt", "garbage", "no_x")


@pytest.mark.parametrize("case", _DATA_CASES)
def test_data_mistake(case, shapes_dir, noisy_shapes_dir, bad_files,
                      tmp_path):
  data_dir, extra, needles = _data_case(case, shapes_dir, noisy_shapes_dir,
                                        bad_files)
  model_dir = str(tmp_path / "run")
  result = cli.run_train(*cli.shapes_args(data_dir, "--train_steps=30"),
                         *extra, model_dir=model_dir)
  line = _assert_one_error(result, *needles)
  assert line.startswith("train.py: error: ")
  if case == "no_x":
    assert "array(s) x" in line and "images" in line, line
  # Bad data is found before anything is written.
  assert not os.path.exists(os.path.join(model_dir, "checkpoints"))
  assert not os.path.exists(model_dir) or not os.listdir(model_dir), (
      os.listdir(model_dir))


# --model_dir naming a file: (the path under the file's folder, extra flags).
_MODEL_DIR_FILE_CASES = {
    "is_a_file_with_restart": ("notes.txt", ["--restart"]),
    "inside_a_file": ("notes.txt/run", []),
}


@pytest.mark.parametrize("case", sorted(_MODEL_DIR_FILE_CASES))
def test_model_dir_is_a_file(case, shapes_dir, tmp_path):
  relative, extra = _MODEL_DIR_FILE_CASES[case]
  path = tmp_path / "notes.txt"
  path.write_text("not a run\n")
  model_dir = str(tmp_path / relative)
  result = cli.run_train(*cli.shapes_args(shapes_dir, "--train_steps=30"),
                         *extra, model_dir=model_dir)
  line = _assert_one_error(result, f"--model_dir={model_dir}", str(path),
                           "is a file, not a folder")
  assert line.startswith("train.py: error: ")
  # Found before anything is written: the file and its folder are as they were.
  assert path.read_text() == "not a run\n"
  assert os.listdir(tmp_path) == ["notes.txt"]
