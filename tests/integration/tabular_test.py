"""Tables end to end: `train.py --dataset=csv --likelihood=tabular`, export,
TF Serving's graph loader, LiteRT and `tfvae-score` on new rows.

One `train.py` run (module fixture) on a generated table is shared by the
tests: two correlated continuous columns, a constant column, a 0/1 column, a
3-category string column and a label column.
"""

import csv
import json
import os
import re

import numpy as np
import pytest

from tests.evaluation.auroc_reference import brute_force_auroc
from tests.export import export_utils
from tests.integration import cli

GRAPH_LOADER = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "export", "graph_loader_main.py")
COLUMNS = ("height", "weight", "constant", "flag", "colour")
COLOURS = ("blue", "green", "red")  # The sorted vocabulary.
COLOUR_INDEX = COLUMNS.index("colour")
NUM_ROWS = 400
TRAIN_STEPS = 200
IW_SAMPLES = 10
LATENT_DIM = 2
SMALL = ("--hidden_dims=16", f"--latent_dim={LATENT_DIM}", "--batch_size=32",
         "--learning_rate=0.01", f"--eval_iw_samples={IW_SAMPLES}",
         "--eval_batch_size=200", "--steps_per_loop=25")


def _draw(num_rows, seed):
  """Rows of the table as dicts of strings (all columns, label included)."""
  rng = np.random.default_rng(seed)
  u = rng.normal(size=num_rows)
  height = 170 + 10 * u + rng.normal(scale=1.0, size=num_rows)
  weight = 70 + 8 * u + rng.normal(scale=1.0, size=num_rows)
  flag = (u + rng.normal(scale=0.3, size=num_rows) > 0).astype(int)
  colour = np.where(u < -0.5, "red", np.where(u < 0.5, "green", "blue"))
  kind = np.where(rng.random(num_rows) < 0.5, "cat", "dog")
  return [{"height": f"{h:.3f}", "weight": f"{w:.3f}", "constant": "7",
           "flag": str(f), "colour": c, "kind": k}
          for h, w, f, c, k in zip(height, weight, flag, colour, kind)]


def _write_csv(path, rows, fields):
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
  return str(path)


def _one_error_line(result, program):
  assert result.returncode == 1, cli.describe(result)
  assert "Traceback" not in cli.output(result), cli.describe(result)
  lines = cli.error_lines(result)
  assert len(lines) == 1, cli.describe(result)
  assert lines[0].startswith(f"{program}: error: "), lines[0]
  return lines[0]


class TabularRun:
  """The trained, exported run and the files it was given."""

  def __init__(self, root):
    self.root = root
    self.table = _write_csv(os.path.join(root, "table.csv"),
                            _draw(NUM_ROWS, seed=0),
                            COLUMNS[:3] + ("kind",) + COLUMNS[3:])
    self.model_dir = os.path.join(root, "run")
    self.export_dir = os.path.join(root, "saved_models", "tabular")
    self.result = cli.run_train(
        "--dataset=csv", f"--data_dir={self.table}", "--likelihood=tabular",
        "--categorical_columns=colour", "--label_column=kind", *SMALL,
        f"--train_steps={TRAIN_STEPS}", f"--export_dir={self.export_dir}",
        model_dir=self.model_dir)
    cli.assert_succeeded(self.result)
    with open(os.path.join(self.model_dir, "metrics.json")) as f:
      self.metrics = json.load(f)
    self.version_dir = os.path.join(self.export_dir, "1")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  return TabularRun(str(tmp_path_factory.mktemp("tabular")))


@pytest.fixture(scope="module")
def graph_outputs(run, tmp_path_factory):
  """Every signature run by TF Serving's graph loader: (report, outputs)."""
  folder = tmp_path_factory.mktemp("graph_loader")
  rng = np.random.default_rng(3)
  x = np.array([[170.0, 70.0, 7.0, 1.0, 1.0],
                [150.0, 55.0, 7.0, 0.0, 2.0],
                [185.0, 82.0, 7.0, 1.0, 0.0]], np.float32)
  inputs = {
      "reconstruct": {"x": x}, "serving_default": {"x": x},
      "encode": {"x": x},
      "decode": {"z": rng.normal(size=(4, LATENT_DIM)).astype(np.float32)},
      "sample": {"num_samples": np.int32(5), "seed": np.int32(7)},
      "log_likelihood": {"x": x, "num_samples": np.int32(8)},
  }
  for signature, values in inputs.items():
    os.makedirs(folder / "inputs" / signature)
    for key, value in values.items():
      np.save(folder / "inputs" / signature / f"{key}.npy", value)
  manifest = folder / "manifest.json"
  with open(manifest, "w") as f:
    json.dump({"tabular": {"saved_model": run.version_dir,
                           "inputs": str(folder / "inputs"),
                           "outputs": str(folder / "outputs")}}, f)
  process = export_utils.run_python([GRAPH_LOADER, str(manifest)],
                                    cwd=folder, isolated=True)
  assert process.returncode == 0, export_utils.describe(process)
  with open(folder / "result.json") as f:
    result = json.load(f)
  outputs = {}
  for signature in inputs:
    out = folder / "outputs" / signature
    if out.is_dir():
      outputs[signature] = {n[:-4]: np.load(out / n) for n in os.listdir(out)}
  return result, inputs, outputs


# ---- Training and evaluation ------------------------------------------------


def test_trains_and_reports_columns(run):
  metrics = run.metrics
  assert metrics["step"] == TRAIN_STEPS
  assert metrics["dataset"] == "csv" and metrics["likelihood"] == "tabular"
  assert metrics["data_shape"] == [len(COLUMNS)]
  assert metrics["test_examples"] == NUM_ROWS // 5
  assert metrics["eval_iw_samples"] == IW_SAMPLES
  assert metrics["test_bits_per_dim"] is None
  assert np.isfinite(metrics["test_nll"])
  assert metrics["test_nll"] <= metrics["test_neg_elbo"] + 1e-6
  errors = metrics["test_column_errors"]
  assert sorted(errors) == sorted(COLUMNS)
  kinds = {"height": ("continuous", "rmse"), "weight": ("continuous", "rmse"),
           "constant": ("continuous", "rmse"),
           "flag": ("binary", "error_rate"),
           "colour": ("categorical", "error_rate")}
  for name, (kind, metric) in kinds.items():
    assert (errors[name]["kind"], errors[name]["metric"]) == (kind, metric)
    assert errors[name]["value"] >= 0
  # Reconstructions carry information: better than the column's spread or
  # the majority class.
  assert errors["height"]["value"] < 10.0
  assert errors["weight"]["value"] < 8.0
  assert errors["colour"]["value"] < 0.5
  assert errors["flag"]["value"] <= 0.5


def test_nll_beats_the_trivial_baseline(run):
  """The model beats independent per-column marginals (`trivial_nll`)."""
  assert run.metrics["test_nll"] < run.metrics["trivial_nll"], (
      run.metrics["test_nll"], run.metrics["trivial_nll"])


def test_nll_beats_marginals_with_the_model_column_std(run):
  # The independent-marginal baseline, scoring the constant column with the
  # std its Column has (1) instead of trivial_nll's floor of 1e-3: the model
  # has learned more than the marginals.
  floor_bonus = -np.log(1e-3) - np.log(1.0)
  baseline = run.metrics["trivial_nll"] + floor_bonus
  assert run.metrics["test_nll"] < baseline, (run.metrics["test_nll"],
                                              baseline)


def test_pictures(run):
  images = os.path.join(run.model_dir, "images")
  assert os.path.isfile(os.path.join(images, "latent_scatter.png"))
  assert not os.path.exists(os.path.join(images, "reconstructions.png"))


# ---- Export -----------------------------------------------------------------


def test_export_metadata_has_the_columns(run):
  assert os.path.isfile(os.path.join(run.version_dir, "saved_model.pb"))
  assert os.path.isfile(os.path.join(run.version_dir, "model.tflite"))
  with open(os.path.join(run.version_dir, "assets.extra", "tfvae.json")) as f:
    metadata = json.load(f)
  assert metadata["likelihood"] == "tabular"
  assert metadata["data_shape"] == [len(COLUMNS)]
  columns = metadata["columns"]
  assert [c["name"] for c in columns] == list(COLUMNS)
  assert [c["kind"] for c in columns] == [
      "continuous", "continuous", "continuous", "binary", "categorical"]
  assert columns[COLOUR_INDEX]["categories"] == list(COLOURS)
  assert columns[2]["mean"] == pytest.approx(7.0)
  assert columns[2]["std"] == 1.0
  assert columns[0]["mean"] == pytest.approx(170, abs=3)
  assert columns[0]["std"] == pytest.approx(10, rel=0.2)


def test_graph_loader_runs_every_signature(graph_outputs):
  result, inputs, outputs = graph_outputs
  report = result["models"]["tabular"]
  assert sorted(report) == sorted(inputs)
  assert all(entry["error"] is None for entry in report.values()), report
  modules = result["modules"]
  assert not [m for m in modules if m == "tfvae" or m.startswith("tfvae.")]
  assert not [m for m in modules if m.startswith("tensorflow_probability")]
  for name in ("encode", "reconstruct", "log_likelihood"):
    assert report[name]["inputs"]["x"]["shape"] == [-1, len(COLUMNS)], name
  assert sorted(report["decode"]["outputs"]) == [
      "loc", "logits", f"logits_{COLOUR_INDEX}", "mean",
      f"probs_{COLOUR_INDEX}", "scale"]
  assert outputs["reconstruct"]["x"].shape == (3, len(COLUMNS))
  mean = outputs["decode"]["mean"]
  assert mean.shape == (4, len(COLUMNS))
  probs = outputs["decode"][f"probs_{COLOUR_INDEX}"]
  np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
  np.testing.assert_array_equal(mean[:, COLOUR_INDEX], probs.argmax(axis=1))
  log_prob = outputs["log_likelihood"]["log_prob"]
  assert log_prob.shape == (3,) and np.all(np.isfinite(log_prob))
  # A typical row is more likely than an unusual one.
  assert log_prob[0] > log_prob[1]


def test_tflite_signatures_run_with_litert(run, graph_outputs):
  from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top
  _, inputs, outputs = graph_outputs
  interpreter = Interpreter(
      model_path=os.path.join(run.version_dir, "model.tflite"))
  assert set(interpreter.get_signature_list()) == {"sample", "decode",
                                                   "encode"}
  decoded = interpreter.get_signature_runner("decode")(**inputs["decode"])
  assert {"mean", f"probs_{COLOUR_INDEX}"} <= set(decoded)
  for key in ("mean", f"probs_{COLOUR_INDEX}"):
    np.testing.assert_allclose(decoded[key], outputs["decode"][key],
                               rtol=1e-4, atol=1e-4, err_msg=key)
  encoded = interpreter.get_signature_runner("encode")(**inputs["encode"])
  np.testing.assert_allclose(encoded["mean"], outputs["encode"]["mean"],
                             rtol=1e-4, atol=1e-4)
  x = interpreter.get_signature_runner("sample")(
      num_samples=np.int32(50), seed=np.int32(3))["x"]
  assert x.shape == (50, len(COLUMNS)) and np.all(np.isfinite(x))
  assert set(np.unique(x[:, COLOUR_INDEX])) <= {0.0, 1.0, 2.0}
  assert np.all((x[:, 3] >= 0) & (x[:, 3] <= 1))


# ---- Scoring new rows -------------------------------------------------------


def _scoring_rows(seed=5, num_rows=60):
  """New rows, columns shuffled plus extras; every 4th height +10 std."""
  rows = _draw(num_rows, seed)
  for i, row in enumerate(rows):
    row["id"] = f"r{i}"
    row["anomaly"] = "1" if i % 4 == 3 else "0"
    if row["anomaly"] == "1":
      row["height"] = f"{float(row['height']) + 100:.3f}"
  return rows


_SCORE_FIELDS = ("id", "colour", "weight", "anomaly", "flag", "kind",
                 "constant", "height")


def _score(run, data, output, *args):
  return export_utils.run_python(
      ["-m", "tfvae.cli.score", run.export_dir, data, f"--output={output}",
       *args], cwd=run.root)


class Scored:
  """`tfvae-score EXPORT_DIR new.csv --labels=anomaly`: rows, run, output."""

  def __init__(self, run, folder):
    self.rows = _scoring_rows()
    self.data = _write_csv(os.path.join(folder, "new.csv"), self.rows,
                           _SCORE_FIELDS)
    self.output = os.path.join(folder, "scores.csv")
    self.result = _score(run, self.data, self.output, "--labels=anomaly",
                         f"--num_samples={_SCORE_SAMPLES}")
    assert self.result.returncode == 0, export_utils.describe(self.result)
    with open(self.output, newline="") as f:
      self.written = list(csv.reader(f))
    self.scores = [float(r[1]) for r in self.written[1:]]


_SCORE_SAMPLES = 20


@pytest.fixture(scope="module")
def scored(run, tmp_path_factory):
  return Scored(run, str(tmp_path_factory.mktemp("scored")))


def test_score_cli_writes_scores_and_auroc(scored):
  rows, written, scores = scored.rows, scored.written, scored.scores
  assert written[0] == ["id", "neg_log_likelihood", "label"]
  assert [r[0] for r in written[1:]] == [str(i) for i in range(len(rows))]
  labels = [int(r[2]) for r in written[1:]]
  assert labels == [int(r["anomaly"]) for r in rows]
  assert all(np.isfinite(scores))
  stdout = scored.result.stdout
  match = re.search(r"^AUROC (\d\.\d{4}) \((\d+) anomalies of (\d+)\)",
                    stdout, re.M)
  assert match, export_utils.describe(scored.result)
  assert (int(match.group(2)), int(match.group(3))) == (15, 60)
  auroc = float(match.group(1))
  assert auroc == pytest.approx(brute_force_auroc(scores, labels),
                                abs=1e-4)
  assert auroc > 0.9
  # Each anomaly scores above the typical normal row.
  normal = np.median([s for s, l in zip(scores, labels) if not l])
  assert min(s for s, l in zip(scores, labels) if l) > normal


def test_score_cli_model_dir_and_npz_give_the_same_scores(run, scored,
                                                          tmp_path):
  # The same rows as an .npz array x in the model's column order.
  x = np.array([[float(r["height"]), float(r["weight"]),
                 float(r["constant"]), float(r["flag"]),
                 COLOURS.index(r["colour"])] for r in scored.rows],
               np.float32)
  labels = np.array([int(r["anomaly"]) for r in scored.rows])
  data = str(tmp_path / "new.npz")
  np.savez(data, x=x, anomaly=labels)
  output = str(tmp_path / "scores.csv")
  result = export_utils.run_python(
      ["-m", "tfvae.cli.score", run.model_dir, data, f"--output={output}",
       "--labels=anomaly", f"--num_samples={_SCORE_SAMPLES}"], cwd=run.root)
  assert result.returncode == 0, export_utils.describe(result)
  assert run.version_dir in result.stdout
  with open(output, newline="") as f:
    written = list(csv.reader(f))
  assert [r[2] for r in written[1:]] == [str(v) for v in labels]
  np.testing.assert_allclose([float(r[1]) for r in written[1:]],
                             scored.scores, rtol=1e-5, atol=2e-6)


def test_score_cli_unseen_category_is_one_line(run, tmp_path):
  rows = _scoring_rows(num_rows=8)
  rows[5]["colour"] = "purple"
  data = _write_csv(tmp_path / "new.csv", rows, _SCORE_FIELDS)
  output = str(tmp_path / "scores.csv")
  result = _score(run, data, output, "--labels=anomaly", "--num_samples=5")
  line = _one_error_line(result, "score.py")
  # Row 5 is on line 7: the header is line 1.
  assert f"{data} line 7 column 'colour'" in line, line
  assert "'purple'" in line
  assert not os.path.exists(output)
  assert os.listdir(tmp_path) == ["new.csv"]


# ---- Mistakes through train.py ----------------------------------------------


def test_conv_encoder_on_a_table_is_one_line(run, tmp_path):
  model_dir = str(tmp_path / "run")
  result = cli.run_train(
      "--dataset=csv", f"--data_dir={run.table}", "--likelihood=tabular",
      "--categorical_columns=colour", "--label_column=kind", "--noexport",
      *SMALL, "--train_steps=20", "--encoder=conv", model_dir=model_dir)
  line = _one_error_line(result, "train.py")
  assert "--encoder=conv" in line and "vectors" in line, line
  assert not os.path.exists(os.path.join(model_dir, "checkpoints"))


def test_tabular_on_images_is_one_line(tmp_path):
  path = str(tmp_path / "images.npz")
  np.savez(path, x=np.random.default_rng(0).integers(
      0, 256, (40, 8, 8), dtype=np.uint8))
  model_dir = str(tmp_path / "run")
  result = cli.run_train("--dataset=npz", f"--data_dir={path}",
                         "--likelihood=tabular", "--noexport", *SMALL,
                         "--train_steps=20", model_dir=model_dir)
  line = _one_error_line(result, "train.py")
  assert "--likelihood=tabular" in line and "[8, 8, 1]" in line, line
  assert not os.path.exists(os.path.join(model_dir, "checkpoints"))


def test_ragged_csv_is_one_line_naming_the_line(tmp_path):
  rows = _draw(30, seed=1)
  path = _write_csv(tmp_path / "ragged.csv", rows,
                    ("height", "weight", "flag"))
  with open(path) as f:
    lines = f.read().splitlines()
  lines[12] += ",extra"  # File line 13.
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
  model_dir = str(tmp_path / "run")
  result = cli.run_train("--dataset=csv", f"--data_dir={path}",
                         "--likelihood=tabular", "--noexport", *SMALL,
                         "--train_steps=20", model_dir=model_dir)
  line = _one_error_line(result, "train.py")
  assert f"{path} line 13 has 4 values" in line, line
  assert not os.path.exists(model_dir) or not os.listdir(model_dir)
