"""VAE vs GAN-trained models: sample quality and likelihood side by side.

Trains `vae`, `vae_gan` (Larsen et al. 2016) and `aae` (Makhzani et al.
2016) with the same MLP, latent size, data, batch size, learning rate,
seed and step budget on Fashion-MNIST and on `shapes`, through `train.py`'s
own code (`train_and_evaluate`), and tabulates per dataset: the test NLL (k
importance samples; all three models have a Gaussian q(z|x), a N(0, I)
prior and a Bernoulli p(x|z), so the estimate means the same for each), the
-ELBO, the classifier-feature Frechet distance of 10,000 samples to the test
images (one feature classifier per dataset shared by the rows, under
`<out_dir>/<dataset>/feature_classifier`; its floor, train vs test images,
is given as `reference`), training seconds, and the sample grid
(`<out_dir>/<dataset>/<model>/images/samples.png`).

Run: `python benchmarks/vae_vs_gan.py` (about 20 minutes on 2 CPU cores);
`--datasets=shapes --rows=vae,aae` picks runs. The Markdown table goes to
stdout and `<out_dir>/vae_vs_gan.md`, listing every run with a `row.json`.
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
from tfvae.errors import TfvaeError
from tfvae.training import experiment

tf.get_logger().setLevel("ERROR")

_OUT_DIR = flags.DEFINE_string("out_dir", "runs/vae_vs_gan", "Where runs go.")
_ROWS = flags.DEFINE_list("rows", ["vae", "vae_gan", "aae"], "Models.")
_DATASETS = flags.DEFINE_list("datasets", ["fashion_mnist", "shapes"],
                              "Datasets.")
_STEPS = flags.DEFINE_integer("train_steps", 2000, "Steps per run.")
_IW = flags.DEFINE_integer("eval_iw_samples", 100, "k of the test NLL.")
_EVAL_EXAMPLES = flags.DEFINE_integer("eval_max_examples", 5000,
                                      "Test images of the NLL.")

# The same networks for every model of a dataset.
_NETWORKS = {
    "fashion_mnist": dict(hidden_dims=(512, 256), latent_dim=32),
    "shapes": dict(hidden_dims=(512, 512), latent_dim=10),
}
_DATA = {"fashion_mnist": {}, "shapes": dict(shapes_samples=100_000)}


def run(dataset, row):
  """Trains and evaluates one model on one dataset; returns its row dict."""
  out = os.path.join(_OUT_DIR.value, dataset)
  config = config_lib.RunConfig(
      data=config_lib.DataConfig(dataset=dataset, **_DATA[dataset]),
      model=config_lib.ModelConfig(model=row, **_NETWORKS[dataset]),
      train=config_lib.TrainConfig(
          model_dir=os.path.join(out, row), epochs=0,
          train_steps=_STEPS.value, batch_size=128, restart=True,
          progress=False, seed=0),
      eval=config_lib.EvalConfig(
          eval_iw_samples=_IW.value, eval_max_examples=_EVAL_EXAMPLES.value,
          disentanglement_metrics=(),
          feature_classifier_dir=os.path.join(out, "feature_classifier")),
      export=config_lib.ExportConfig(export=False),
  ).validate()
  began = time.perf_counter()
  result = experiment.train_and_evaluate(config)
  found = dict(result.metrics, wall_seconds=time.perf_counter() - began,
               samples_png=result.image_paths.get("samples"), row=row,
               dataset=dataset)
  with open(os.path.join(config.train.model_dir, "row.json"), "w") as f:
    json.dump(found, f, indent=2, default=str)
  return found


def earlier_runs():
  """(dataset, model) -> row dict of every run with a `row.json`."""
  found = {}
  for dataset in _NETWORKS:
    for row in ("vae", "vae_gan", "aae"):
      path = os.path.join(_OUT_DIR.value, dataset, row, "row.json")
      if os.path.exists(path):
        with open(path) as f:
          found[(dataset, row)] = json.load(f)
  return found


def _number(value, digits=2):
  return "-" if value is None else f"{value:.{digits}f}"


def table(runs):
  """The Markdown table of `runs`."""
  lines = [f"| data | model | test NLL, k={_IW.value} (nats) | test -ELBO | "
           "Frechet distance (reference) | train s | samples |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
  for (dataset, row), m in runs.items():
    lines.append(
        f"| {dataset} | `{row}` | {_number(m.get('test_nll'))} | "
        f"{_number(m.get('test_neg_elbo'))} | "
        f"{_number(m.get('sample_frechet_distance'))} "
        f"({_number(m.get('frechet_reference'))}) | "
        f"{_number(m.get('train_seconds'), 0)} | `{m.get('samples_png')}` |")
  return "\n".join(lines)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  for dataset in _DATASETS.value:
    if dataset not in _NETWORKS:
      sys.exit(f"vae_vs_gan: error: unknown --datasets {dataset}; known: "
               f"{', '.join(_NETWORKS)}")
    for row in _ROWS.value:
      print(f"== {dataset} {row}", flush=True)
      try:
        m = run(dataset, row)
      except TfvaeError as e:
        sys.exit(f"vae_vs_gan: {dataset} {row} failed: {e}")
      print(json.dumps({key: m.get(key) for key in (
          "test_nll", "test_neg_elbo", "sample_frechet_distance",
          "frechet_reference", "train_seconds")}), flush=True)
  text = table(earlier_runs())
  os.makedirs(_OUT_DIR.value, exist_ok=True)
  with open(os.path.join(_OUT_DIR.value, "vae_vs_gan.md"), "w") as f:
    f.write(text + "\n")
  print(text)


if __name__ == "__main__":
  app.run(main)
