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

  def shown(key, digits):
    value = metrics.get(key)
    return "- (no likelihood bound)" if value is None else f"{value:.{digits}f}"

  rows = [
      ("step", f"{metrics['step']}"),
      ("test -ELBO (nats)", shown("test_neg_elbo", 2)),
      (f"test NLL, k={k} (nats)", shown("test_nll", 2)),
      ("test bits/dim", shown("test_bits_per_dim", 4)),
      ("test distortion (nats)", shown("test_distortion", 2)),
      ("test KL (nats)", shown("test_rate", 2)),
      ("test reconstruction MSE", shown("test_reconstruction_mse", 5)),
      ("active units",
       f"{metrics['active_units']} / {metrics.get('code_dim', metrics['latent_dim'])}"),
      ("train images/s",
       f"{metrics['train_img_per_s']:.0f}"
       if metrics.get("train_img_per_s") else "-"),
      ("test examples", f"{metrics['test_examples']}"),
  ] + list(locations)
  width = max(len(label) for label, _ in rows)
  line = "-" * (width + 2 + max(len(value) for _, value in rows))
  body = [f"{label:<{width}}  {value}" for label, value in rows]
  return "\n".join([line] + body + [line])
