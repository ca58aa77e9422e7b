"""Trains, evaluates and exports a VAE: `tfvae-train --flagfile=F`.

The same program as `python train.py --flagfile=F` in a clone; installed
(`pip install .`), it runs from any folder.

Resumes from the latest checkpoint in `--model_dir` unless `--restart`.
Errors a user can fix are printed as one line, and the exit code is 1.
"""

import logging as std_logging
import os
import sys

from tfvae.cli import quiet_startup  # pylint: disable=g-bad-import-order

quiet_startup.default_log_level()

from absl import flags  # pylint: disable=g-import-not-at-top
from absl import logging

from tfvae import flags as tfvae_flags
from tfvae.cli import absl_main
from tfvae.errors import TfvaeError

FLAGS = flags.FLAGS


class _OnlyOwnInfo(std_logging.Filter):
  """Passes tfvae's INFO lines and every warning; drops TF's INFO chatter."""

  def filter(self, record):
    return (record.levelno >= std_logging.WARNING
            or f"{os.sep}tfvae{os.sep}" in record.pathname)


def main(argv):
  """Trains, evaluates and exports with the parsed flags; prints a table.

  Args:
    argv: what is left of the command line after absl parsed the flags;
      only the program name is expected.
  """
  program = absl_main.program_name("tfvae-train")
  if len(argv) > 1:
    sys.exit(f"{program}: error: unexpected arguments {argv[1:]}; flags are "
             "written --name=value.")
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().addFilter(_OnlyOwnInfo())
  # Heavy imports after flag parsing, so `--help` and flag errors are fast.
  quiet_startup.import_tensorflow()
  from tfvae.evaluation import report  # pylint: disable=g-import-not-at-top
  from tfvae.export import exporter  # pylint: disable=g-import-not-at-top
  from tfvae.training import experiment  # pylint: disable=g-import-not-at-top
  try:
    config = tfvae_flags.from_flags()
    result = experiment.train_and_evaluate(config)
    exported = (exporter.export_run(result.trainer.model, config)
                if config.export.export and result.is_chief else None)
  except TfvaeError as e:
    if getattr(e, "fatal", False):
      # TensorFlow's distributed runtime is stuck; it cannot exit cleanly.
      print(f"{program}: error: {e}", file=sys.stderr, flush=True)
      os._exit(1)  # pylint: disable=protected-access
    sys.exit(f"{program}: error: {e}")
  except KeyboardInterrupt as e:
    sys.exit(f"{program}: {e}")
  if not result.is_chief:
    print(f"{program}: this worker trained to step "
          f"{int(result.trainer.step.numpy())}; the chief writes the "
          f"metrics and the export under {config.train.model_dir}.")
    return
  locations = [("metrics", result.metrics_path)]
  if result.image_paths:
    locations.append(("images", os.path.dirname(
        next(iter(result.image_paths.values())))))
  locations += [("checkpoints", result.trainer.manager.directory),
               ("tensorboard", f"tensorboard --logdir "
                               f"{config.train.model_dir}")]
  if exported:
    locations += [(f"SavedModel v{exported.version}", exported.version_dir),
                  ("TFLite", exported.tflite_path),
                  ("TF Serving config", exported.models_config)]
  print(report.summary_table(result.metrics, locations))


def _tfvae_flags():
  """The flags tfvae's modules define: those `--helpshort` lists."""
  return [flag for module, module_flags in FLAGS.flags_by_module_dict().items()
          if module == "tfvae" or module.startswith("tfvae.")
          for flag in module_flags]


def run():
  """The `tfvae-train` console script: defines the flags, then runs `main`."""
  tfvae_flags.define_flags()
  absl_main.run(main, _tfvae_flags(), __doc__)


if __name__ == "__main__":
  run()
