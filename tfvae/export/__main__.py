"""Exports the latest checkpoint of a run: `python -m tfvae.export`.

  python -m tfvae.export --model_dir=runs/quickstart [--export_dir=E]
      [--tflite_quantization=none|float16|dynamic_int8]

Installed (`pip install .`), the same program is `tfvae-export`.

Works for finished and interrupted runs; each call writes the next version.
"""

import dataclasses
import sys

from tfvae.cli import quiet_startup  # pylint: disable=g-bad-import-order

quiet_startup.default_log_level()

from absl import flags  # pylint: disable=g-import-not-at-top

from tfvae.cli import absl_main
from tfvae.config import TFLITE_QUANTIZATIONS
from tfvae.errors import TfvaeError

_MODEL_DIR = flags.DEFINE_string("model_dir", None, "The run to export.",
                                 required=True)
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", None,
    "TF Serving base path; default the run's --export_dir, else "
    "saved_models/<run>.")
_QUANTIZATION = flags.DEFINE_enum("tflite_quantization", "none",
                                  TFLITE_QUANTIZATIONS,
                                  "Weights of model.tflite.")


def main(argv):
  """Exports the run of `--model_dir` with the parsed flags.

  Args:
    argv: what is left of the command line after absl parsed the flags;
      only the program name is expected.
  """
  program = absl_main.program_name("tfvae.export")
  if len(argv) > 1:
    sys.exit(f"{program}: error: unexpected arguments {argv[1:]}.")
  quiet_startup.import_tensorflow()
  from tfvae.export import exporter  # pylint: disable=g-import-not-at-top
  from tfvae.training import run_state  # pylint: disable=g-import-not-at-top
  try:
    model, config, step = run_state.load_trained_model(_MODEL_DIR.value)
    config = dataclasses.replace(config, export=dataclasses.replace(
        config.export,
        export_dir=_EXPORT_DIR.value or config.export.export_dir,
        tflite_quantization=_QUANTIZATION.value))
    result = exporter.export_run(model, config)
  except TfvaeError as e:
    sys.exit(f"{program}: error: {e}")
  print(f"Exported step {step} as version {result.version}: "
        f"{result.version_dir} (TFLite: {result.tflite_path}; TF Serving "
        f"config: {result.models_config})")


def run():
  """The `tfvae-export` console script: runs `main` on the parsed flags."""
  absl_main.run(main, [flags.FLAGS[holder.name] for holder in (
      _MODEL_DIR, _EXPORT_DIR, _QUANTIZATION)], __doc__)


if __name__ == "__main__":
  run()
