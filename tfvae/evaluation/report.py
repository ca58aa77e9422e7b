"""The run's results: `metrics.json` and the summary table printed at the end."""

import json
import os

METRICS_FILE = "metrics.json"
# Columns whose reconstruction error the summary table lists.
_MAX_COLUMN_ROWS = 12
# (row, metric, key): the headline values of the `disentanglement` block.
DISENTANGLEMENT_ROWS = (
    ("beta-VAE score", "beta_vae", "beta_vae_score"),
    ("FactorVAE score", "factor_vae", "factor_vae_score"),
    ("MIG", "mig", "mig"),
    ("DCI disentanglement", "dci", "dci_disentanglement"),
    ("DCI completeness", "dci", "dci_completeness"),
    ("DCI informativeness", "dci", "dci_informativeness"),
    ("SAP", "sap", "sap"),
)


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

  vectors = metrics.get("test_column_errors") is not None
  rows = [
      ("step", f"{metrics['step']}"),
      ("test -ELBO (nats)", shown("test_neg_elbo", 2)),
      (f"test NLL, k={k} (nats)", shown("test_nll", 2)),
  ]
  if vectors:  # Bits per dimension mean nothing for mixed columns.
    rows.append(("baseline NLL (nats)", shown("trivial_nll", 2)))
  else:
    rows.append(("test bits/dim", shown("test_bits_per_dim", 4)))
  rows += [
      ("test distortion (nats)", shown("test_distortion", 2)),
      ("test KL (nats)", shown("test_rate", 2)),
  ]
  if vectors:
    errors = list(metrics["test_column_errors"].items())
    rows += [(f"test {e['metric']} {name}", f"{e['value']:.4g}")
             for name, e in errors[:_MAX_COLUMN_ROWS]]
    if len(errors) > _MAX_COLUMN_ROWS:
      rows.append(("test column errors",
                   f"{len(errors) - _MAX_COLUMN_ROWS} more in metrics.json"))
  else:
    rows.append(("test reconstruction MSE",
                 shown("test_reconstruction_mse", 5)))
  if metrics.get("sample_frechet_distance") is not None:
    rows.append(("sample Frechet distance",
                 f"{metrics['sample_frechet_distance']:.2f} (real data: "
                 f"{metrics['frechet_reference']:.2f})"))
  factors = metrics.get("disentanglement") or {}
  for label, name, key in DISENTANGLEMENT_ROWS:
    value = (factors.get(name) or {}).get(key)
    if value is not None:
      rows.append((label, f"{value:.3f}"))
  rows.append(
      ("active units",
       f"{metrics['active_units']} / {metrics.get('code_dim', metrics['latent_dim'])}"))
  if metrics.get("traversals"):  # Which dimensions it shows.
    rows.append(("traversals.png", metrics["traversals"]["caption"]))
  rows += [
      ("train examples/s" if vectors else "train images/s",
       f"{metrics['train_img_per_s']:.0f}"
       if metrics.get("train_img_per_s") else "-"),
      ("test examples", f"{metrics['test_examples']}"),
  ] + list(locations)
  width = max(len(label) for label, _ in rows)
  line = "-" * (width + 2 + max(len(value) for _, value in rows))
  body = [f"{label:<{width}}  {value}" for label, value in rows]
  return "\n".join([line] + body + [line])
