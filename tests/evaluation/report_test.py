"""Tests of `tfvae.evaluation.report`."""

import json
import os

from tfvae.evaluation import report

METRICS = {
    "step": 1234, "eval_iw_samples": 100, "test_neg_elbo": 98.7654,
    "test_nll": 94.3219, "test_bits_per_dim": 0.17351234,
    "test_distortion": 70.111, "test_rate": 28.6544,
    "test_reconstruction_mse": 0.0123456, "active_units": 7,
    "latent_dim": 20, "train_img_per_s": 5321.6, "test_examples": 10000}


def test_summary_table_contains_the_numbers():
  table = report.summary_table(METRICS, [("metrics", "/runs/x/metrics.json")])
  lines = table.splitlines()
  assert lines[0] == lines[-1] and set(lines[0]) == {"-"}
  rows = {line.split("  ")[0].strip(): line.split("  ")[-1].strip()
          for line in lines[1:-1]}
  assert rows["step"] == "1234"
  assert rows["test -ELBO (nats)"] == "98.77"
  assert rows["test NLL, k=100 (nats)"] == "94.32"
  assert rows["test bits/dim"] == "0.1735"
  assert rows["test distortion (nats)"] == "70.11"
  assert rows["test KL (nats)"] == "28.65"
  assert rows["test reconstruction MSE"] == "0.01235"
  assert rows["active units"] == "7 / 20"
  assert rows["train images/s"] == "5322"
  assert rows["test examples"] == "10000"
  assert rows["metrics"] == "/runs/x/metrics.json"
  # Values line up in one column.
  assert len({line.index(value) for line, value in zip(
      lines[1:-1], rows.values())}) == 1


def test_summary_table_shows_the_frechet_distance_with_its_floor():
  assert "Frechet" not in report.summary_table(METRICS, [])
  metrics = dict(METRICS, sample_frechet_distance=30.6412,
                 frechet_reference=0.0671)
  row = [line for line in report.summary_table(metrics, []).splitlines()
         if line.startswith("sample Frechet distance")]
  assert row and row[0].endswith("30.64 (real data: 0.07)")


def test_summary_table_shows_the_disentanglement_headlines():
  assert "MIG" not in report.summary_table(METRICS, [])
  metrics = dict(METRICS, disentanglement={
      "beta_vae": {"beta_vae_score": 0.8125}, "mig": {"mig": 0.21449},
      "dci": {"dci_disentanglement": 0.3, "dci_completeness": 0.25,
              "dci_informativeness": 0.75},
      "sap": {"skipped": "needs a code of at least 2 dimensions"},
      "samples": {"mig": {"train": 10000}}, "seconds": 12.0})
  lines = report.summary_table(metrics, []).splitlines()
  rows = {line.split("  ")[0].strip(): line.split("  ")[-1].strip()
          for line in lines[1:-1]}
  assert rows["beta-VAE score"] == "0.812"
  assert rows["MIG"] == "0.214"
  assert (rows["DCI disentanglement"], rows["DCI completeness"],
          rows["DCI informativeness"]) == ("0.300", "0.250", "0.750")
  assert "SAP" not in rows and "FactorVAE score" not in rows
  assert "MIG" not in report.summary_table(
      dict(METRICS, disentanglement={"error": "NaN"}), [])


def test_summary_table_without_throughput():
  metrics = dict(METRICS, train_img_per_s=None)
  table = report.summary_table(metrics, [])
  row = [line for line in table.splitlines()
         if line.startswith("train images/s")][0]
  assert row.split()[-1] == "-"


def test_write_metrics_round_trips(tmp_path):
  path = report.write_metrics(METRICS, str(tmp_path))
  assert path == os.path.join(str(tmp_path), report.METRICS_FILE)
  with open(path) as f:
    assert json.load(f) == METRICS
  assert os.listdir(tmp_path) == [report.METRICS_FILE]


def test_summary_table_says_what_the_traversals_show():
  assert "traversals" not in report.summary_table(METRICS, [])
  caption = "7 active dimensions shown, most used first; 13 inactive left out"
  metrics = dict(METRICS, traversals={"dims": list(range(7)), "active": 7,
                                      "inactive": 13, "left_out": 13,
                                      "code_dim": 20, "caption": caption})
  rows = [line for line in report.summary_table(metrics, []).splitlines()
          if line.startswith("traversals.png")]
  assert rows and rows[0].endswith(caption)
