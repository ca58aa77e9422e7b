"""Anomaly detection on a real table: the README's tabular recipe, measured.

The Breast Cancer Wisconsin (Diagnostic) table (569 tumours, 30 continuous
features; Street et al. 1993, UCI; shipped with scikit-learn, so nothing is
downloaded) is split into normal rows (benign) and anomalies (malignant):

1. a tabular VAE (`configs/tabular.flags`: one Gaussian per column,
   standardized with training statistics) trains on 60% of the benign rows
   (`train.csv`) through `tfvae-train`, and its test split (`test.csv`) is
   20% of the benign rows, so `metrics.json` compares its test NLL with the
   independent-column baseline (`trivial_nll`);
2. `tfvae-score` scores the other 20% of the benign rows (validation) and
   then the test benign rows plus every malignant row, labelled, and prints
   the AUROC;
3. a threshold at the 95th percentile of the validation scores flags
   anomalies: the false-positive rate on test benign rows and the share of
   malignant rows flagged are printed.

Run: `python benchmarks/tabular_anomaly.py` (needs `pip install
scikit-learn`; about a minute on 2 CPU cores).
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SPLIT_SEED = 0


def write_csv(path, names, rows, extra=None):
  """Writes `rows` `[N, D]` under the header `names` (+ an `extra` column)."""
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(list(names) + ([extra[0]] if extra else []))
    for index, row in enumerate(rows):
      writer.writerow([repr(float(v)) for v in row]
                      + ([int(extra[1][index])] if extra else []))


def command(name):
  """The console script `name` beside this Python, else `python -m ...`."""
  script = os.path.join(os.path.dirname(sys.executable), name)
  if os.path.exists(script):
    return [script]
  module = {"tfvae-train": "tfvae.cli.train",
            "tfvae-score": "tfvae.cli.score"}[name]
  return [sys.executable, "-m", module]


def run(argv, **kwargs):
  result = subprocess.run(argv, capture_output=True, text=True, check=False,
                          cwd=REPO, **kwargs)
  if result.returncode:
    sys.exit(f"{' '.join(argv)} failed:\n{result.stdout[-2000:]}"
             f"{result.stderr[-2000:]}")
  return result.stdout


def scores_of(path):
  with open(path) as f:
    return np.array([float(row["neg_log_likelihood"])
                     for row in csv.DictReader(f)])


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out_dir", default=None,
                      help="Where the tables, run and export go (default: a "
                           "temporary folder).")
  parser.add_argument("--num_samples", type=int, default=1000,
                      help="Importance samples k of the scores.")
  args, train_flags = parser.parse_known_args()
  from sklearn.datasets import load_breast_cancer  # pylint: disable=g-import-not-at-top

  table = load_breast_cancer()
  names = [n.replace(" ", "_") for n in table.feature_names]
  benign = table.data[table.target == 1]
  malignant = table.data[table.target == 0]
  order = np.random.default_rng(_SPLIT_SEED).permutation(len(benign))
  cut1, cut2 = int(0.6 * len(benign)), int(0.8 * len(benign))
  train, validation, test = (benign[order[:cut1]], benign[order[cut1:cut2]],
                             benign[order[cut2:]])
  out = args.out_dir or tempfile.mkdtemp(prefix="tfvae_tabular_")
  data_dir = os.path.join(out, "table")
  os.makedirs(data_dir, exist_ok=True)
  write_csv(os.path.join(data_dir, "train.csv"), names, train)
  write_csv(os.path.join(data_dir, "test.csv"), names, test)
  write_csv(os.path.join(out, "validation.csv"), names, validation)
  scored = np.concatenate([test, malignant])
  labels = np.r_[np.zeros(len(test)), np.ones(len(malignant))]
  write_csv(os.path.join(out, "scored.csv"), names, scored,
            extra=("anomaly", labels))
  model_dir = os.path.join(out, "run")
  export_dir = os.path.join(out, "export")
  run(command("tfvae-train") + [
      "--flagfile=configs/tabular.flags", f"--data_dir={data_dir}",
      f"--model_dir={model_dir}", f"--export_dir={export_dir}", "--restart",
      *train_flags])
  with open(os.path.join(model_dir, "metrics.json")) as f:
    metrics = json.load(f)
  score = command("tfvae-score")
  k = f"--num_samples={args.num_samples}"
  run(score + [export_dir, os.path.join(out, "validation.csv"),
               f"--output={os.path.join(out, 'validation_scores.csv')}", k])
  printed = run(score + [export_dir, os.path.join(out, "scored.csv"),
                         f"--output={os.path.join(out, 'scores.csv')}",
                         "--labels=anomaly", k])
  auroc = float(printed.split("AUROC ")[1].split()[0])
  threshold = np.percentile(
      scores_of(os.path.join(out, "validation_scores.csv")), 95)
  scores = scores_of(os.path.join(out, "scores.csv"))
  flagged = scores > threshold
  print(f"Breast Cancer Wisconsin: {len(train)} benign rows to train, "
        f"{len(validation)} validation, {len(test)} benign + "
        f"{len(malignant)} malignant to score; k={args.num_samples}")
  print(f"test NLL (benign, nats)      {metrics['test_nll']:.2f}")
  print(f"independent-column baseline  {metrics['trivial_nll']:.2f}")
  print(f"test -ELBO (nats)            {metrics['test_neg_elbo']:.2f}")
  print(f"AUROC (malignant vs benign)  {auroc:.4f}")
  print(f"threshold (95th pct. of validation scores) {threshold:.2f}: "
        f"{flagged[labels == 1].mean():.1%} of malignant flagged, "
        f"{flagged[labels == 0].mean():.1%} of test benign flagged")
  print(f"outputs in {out}")


if __name__ == "__main__":
  main()
