"""User-facing errors: raised for bad input, printed as one line by `train.py`.

Anything raised as a `TfvaeError` is a problem with what the user asked for
(flags, files, data), not a bug, so the command-line entry points print its
message alone, without a traceback, and exit non-zero.
"""


class TfvaeError(Exception):
  """Base class of the errors a user can fix; the message names the fix."""


class ConfigError(TfvaeError):
  """An invalid or contradictory flag or config value."""


class DataError(TfvaeError):
  """Data that is missing, unreadable, corrupt or of the wrong shape/range."""


class TrainingError(TfvaeError):
  """Training cannot go on (e.g. the loss became NaN or Inf)."""


class ExportError(TfvaeError):
  """An export that cannot be written or has nothing to export."""


class RunLockedError(ConfigError):
  """The `--model_dir` is in use by another live process (see `RunLock`)."""
