"""Trains every model variant on Fashion-MNIST with one budget; prints a table.

Each row trains through `train.py`'s own code (`train_and_evaluate`) with
the same data, batch size, learning rate, seed and network sizes (MLP
512-256 with 32 latent dimensions; conv for `vq_vae`), for `--epochs`
unless the row sets its own (a slower model gets fewer epochs so its
training wall time stays within the `vae` row's), evaluates on the test
split (binarized once, except for rows on 8-bit data), and records: test NLL
with k importance samples (exact for small categorical codes) and bits/dim,
or for models without a likelihood bound the reconstruction error; the
-ELBO; active units (per layer for `hvae`, code usage for categorical
codes); the classifier-feature Frechet distance of 10,000 samples to the
test images (one feature classifier shared by all rows, under
`<out_dir>/feature_classifier`); training seconds and images/s; and a grid of
samples (`<out_dir>/<row>/images/samples.png`). The Markdown table goes to
stdout and `<out_dir>/zoo.md`; it lists every row with a `zoo_row.json`
under `<out_dir>`, so re-running one row (`--rows=iwae`) keeps the others.

Rows: every registered variant with its defaults, plus options on the plain
VAE (`vae+mixture`, `vae+vamp`, `vae+iaf`, `vae+gmm`, `vae+logistic`), the
gmm sampler on beta_vae and the single fitted Gaussian on `ae`.

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
    # Two layers with a KL warm-up, 4 epochs: its training time stays
    # within the 5-epoch vae row's (hvae is ~10% slower per step).
    "hvae": dict(latent_layers=2, latent_dims=(32, 16), epochs=4,
                 train=dict(kl_schedule="linear", kl_warmup_steps=800)),
    "categorical_vae": dict(categorical_latents=20, categories=10,
                            temperature_anneal_rate=3e-4),
}
# Rows beside each variant's defaults: ModelConfig keyword arguments, plus
# optional `epochs` (the row's own budget), `data` and `train` (DataConfig
# and TrainConfig keyword arguments).
_EXTRA_ROWS = {
    "vae+mixture": dict(model="vae", prior="mixture", **_MLP),
    "vae+vamp": dict(model="vae", prior="vamp", **_MLP),
    "vae+iaf": dict(model="vae", posterior_flow="iaf", **_MLP),
    # hvae's KL warm-up on the one-layer model: the control for hvae's row.
    "vae+warmup": dict(model="vae", train=dict(
        kl_schedule="linear", kl_warmup_steps=1000), **_MLP),
    "vae+gmm": dict(model="vae", sampler="gmm", **_MLP),
    "beta_vae+gmm": dict(model="beta_vae", beta=4.0, sampler="gmm", **_MLP),
    "ae+1_gaussian": dict(model="ae", sampler_components=1, **_MLP),
    "vae+logistic": dict(model="vae", likelihood="discretized_logistic",
                         data=dict(binarize=False), **_MLP),
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
  """Row name -> row settings (those `--rows` picks)."""
  table = _all_rows()
  if _ROWS.value:
    unknown = sorted(set(_ROWS.value) - set(table))
    if unknown:
      sys.exit(f"zoo: error: unknown --rows {unknown}; known: "
               f"{', '.join(table)}")
    table = {name: table[name] for name in _ROWS.value}
  return table


def run_row(name, settings):
  """Trains and evaluates one row; returns its metrics dict."""
  settings = dict(settings)
  epochs = settings.pop("epochs", _EPOCHS.value)
  data = settings.pop("data", {})
  train = settings.pop("train", {})
  config = config_lib.RunConfig(
      data=config_lib.DataConfig(dataset=_DATASET.value, **data),
      model=config_lib.ModelConfig(**settings),
      train=config_lib.TrainConfig(
          model_dir=os.path.join(_OUT_DIR.value, name), epochs=epochs,
          restart=True, progress=False, seed=0, **train),
      eval=config_lib.EvalConfig(
          eval_iw_samples=_IW.value, feature_classifier_dir=os.path.join(
              _OUT_DIR.value, "feature_classifier")),
      export=config_lib.ExportConfig(export=False),
  ).validate()
  began = time.perf_counter()
  result = experiment.train_and_evaluate(config)
  metrics = dict(result.metrics, wall_seconds=time.perf_counter() - began,
                 samples_png=result.image_paths.get("samples"),
                 epochs=epochs, binarized=config.data.binarize and (
                     config.model.likelihood == "bernoulli"))
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


def _number(value, digits=2):
  return "-" if value is None else f"{value:.{digits}f}"


def _usage(m):
  """Active units of the code, or a categorical code's usage."""
  usage = m.get("code_usage")
  if usage is not None:
    return (f"{usage['used_variables']}/{usage['variables']} used, "
            f"perplexity {usage['mean_perplexity']:.1f}/{usage['categories']}")
  layers = m.get("active_units_per_layer")
  if layers and len(layers) > 1:
    return " + ".join(str(v) for v in layers) + f" of {m['code_dim']}"
  return f"{m['active_units']}/{m['code_dim']}"


def table(results):
  """The Markdown table of `results` (row name -> metrics)."""
  k = _IW.value
  lines = [
      f"| model | test NLL, k={k} (nats) | bits/dim | test -ELBO | "
      "reconstruction MSE | active units | Frechet distance | epochs | "
      "train s | train images/s | samples |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
  for name, m in results.items():
    if "error" in m:
      lines.append(f"| {name} | failed: {m['error']} |" + " |" * 10)
      continue
    data = "" if m.get("binarized", True) else " (8-bit data)"
    lines.append(
        f"| {name}{data} | {_number(m['test_nll'])} | "
        f"{_number(m['test_bits_per_dim'], 3)} | "
        f"{_number(m['test_neg_elbo'])} | "
        f"{m['test_reconstruction_mse']:.4f} | {_usage(m)} | "
        f"{_number(m.get('sample_frechet_distance'))} | "
        f"{m.get('epochs', _EPOCHS.value)} | "
        f"{_number(m.get('train_seconds'), 0)} | "
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
