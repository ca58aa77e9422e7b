"""Scores data with an exported model: `tfvae-score EXPORT DATA --output F`.

  tfvae-score saved_models/run DATA --output scores.csv [--labels=NAME]
      [--num_samples=1000] [--batch_size=256]

EXPORT is anything `tfvae.load` takes (an export folder, a version folder or
a run's --model_dir). DATA is

- a `.csv` file with a header: the model's columns by name (in any order;
  other columns are ignored), raw values, categories as in training;
- a `.npz` file with an array `x` shaped like the model's data;
- a folder of PNG/JPEG images the size of the model's images.

Writes one row per example, in input order: its index (the file name for
images) and its anomaly score, -log p(x) in nats, the exported
`log_likelihood` signature's importance-weighted estimate with
`--num_samples` samples. With `--labels` (a CSV column or `.npz` array of
0/1, 1 marking an anomaly) it also prints the AUROC of the scores.
Errors are one line naming the file, row and column; nothing is written.
"""

import sys

from tfvae.cli import quiet_startup  # pylint: disable=g-bad-import-order

quiet_startup.default_log_level()

from absl import flags  # pylint: disable=g-import-not-at-top

from tfvae.cli import absl_main
from tfvae.errors import TfvaeError

_OUTPUT = flags.DEFINE_string("output", None,
                              "CSV file the scores are written to.",
                              required=True)
_LABELS = flags.DEFINE_string(
    "labels", None,
    "A CSV column or .npz array of 0/1 (1 = anomaly): print the AUROC.")
_NUM_SAMPLES = flags.DEFINE_integer(
    "num_samples", 1000, "Importance samples k per example.", lower_bound=1)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 256,
                                   "Examples per log_likelihood request.",
                                   lower_bound=1)


def main(argv):
  """Scores DATA with EXPORT (the two positional arguments)."""
  program = absl_main.program_name("tfvae-score")
  if len(argv) != 3:
    sys.exit(f"{program}: error: expected EXPORT DATA (got "
             f"{' '.join(argv[1:]) or 'nothing'}); e.g. {program} "
             "saved_models/run data.csv --output scores.csv.")
  # Heavy imports after flag parsing, so `--help` and flag errors are fast.
  quiet_startup.import_tensorflow()
  from tfvae import loading  # pylint: disable=g-import-not-at-top
  from tfvae.evaluation import scoring  # pylint: disable=g-import-not-at-top
  try:
    model = loading.load(argv[1])
    examples = scoring.read_examples(argv[2], model, _LABELS.value)
    scores = scoring.score(model, examples.x, _NUM_SAMPLES.value,
                           _BATCH_SIZE.value)
    scoring.write_scores(_OUTPUT.value, examples, scores)
  except TfvaeError as e:
    sys.exit(f"{program}: error: {e}")
  print(f"Scored {len(scores)} examples of {argv[2]} with {model.path} "
        f"(k={_NUM_SAMPLES.value}): {_OUTPUT.value}")
  if examples.labels is not None:
    print(f"AUROC {scoring.auroc(scores, examples.labels):.4f} "
          f"({int(examples.labels.sum())} anomalies of {len(scores)})")


def run():
  """The `tfvae-score` console script."""
  absl_main.run(main, [flags.FLAGS[holder.name] for holder in (
      _OUTPUT, _LABELS, _NUM_SAMPLES, _BATCH_SIZE)], __doc__)


if __name__ == "__main__":
  run()
