"""Every flagfile in configs/ parses, validates and means what it says.

Parsed in-process with absl, as `train.py` does; FLAGS is process-global, so
each test starts and ends with unparsed flags.
"""

import glob
import os

from absl import flags
import pytest

from tests.conftest import REPO_ROOT
from tfvae import flags as tfvae_flags

FLAGS = flags.FLAGS
_FLAGFILES = sorted(glob.glob(os.path.join(REPO_ROOT, "configs", "*.flags")))


def _settings(path):
  """The `--name[=value]` lines of a flagfile as (name, value or None)."""
  settings = []
  with open(path) as f:
    for line in f:
      line = line.strip()
      if not line or line.startswith("#"):
        continue
      assert line.startswith("--"), line
      name, _, value = line[2:].partition("=")
      settings.append((name, value if value else None))
  return settings


@pytest.fixture
def parsed_flags():
  """Defines the flags; unparses them before and after the test."""
  tfvae_flags.define_flags()
  FLAGS.unparse_flags()
  yield FLAGS
  FLAGS.unparse_flags()


def test_there_are_flagfiles():
  assert len(_FLAGFILES) >= 5, _FLAGFILES


@pytest.mark.parametrize("path", _FLAGFILES, ids=os.path.basename)
def test_flagfile_parses_and_validates(parsed_flags, path):
  parsed_flags(["train.py", f"--flagfile={path}"])
  config = tfvae_flags.from_flags()
  sections = (config.data, config.model, config.train, config.eval,
              config.export)
  for name, value in _settings(path):
    bool_name = name
    if value is None and name not in parsed_flags and name.startswith("no"):
      bool_name = name[2:]  # --noexport sets --export to False.
    assert bool_name in parsed_flags, name
    assert parsed_flags[bool_name].present, name
    # Flags and config fields share names; the config holds the flag's value.
    owners = [s for s in sections if hasattr(s, bool_name)]
    assert len(owners) == 1, name
    field = getattr(owners[0], bool_name)
    flag_value = parsed_flags[bool_name].value
    if isinstance(field, tuple):  # List flags of widths: hidden_dims, ...
      assert field == tuple(int(d) for d in flag_value), name
    else:
      assert field == flag_value, name
  assert config.train.model_dir.startswith("runs/")
  assert config.train.epochs > 0 or config.train.train_steps > 0


@pytest.mark.parametrize("path", _FLAGFILES, ids=os.path.basename)
def test_flagfile_model_accepts_its_options(parsed_flags, path):
  from tfvae.models import registry  # pylint: disable=g-import-not-at-top

  parsed_flags(["train.py", f"--flagfile={path}"])
  config = tfvae_flags.from_flags()
  registry.get(config.model.model).check_config(config.model)
