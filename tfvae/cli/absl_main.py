"""Runs an absl `main` as a command-line program, script or console script.

absl's `--helpshort` lists the key flags of the module named `sys.argv[0]`
under the `__main__` module's docstring. A console script's `__main__` is a
generated wrapper with neither, so `run` makes the program's flags key to it
and lends it the program's docstring. absl also exits with status 1 after
printing help; `run` makes asking for help exit 0, as other programs do.
"""

import os
import sys

from absl import app
from absl import flags

_HELP_FLAGS = frozenset(["?", "help", "helpshort", "helpfull", "helpxml"])


def program_name(default):
  """The name the user typed (`train.py`, `tfvae-train`), else `default`.

  Args:
    default: the name for `python -m package` runs, whose `sys.argv[0]` is
      a `__main__.py`, and for an empty `sys.argv`.

  Returns:
    The base name of `sys.argv[0]` or `default`.
  """
  name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
  return default if name in ("", "__main__.py") else name


def _asks_for_help(args):
  """Whether a command line's flags (`args`, less the program) ask for help."""
  for arg in args:
    if arg == "--":
      break
    if arg.startswith("-"):
      name = arg.lstrip("-").split("=", 1)[0]
      if name in _HELP_FLAGS:
        return True
  return False


def _parse_flags(argv):
  """absl's flag parser, except that printing help exits 0, not 1."""
  try:
    return app.parse_flags_with_usage(argv)
  except SystemExit as e:
    # A flag error also exits 1, from inside `except flags.Error`.
    if (e.code == 1 and not isinstance(e.__context__, flags.Error)
        and _asks_for_help(argv[1:])):
      raise SystemExit(0) from None
    raise


def run(main, key_flags, doc):
  """Parses the command line and calls `main(argv)`, as `absl.app.run`.

  Args:
    main: the program's `main(argv)`.
    key_flags: the `absl.flags.Flag`s `--helpshort` lists.
    doc: the program's docstring, shown by `--help` when `__main__` has none.
  """
  for flag in key_flags:
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  main_module = sys.modules.get("__main__")
  if main_module is not None and not main_module.__doc__:
    main_module.__doc__ = doc
  app.run(main, flags_parser=_parse_flags)
