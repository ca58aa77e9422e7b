"""Disentanglement of vae, beta_vae, beta_tc_vae, factor_vae and dip_vae.

Every row trains on `--dataset=shapes` (tfvae's dSprites-style sprites:
shape, scale, orientation, x, y) with the same MLP (4096-512-512-10: 10 latent
dimensions as Higgins et al. 2017 used on dSprites, narrower hidden layers
than their 1200-1200 to fit a CPU budget), data, batch size,
learning rate and step budget, once per seed, through `train.py`'s own code
(`train_and_evaluate`), which adds the `disentanglement` block to
metrics.json (`tfvae.evaluation.disentanglement`). The table gives each
metric's mean +- standard deviation over the seeds (sample std, n-1), the
per-seed range, the test NLL and -ELBO, and a traversal grid per model (the
first seed's `images/traversals.png`).

Seeds move these scores a lot (Locatello et al. 2019 found the seed matters
as much as the model); the table shows the spread instead of a best seed.
The budget here is a CPU's: 2,000 steps of 64 images, far from the 300,000 of
disentanglement_lib's study, so the absolute scores are lower than
published ones.

Run: `python benchmarks/disentanglement.py` (about 3 minutes a run on 2 CPU
cores with the defaults); `--rows=vae,factor_vae --seeds=0` picks runs. The
Markdown table goes to stdout and `<out_dir>/disentanglement.md` and lists
every run with a `row.json` under `<out_dir>`, so re-running some keeps the
others.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from tfvae import config as config_lib
from tfvae.errors import TfvaeError
from tfvae.evaluation import report
from tfvae.training import experiment

tf.get_logger().setLevel("ERROR")

_OUT_DIR = flags.DEFINE_string("out_dir", "runs/disentanglement",
                               "Where runs go.")
_ROWS = flags.DEFINE_list("rows", [], "Rows to run (default: all).")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of each row.")
_STEPS = flags.DEFINE_integer("train_steps", 2000, "Steps per run.")
_SAMPLES = flags.DEFINE_integer("shapes_samples", 100_000,
                                "Images drawn from the factor grid.")
_METRIC_SAMPLES = flags.DEFINE_integer(
    "disentanglement_samples", 10_000, "Examples drawn for the metrics.")
_IW = flags.DEFINE_integer("eval_iw_samples", 100, "k of the test NLL.")
_EVAL_EXAMPLES = flags.DEFINE_integer("eval_max_examples", 2000,
                                      "Test images of the NLL.")

_MODEL = dict(hidden_dims=(512, 512), latent_dim=10)
# Each variant's regularization strength, from its paper's dSprites runs
# where it gave one (beta_vae: Higgins et al. beta=4; factor_vae: Kim & Mnih
# report gamma in 10..100; dip_vae: Kumar et al.'s type i lambdas).
ROWS = {
    "vae": dict(model="vae"),
    "beta_vae": dict(model="beta_vae", beta=4.0),
    "beta_tc_vae": dict(model="beta_tc_vae", beta=6.0),
    "factor_vae": dict(model="factor_vae", tc_weight=10.0),
    "dip_vae": dict(model="dip_vae", dip_type="i", dip_lambda_od=10.0,
                    dip_lambda_d=100.0),
}
# (column, block, key): the headline value of each metric in metrics.json.
COLUMNS = report.DISENTANGLEMENT_ROWS


def run_name(row, seed):
  return f"{row}-seed{seed}"


def run(row, seed):
  """Trains and evaluates one (row, seed); returns its row dict."""
  config = config_lib.RunConfig(
      data=config_lib.DataConfig(dataset="shapes",
                                 shapes_samples=_SAMPLES.value),
      model=config_lib.ModelConfig(**dict(_MODEL, **ROWS[row])),
      train=config_lib.TrainConfig(
          model_dir=os.path.join(_OUT_DIR.value, run_name(row, seed)),
          epochs=0, train_steps=_STEPS.value, batch_size=64,
          learning_rate=5e-4, restart=True, progress=False, seed=seed),
      eval=config_lib.EvalConfig(
          eval_iw_samples=_IW.value, eval_max_examples=_EVAL_EXAMPLES.value,
          frechet_samples=0,
          disentanglement_samples=_METRIC_SAMPLES.value),
      export=config_lib.ExportConfig(export=False),
  ).validate()
  began = time.perf_counter()
  result = experiment.train_and_evaluate(config)
  found = dict(result.metrics, wall_seconds=time.perf_counter() - began,
               traversals_png=result.image_paths.get("traversals"),
               row=row, seed=seed)
  with open(os.path.join(config.train.model_dir, "row.json"), "w") as f:
    json.dump(found, f, indent=2, default=str)
  return found


def earlier_runs():
  """Row dicts of every run in `--out_dir`: (row, seed) -> dict."""
  found = {}
  for row in ROWS:
    for name in sorted(os.listdir(_OUT_DIR.value)):
      path = os.path.join(_OUT_DIR.value, name, "row.json")
      if name.startswith(f"{row}-seed") and os.path.exists(path):
        with open(path) as f:
          m = json.load(f)
        found[(m["row"], int(m["seed"]))] = m
  return found


def _value(m, block, key):
  value = m.get("disentanglement", {}).get(block, {}).get(key)
  return None if value is None else float(value)


def _spread(values):
  """`mean +- std (min-max)` of the non-missing values."""
  values = [v for v in values if v is not None]
  if not values:
    return "-"
  std = np.std(values, ddof=1) if len(values) > 1 else 0.0
  return (f"{np.mean(values):.3f} ± {std:.3f} "
          f"({min(values):.2f}–{max(values):.2f})")


def table(runs):
  """The Markdown table of `runs` ((row, seed) -> dict), one line a row."""
  header = ["model", "seeds"] + [c for c, _, _ in COLUMNS] + [
      f"test NLL, k={_IW.value}", "test -ELBO", "train s", "traversals"]
  lines = ["| " + " | ".join(header) + " |",
           "|" + " --- |" * len(header)]
  for row in ROWS:
    found = [m for (r, _), m in sorted(runs.items()) if r == row]
    if not found:
      continue
    cells = [f"`{row}`", str(len(found))]
    cells += [_spread([_value(m, block, key) for m in found])
              for _, block, key in COLUMNS]
    for key in ("test_nll", "test_neg_elbo"):
      values = [m.get(key) for m in found if m.get(key) is not None]
      cells.append(f"{np.mean(values):.2f} ± "
                   f"{np.std(values, ddof=1) if len(values) > 1 else 0:.2f}"
                   if values else "-")
    cells.append(f"{np.mean([m['train_seconds'] for m in found]):.0f}")
    cells.append(f"`{found[0].get('traversals_png')}`")
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  os.makedirs(_OUT_DIR.value, exist_ok=True)
  unknown = sorted(set(_ROWS.value) - set(ROWS))
  if unknown:
    sys.exit(f"disentanglement: error: unknown --rows {unknown}; known: "
             f"{', '.join(ROWS)}")
  for row in _ROWS.value or ROWS:
    for seed in _SEEDS.value:
      print(f"== {row} seed {seed}", flush=True)
      try:
        m = run(row, int(seed))
      except TfvaeError as e:
        sys.exit(f"disentanglement: {row} seed {seed} failed: {e}")
      print(json.dumps({"row": row, "seed": seed, **{
          key: _value(m, block, key) for _, block, key in COLUMNS},
                        "test_nll": m.get("test_nll"),
                        "train_seconds": m.get("train_seconds")}),
            flush=True)
  text = table(earlier_runs())
  with open(os.path.join(_OUT_DIR.value, "disentanglement.md"), "w") as f:
    f.write(text + "\n")
  print(text)


if __name__ == "__main__":
  app.run(main)
