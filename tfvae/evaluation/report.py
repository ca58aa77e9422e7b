"""The run's results: `metrics.json` and the summary table printed at the end."""

import json
import os

METRICS_FILE = "metrics.json"


def write_metrics(metrics, model_dir):
  """Writes `metrics` as `model_dir/metrics.json`, atomically.

  Returns:
    The file's path.
  """
  path = os.path.join(model_dir, METRICS_FILE)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(metrics, f, indent=2, sort_keys=True)
  os.replace(tmp, path)
  return path


def summary_table(metrics, locations):
  """A plain-text table of the headline numbers and output locations.

  Args:
    metrics: the dict written to `metrics.json`.
    locations: list of `(label, path)` pairs.

  Returns:
    The table as one string.
  """
  k = metrics.get("eval_iw_samples")
  rows = [
      ("step", f"{metrics['step']}"),
      ("test -ELBO (nats)", f"{metrics['test_neg_elbo']:.2f}"),
      (f"test NLL, k={k} (nats)", f"{metrics['test_nll']:.2f}"),
      ("test bits/dim", f"{metrics['test_bits_per_dim']:.4f}"),
      ("test distortion (nats)", f"{metrics['test_distortion']:.2f}"),
      ("test KL (nats)", f"{metrics['test_rate']:.2f}"),
      ("test reconstruction MSE", f"{metrics['test_reconstruction_mse']:.5f}"),
      ("active units",
       f"{metrics['active_units']} / {metrics['latent_dim']}"),
      ("train images/s",
       f"{metrics['train_img_per_s']:.0f}"
       if metrics.get("train_img_per_s") else "-"),
      ("test examples", f"{metrics['test_examples']}"),
  ] + list(locations)
  width = max(len(label) for label, _ in rows)
  line = "-" * (width + 2 + max(len(value) for _, value in rows))
  body = [f"{label:<{width}}  {value}" for label, value in rows]
  return "\n".join([line] + body + [line])
