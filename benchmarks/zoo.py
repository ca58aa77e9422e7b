"""Trains every model variant on Fashion-MNIST with one budget; prints a table.

Each row trains through `train.py`'s own code (`train_and_evaluate`) with
the same data, epochs, batch size, learning rate, seed and network sizes
(MLP 512-256 with 32 latent dimensions; conv for `vq_vae`), evaluates on the
binarized test split, and records: test NLL with k importance samples (or,
for models without a likelihood bound, the reconstruction error), the
-ELBO, active units, training images/s, and a grid of samples
(`<out_dir>/<row>/images/samples.png`). The Markdown table goes to stdout
and `<out_dir>/zoo.md`; it lists every row with a `metrics.json` under
`<out_dir>`, so re-running one row (`--rows=iwae`) keeps the others.

Rows: every registered variant with its defaults, plus the prior and flow
options on the plain VAE (`vae+mixture`, `vae+vamp`, `vae+iaf`).

Run: `python benchmarks/zoo.py` (about 2 minutes a row on 2 CPU cores with
the defaults: 5 epochs, k=1000); `--rows=vae,iwae` picks rows.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import tensorflow as tf

from tfvae import config as config_lib
from tfvae import models
from tfvae.errors import TfvaeError
from tfvae.training import experiment

tf.get_logger().setLevel("ERROR")

_OUT_DIR = flags.DEFINE_string("out_dir", "runs/zoo", "Where runs go.")
_EPOCHS = flags.DEFINE_integer("epochs", 5, "Epochs per row.")
_IW = flags.DEFINE_integer("eval_iw_samples", 1000, "k of the test NLL.")
_ROWS = flags.DEFINE_list("rows", [], "Rows to run (default: all).")
_DATASET = flags.DEFINE_string("dataset", "fashion_mnist", "Dataset.")

_MLP = dict(hidden_dims=(512, 256), latent_dim=32)
# Variant-specific settings; everything else is the ModelConfig default.
_VARIANTS = {
    "beta_vae": dict(beta=4.0),
    "vq_vae": dict(encoder="conv", decoder="conv", hidden_dims=()),
}
_EXTRA_ROWS = {
    "vae+mixture": dict(model="vae", prior="mixture", **_MLP),
    "vae+vamp": dict(model="vae", prior="vamp", **_MLP),
    "vae+iaf": dict(model="vae", posterior_flow="iaf", **_MLP),
}


def _all_rows():
  """Every row: each variant with its defaults, then the option rows."""
  table = {}
  for name in models.names():
    table[name] = dict(_MLP, model=name)
    table[name].update(_VARIANTS.get(name, {}))
  for name, kwargs in _EXTRA_ROWS.items():
    table[name] = kwargs
  return table


def rows():
  """Row name -> ModelConfig keyword arguments (those `--rows` picks)."""
  table = _all_rows()
  if _ROWS.value:
    unknown = sorted(set(_ROWS.value) - set(table))
    if unknown:
      sys.exit(f"zoo: error: unknown --rows {unknown}; known: "
               f"{', '.join(table)}")
    table = {name: table[name] for name in _ROWS.value}
  return table


def run_row(name, model_kwargs):
  """Trains and evaluates one row; returns its metrics dict."""
  config = config_lib.RunConfig(
      data=config_lib.DataConfig(dataset=_DATASET.value),
      model=config_lib.ModelConfig(**model_kwargs),
      train=config_lib.TrainConfig(
          model_dir=os.path.join(_OUT_DIR.value, name), epochs=_EPOCHS.value,
          restart=True, progress=False, seed=0),
      eval=config_lib.EvalConfig(eval_iw_samples=_IW.value),
      export=config_lib.ExportConfig(export=False),
  ).validate()
  began = time.perf_counter()
  result = experiment.train_and_evaluate(config)
  metrics = dict(result.metrics, wall_seconds=time.perf_counter() - began,
                 samples_png=result.image_paths.get("samples"))
  with open(os.path.join(config.train.model_dir, "zoo_row.json"), "w") as f:
    json.dump(metrics, f, indent=2)
  return metrics


def earlier_rows(names):
  """Metrics of rows run before into `--out_dir` (row name -> metrics)."""
  found = {}
  for name in names:
    path = os.path.join(_OUT_DIR.value, name, "zoo_row.json")
    if os.path.exists(path):
      with open(path) as f:
        found[name] = json.load(f)
  return found


def table(results):
  """The Markdown table of `results` (row name -> metrics)."""
  k = _IW.value
  lines = [
      f"| model | test NLL, k={k} (nats) | test -ELBO | reconstruction "
      "MSE | active units | train images/s | samples |",
      "| --- | --- | --- | --- | --- | --- | --- |"]
  for name, m in results.items():
    if "error" in m:
      lines.append(f"| {name} | failed: {m['error']} | | | | | |")
      continue
    nll = "-" if m["test_nll"] is None else f"{m['test_nll']:.2f}"
    elbo = "-" if m["test_neg_elbo"] is None else f"{m['test_neg_elbo']:.2f}"
    lines.append(
        f"| {name} | {nll} | {elbo} | {m['test_reconstruction_mse']:.4f} | "
        f"{m['active_units']}/{m['code_dim']} | "
        f"{m['train_img_per_s'] or 0:.0f} | `{m['samples_png']}` |")
  return "\n".join(lines)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  os.makedirs(_OUT_DIR.value, exist_ok=True)
  every_row = list(_all_rows())
  results = earlier_rows(every_row)
  for name, kwargs in rows().items():
    print(f"== {name}", flush=True)
    try:
      results[name] = run_row(name, kwargs)
    except TfvaeError as e:
      results[name] = {"error": str(e)}
    print(json.dumps({key: value for key, value in results[name].items()
                      if key != "kl_per_dim"}, default=str), flush=True)
  results = {name: results[name] for name in every_row if name in results}
  text = table(results)
  with open(os.path.join(_OUT_DIR.value, "zoo.md"), "w") as f:
    f.write(text + "\n")
  print(f"\n{_DATASET.value}, {_EPOCHS.value} epochs, batch 128, Adam 1e-3, "
        "seed 0\n" + text)


if __name__ == "__main__":
  app.run(main)
