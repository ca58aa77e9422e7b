"""Tests of `tfvae.evaluation.disentanglement`.

Most tests use a fake ground truth whose observation *is* its factor vector
(`render` returns the factor indices as a `[n, F, 1, 1]` uint8 "image"), so
a representation is any function of the factors: the factors themselves
(every metric near its maximum), rotations of them, a code missing one
factor, and pure noise (near each metric's chance level). Closed forms check
the pieces exactly where they exist: entropies and mutual information
against a direct computation, MIG and SAP on full factor grids (where
independent factors have exactly zero sample dependence), DCI's
disentanglement and completeness against scipy's entropy.
"""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from tfvae.config import DISENTANGLEMENT_METRICS
from tfvae.errors import ConfigError
from tfvae.evaluation import disentanglement as dis


class FakeGroundTruth:
  """Independent uniform factors; the observation is the factor vector."""

  def __init__(self, sizes):
    self.factor_sizes = tuple(sizes)
    self.factor_names = tuple(f"f{k}" for k in range(len(sizes)))
    self.observation_shape = (len(sizes), 1, 1)

  def sample_factors(self, num, random_state):
    return np.stack([random_state.randint(size, size=num)
                     for size in self.factor_sizes], axis=1).astype(np.int64)

  def render(self, factors):
    factors = np.asarray(factors)
    assert factors.ndim == 2 and factors.shape[1] == len(self.factor_sizes)
    return factors.astype(np.uint8).reshape(len(factors), -1, 1, 1)


SIZES = (3, 4, 5, 8)
GT = FakeGroundTruth(SIZES)
# Scales the factor indices to unit standard deviation (uniform on 0..K-1).
STD = np.sqrt((np.array(SIZES, np.float64)**2 - 1) / 12)
CHANCE = 1 / len(SIZES)
# The 4x4 Hadamard matrix / 2: a rotation that puts every (unit-scaled)
# factor into every dimension with equal weight.
HADAMARD = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1],
                     [1, -1, -1, 1]], np.float64) / 2
NUM_SAMPLES = 5000


def factor_values(images):
  """The fake observation's factors, `[n, F]` float64."""
  return np.asarray(images, np.float64).reshape(len(images), -1)


def copies(images):
  return factor_values(images) / STD


def hadamard(images):
  return copies(images) @ HADAMARD


def random_rotation(images):
  rotation = np.linalg.qr(np.random.RandomState(0).randn(4, 4))[0]
  return copies(images) @ rotation


def missing_first(images):
  """Factors 1..3 and an independent noise dimension in place of factor 0."""
  noise = np.random.RandomState(len(images)).randn(len(images), 1)
  return np.concatenate([copies(images)[:, 1:], noise], axis=1)


def noise(images):
  return np.random.RandomState(len(images) + 1).randn(len(images), 4)


def grid(*sizes, repeats=1):
  """Every point of the factor grid, `repeats` times, `[n, F]` int64."""
  points = np.stack(np.meshgrid(*[np.arange(s) for s in sizes],
                                indexing="ij"), -1).reshape(-1, len(sizes))
  return np.tile(points, (repeats, 1)).astype(np.int64)


@pytest.fixture(scope="module")
def blocks():
  """The block of each constructed representation (one evaluation each)."""
  return {name: dis.evaluate(represent, GT, num_samples=NUM_SAMPLES, seed=0)
          for name, represent in (("copies", copies), ("hadamard", hadamard),
                                  ("missing", missing_first),
                                  ("noise", noise))}


# ---- Information, closed forms ---------------------------------------------


def _direct_entropy(a):
  p = np.array([np.mean(a == v) for v in np.unique(a)])
  return -sum(p * np.log(p))


def _direct_mutual_information(a, b):
  total = 0.0
  for u in np.unique(a):
    for v in np.unique(b):
      joint = np.mean((a == u) & (b == v))
      if joint > 0:
        total += joint * math.log(joint / (np.mean(a == u) * np.mean(b == v)))
  return total


def test_entropy_and_mutual_information_match_a_direct_computation():
  from sklearn import metrics  # pylint: disable=g-import-not-at-top

  rng = np.random.RandomState(0)
  a = rng.randint(5, size=400)
  b = (a + rng.randint(3, size=400)) % 7 + 10  # Depends on a; other labels.
  assert dis.discrete_entropy(a) == pytest.approx(_direct_entropy(a),
                                                  abs=1e-12)
  value = dis.discrete_mutual_information(a, b)
  assert value == pytest.approx(_direct_mutual_information(a, b), abs=1e-12)
  assert value == pytest.approx(metrics.mutual_info_score(a, b), abs=1e-12)
  assert 0.1 < value < dis.discrete_entropy(a)
  assert dis.discrete_mutual_information(a, a) == pytest.approx(
      dis.discrete_entropy(a), abs=1e-12)
  assert dis.discrete_entropy(np.arange(8)) == pytest.approx(math.log(8))


def test_histogram_discretize_follows_np_histogram():
  values = np.arange(20, dtype=np.float64)
  codes = np.stack([values, np.full(20, 3.0), values**2], axis=1)
  binned = dis.histogram_discretize(codes, 20)
  assert binned[:, 0].tolist() == list(range(1, 21))  # One value per bin.
  assert len(np.unique(binned[:, 1])) == 1  # A constant lands in one bin.
  edges = np.histogram(codes[:, 2], 20)[1]
  assert binned[:, 2].tolist() == np.digitize(codes[:, 2],
                                              edges[:-1]).tolist()
  assert binned.min() >= 1 and binned.max() <= 20


# ---- MIG -----------------------------------------------------------------


def test_mig_is_exactly_one_for_copied_factors_on_the_full_grid():
  # At most 20 values each: the 20 bins keep every value apart, and on the
  # full grid the other factors carry exactly no information.
  factors = grid(20, 7, 2)
  result = dis.mig(factors.astype(np.float64), factors)
  assert result["mig"] == pytest.approx(1.0, abs=1e-12)
  assert all(v == pytest.approx(1.0, abs=1e-12)
             for v in result["mig_per_factor"].values())
  information = np.array(result["mutual_information"])
  assert np.allclose(information, np.diag(np.diag(information)), atol=1e-12)
  assert np.diag(information) == pytest.approx(
      [math.log(20), math.log(7), math.log(2)], abs=1e-12)


def test_mig_of_a_factor_with_more_values_than_bins():
  # 32 values in 20 equal bins: 12 bins hold two values, 8 hold one, so the
  # binned copy keeps H = 12/16 log 16 + 8/32 log 32 = 4.25 log 2 of the
  # factor's 5 log 2.
  factors = grid(32, 5)
  result = dis.mig(factors.astype(np.float64), factors)
  assert result["mig_per_factor"]["factor_0"] == pytest.approx(0.85,
                                                               abs=1e-12)
  assert result["mig_per_factor"]["factor_1"] == pytest.approx(1.0,
                                                               abs=1e-12)
  assert result["mig"] == pytest.approx(0.925, abs=1e-12)


def test_mig_gives_nothing_to_a_factor_copied_twice():
  factors = grid(6, 4)
  codes = factors[:, [0, 0, 1]].astype(np.float64)
  result = dis.mig(codes, factors, factor_names=("a", "b"))
  assert result["mig_per_factor"] == pytest.approx({"a": 0.0, "b": 1.0},
                                                   abs=1e-12)
  assert result["mig"] == pytest.approx(0.5, abs=1e-12)


def test_mig_rejects_a_constant_factor_and_a_one_dimensional_code():
  factors = grid(4, 1)
  with pytest.raises(ValueError, match="single value"):
    dis.mig(np.random.RandomState(0).randn(4, 2), factors)
  with pytest.raises(ValueError, match="at least 2"):
    dis.mig(np.zeros((12, 1)), grid(4, 3))


# ---- DCI -----------------------------------------------------------------


def _scipy_dci(importance):
  """disentanglement_lib's formulas, with scipy's entropy."""
  from scipy import stats  # pylint: disable=g-import-not-at-top

  per_code = 1 - stats.entropy(importance.T + 1e-11, base=importance.shape[1])
  per_factor = 1 - stats.entropy(importance + 1e-11, base=importance.shape[0])
  total = importance.sum()
  return ((per_code * importance.sum(1) / total).sum(),
          (per_factor * importance.sum(0) / total).sum())


def test_dci_from_importance_closed_forms():
  diagonal = dis.dci_from_importance(np.eye(3))
  assert diagonal["dci_disentanglement"] == pytest.approx(1.0, abs=1e-8)
  assert diagonal["dci_completeness"] == pytest.approx(1.0, abs=1e-8)
  uniform = dis.dci_from_importance(np.ones((4, 3)))
  assert uniform["dci_disentanglement"] == pytest.approx(0.0, abs=1e-8)
  assert uniform["dci_completeness"] == pytest.approx(0.0, abs=1e-8)
  # One dimension carries every factor: complete, not disentangled.
  one = dis.dci_from_importance(np.array([[1.0, 1.0], [0.0, 0.0],
                                          [0.0, 0.0]]))
  assert one["dci_disentanglement"] == pytest.approx(0.0, abs=1e-8)
  assert one["dci_completeness"] == pytest.approx(1.0, abs=1e-8)
  importance = np.random.RandomState(0).rand(5, 3)**3
  result = dis.dci_from_importance(importance)
  assert (result["dci_disentanglement"], result["dci_completeness"]) == (
      pytest.approx(_scipy_dci(importance), abs=1e-12))


def test_dci_trees_find_the_copied_factors():
  rng = np.random.RandomState(0)
  train, test = GT.sample_factors(600, rng), GT.sample_factors(300, rng)
  codes = np.concatenate([train, rng.randn(600, 2)], axis=1)
  test_codes = np.concatenate([test, rng.randn(300, 2)], axis=1)
  result = dis.dci(codes, train, test_codes, test, factor_names=GT.factor_names)
  importance = np.array(result["importance"])
  assert importance.shape == (6, 4)
  # Each factor's trees split on its own copy alone.
  assert np.allclose(importance[:4], np.eye(4), atol=1e-9)
  assert result["dci_informativeness"] == 1.0
  assert result["informativeness_per_factor"] == {f"f{k}": 1.0
                                                  for k in range(4)}
  assert result["dci_disentanglement"] > 0.999
  assert result["dci_completeness"] > 0.999


# ---- SAP -----------------------------------------------------------------


def test_sap_of_binary_factors_on_a_grid_is_exactly_one_half():
  factors = grid(2, 2, repeats=50)
  result = dis.sap(factors.astype(np.float64), factors, factors.astype(
      np.float64), factors)
  # Each dimension classifies its own factor perfectly and the other at
  # exactly one half (every value of it meets both values of the factor).
  assert np.allclose(result["score_matrix"], [[1.0, 0.5], [0.5, 1.0]],
                     rtol=0, atol=1e-12)
  assert result["sap"] == pytest.approx(0.5, abs=1e-12)
  twice = dis.sap(factors[:, [0, 0, 1]].astype(np.float64), factors,
                  factors[:, [0, 0, 1]].astype(np.float64), factors)
  assert twice["sap_per_factor"] == pytest.approx(
      {"factor_0": 0.0, "factor_1": 0.5}, abs=1e-12)


def test_sap_continuous_factors_score_the_squared_correlation():
  rng = np.random.RandomState(0)
  factors = rng.randint(10, size=(500, 2))
  codes = np.stack([factors[:, 0] + rng.randn(500), rng.randn(500)], axis=1)
  result = dis.sap(codes, factors, codes, factors, continuous_factors=True)
  expected = np.corrcoef(codes[:, 0], factors[:, 0])[0, 1]**2
  assert result["score_matrix"][0][0] == pytest.approx(expected, rel=1e-9)


# ---- Constructed representations ---------------------------------------


def test_copied_factors_score_near_the_maximum(blocks):
  block = blocks["copies"]
  assert block["beta_vae"]["beta_vae_score"] == 1.0
  assert block["factor_vae"]["factor_vae_score"] == 1.0
  assert block["factor_vae"]["vote_classifier"] == {
      str(k): f"f{k}" for k in range(4)}
  assert block["mig"]["mig"] > 0.99  # 1 less the sample's chance dependence.
  assert block["dci"]["dci_disentanglement"] > 0.999
  assert block["dci"]["dci_completeness"] > 0.999
  assert block["dci"]["dci_informativeness"] == 1.0
  # The 1-D linear SVMs separate few of a factor's values (3 values: most,
  # 8 values: a quarter), so SAP stays well below 1 even here.
  per_factor = block["sap"]["sap_per_factor"]
  assert per_factor["f0"] > 0.6 and min(per_factor.values()) > 0.2
  assert block["sap"]["sap"] > 0.4


def test_an_equal_mixing_rotation_leaves_only_the_information(blocks):
  # Every dimension holds every (unit-scaled) factor with weight 1/2: fixing
  # any one factor changes every dimension alike, so the scores that look
  # for the dimension a factor lives in fall to chance.
  mixed = blocks["hadamard"]
  assert mixed["mig"]["mig"] < 0.01
  assert mixed["sap"]["sap"] < 0.02
  assert mixed["dci"]["dci_disentanglement"] < 0.02
  assert mixed["dci"]["dci_completeness"] < 0.02
  assert mixed["factor_vae"]["factor_vae_score"] == pytest.approx(CHANCE,
                                                                  abs=0.1)
  assert mixed["beta_vae"]["beta_vae_score"] == pytest.approx(CHANCE,
                                                              abs=0.1)
  # The information is all there (a rotation is invertible).
  assert mixed["dci"]["dci_informativeness"] > 0.7


def test_a_random_rotation_lowers_mig_sap_dci_and_factor_vae(blocks):
  block = dis.evaluate(random_rotation, GT,
                       ("factor_vae", "mig", "dci", "sap"), num_samples=2000)
  copied = blocks["copies"]
  assert block["mig"]["mig"] < 0.3
  assert block["sap"]["sap"] < 0.5 * copied["sap"]["sap"]
  assert block["dci"]["dci_disentanglement"] < 0.5
  assert block["dci"]["dci_completeness"] < 0.5
  assert block["dci"]["dci_informativeness"] > 0.7
  assert block["factor_vae"]["factor_vae_score"] < 0.9


def test_a_missing_factor_loses_its_scores(blocks):
  copied, missing = blocks["copies"], blocks["missing"]
  for name in ("mig", "sap"):
    assert missing[name][f"{name}_per_factor"]["f0"] < 0.02
    for k in (1, 2, 3):
      assert missing[name][f"{name}_per_factor"][f"f{k}"] == pytest.approx(
          copied[name][f"{name}_per_factor"][f"f{k}"], abs=0.02)
  dci = missing["dci"]
  # Factor 0 (3 values) is predicted at chance; the others perfectly.
  assert dci["informativeness_per_factor"]["f0"] == pytest.approx(1 / 3,
                                                                  abs=0.05)
  assert dci["dci_informativeness"] < 0.9
  assert dci["completeness_per_factor"]["f0"] < 0.8
  assert dci["dci_completeness"] < 0.95
  assert min(dci["completeness_per_factor"][f"f{k}"] for k in (1, 2, 3)) > (
      0.99)
  # Fixing factor 0 leaves no dimension still; its votes go astray.
  assert missing["factor_vae"]["factor_vae_score"] < 0.95


def test_noise_scores_near_chance(blocks):
  block = blocks["noise"]
  # Chance: 1/F = 0.25 for the beta-VAE and FactorVAE classifiers, 0 for
  # the gaps (MIG, SAP) and for D and C, the mean most frequent value's
  # share for the informativeness (about mean(1/3, 1/4, 1/5, 1/8) = 0.23).
  assert block["beta_vae"]["beta_vae_chance"] == CHANCE
  assert block["beta_vae"]["beta_vae_score"] == pytest.approx(CHANCE,
                                                              abs=0.15)
  assert block["factor_vae"]["factor_vae_score"] == pytest.approx(CHANCE,
                                                                  abs=0.15)
  assert block["mig"]["mig"] < 0.01
  assert block["sap"]["sap"] < 0.02
  dci = block["dci"]
  assert dci["dci_disentanglement"] < 0.05
  assert dci["dci_completeness"] < 0.05
  assert dci["dci_informativeness_chance"] == pytest.approx(
      np.mean([1 / 3, 1 / 4, 1 / 5, 1 / 8]), abs=0.03)
  assert dci["dci_informativeness"] == pytest.approx(
      dci["dci_informativeness_chance"], abs=0.05)


def test_factor_vae_drops_collapsed_dimensions():
  def with_collapsed(images):
    codes = copies(images)
    tiny = 0.01 * np.random.RandomState(len(images)).randn(len(images), 1)
    return np.concatenate([codes, np.zeros((len(images), 2)), tiny], axis=1)

  result = dis.factor_vae_score(with_collapsed, GT,
                                np.random.RandomState(0), num_train=100,
                                num_eval=50, num_variance=1000)
  assert result["num_active_dims"] == 4
  assert result["factor_vae_score"] == 1.0
  collapsed = dis.factor_vae_score(
      lambda images: np.zeros((len(images), 3)), GT,
      np.random.RandomState(0), num_train=100, num_eval=50,
      num_variance=1000)
  assert collapsed["num_active_dims"] == 0
  assert collapsed["factor_vae_score"] == 0.0


def test_beta_vae_points_share_exactly_the_fixed_factor():
  seen = []

  def record(images):
    seen.append(factor_values(images))
    return copies(images)

  features, labels = dis._beta_vae_points(record, GT,
                                          np.random.RandomState(0),
                                          batch_size=8, num_points=30)
  pairs = np.concatenate(seen).reshape(2, 30, 8, 4)
  same = pairs[0] == pairs[1]  # [P, B, F]
  for p, k in enumerate(labels):
    assert same[p, :, k].all()
  assert np.allclose(features[np.arange(30), labels], 0.0)
  assert (features > 0).sum() > 0.8 * 30 * 3


def test_factor_vae_votes_fix_one_factor_per_batch():
  seen = []

  def record(images):
    seen.append(factor_values(images))
    return copies(images)

  votes = dis._factor_vae_votes(record, GT, np.random.RandomState(0),
                                batch_size=16, num_votes=40,
                                variance=np.ones(4),
                                active=np.ones(4, bool))
  batches = np.concatenate(seen).reshape(40, 16, 4)
  constant = (batches == batches[:, :1]).all(axis=1)  # [votes, F]
  # Exactly the fixed factor is constant (another one being constant by
  # chance too has probability below 40 * 3 * 3^-15).
  assert (constant.sum(axis=1) == 1).all()
  # Copies: each vote is the fixed factor's own dimension.
  assert np.array_equal(np.diag(votes), votes.sum(axis=1))
  assert votes.sum() == 40 and np.array_equal(
      votes.sum(axis=1), np.bincount(constant.argmax(axis=1), minlength=4))


# ---- The block -----------------------------------------------------------


def test_block_layout_is_json_and_records_the_sample_sizes(blocks):
  block = blocks["copies"]
  assert set(block) == set(DISENTANGLEMENT_METRICS) | {"samples", "seconds"}
  json.dumps(block)  # metrics.json takes it as is.
  sizes = dis.sample_sizes(NUM_SAMPLES)
  for name in DISENTANGLEMENT_METRICS:
    assert block["samples"][name] == sizes[name]
    assert block[name]["seconds"] >= 0
  assert set(dis.headlines(block)) == {
      "beta_vae_score", "factor_vae_score", "mig", "dci_disentanglement",
      "dci_completeness", "dci_informativeness", "sap"}
  for value in dis.headlines(block).values():
    assert 0.0 <= value <= 1.0


def test_sample_sizes_scale_with_num_samples():
  sizes = dis.sample_sizes(10_000)
  assert sizes["mig"] == {"train": 10_000}
  assert sizes["sap"] == {"train": 10_000, "test": 5000}
  assert sizes["dci"] == {"train": 2000, "test": 1000}
  assert sizes["beta_vae"] == {"batch_size": 64, "train": 200, "eval": 100}
  assert sizes["factor_vae"] == {"batch_size": 64, "train": 200, "eval": 100,
                                 "variance": 5000}
  small = dis.sample_sizes(500)
  assert (small["beta_vae"]["train"], small["beta_vae"]["eval"]) == (50, 25)


def test_a_subset_gives_the_same_values_as_the_full_block(blocks):
  subset = dis.evaluate(copies, GT, ("sap", "mig"), num_samples=NUM_SAMPLES)
  assert set(subset) == {"mig", "sap", "samples", "seconds"}
  for name in ("mig", "sap"):
    assert subset[name][name] == blocks["copies"][name][name]
  factor_vae = dis.evaluate(noise, GT, ("factor_vae",),
                            num_samples=NUM_SAMPLES)["factor_vae"]
  assert factor_vae["factor_vae_score"] == (
      blocks["noise"]["factor_vae"]["factor_vae_score"])
  # DCI alone represents only its own (first) points of the shared sample.
  calls = []

  def counted(images):
    calls.append(len(images))
    return hadamard(images)

  alone = dis.evaluate(counted, GT, ("dci",), num_samples=NUM_SAMPLES)["dci"]
  assert sum(calls) == NUM_SAMPLES // 5 + NUM_SAMPLES // 10
  assert alone["importance"] == blocks["hadamard"]["dci"]["importance"]
  assert alone["dci_informativeness"] == (
      blocks["hadamard"]["dci"]["dci_informativeness"])


def test_a_one_dimensional_code_skips_the_gaps_and_dci():
  block = dis.evaluate(lambda images: copies(images)[:, :1], GT,
                       num_samples=500)
  for name in ("mig", "dci", "sap"):
    assert block[name]["skipped"] == "needs a code of at least 2 dimensions"
  assert set(dis.headlines(block)) == {"beta_vae_score", "factor_vae_score"}


def test_unknown_metric_and_bad_representations_raise():
  with pytest.raises(ConfigError, match="not a metric"):
    dis.evaluate(copies, GT, ("mig", "fid"))
  with pytest.raises(ValueError, match="NaN or Inf"):
    dis.evaluate(lambda x: np.full((len(x), 4), np.nan), GT, ("mig",), 100)
  with pytest.raises(ValueError, match="code_dim"):
    dis.evaluate(lambda x: np.zeros(len(x)), GT, ("mig",), 100)


# ---- Models and runs -----------------------------------------------------


class _MeanModel:
  """`encode_code` = per-channel mean and max of the pixels; counts calls."""
  has_continuous_code = True
  conditional = False

  def __init__(self):
    self.batches = []

  def encode_code(self, images, labels=None):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    assert labels is None
    self.batches.append(images.shape[0])
    return tf.concat([tf.reduce_mean(images, [1, 2]),
                      tf.reduce_max(images, [1, 2])], -1)


def test_model_representation_scales_batches_and_binarizes():
  model = _MeanModel()
  images = np.zeros((7, 4, 4, 1), np.uint8)
  images[:, :2] = 255
  images[3] = 51  # 0.2 everywhere.
  represent = dis.model_representation(model, batch_size=3)
  codes = represent(images)
  assert codes.shape == (7, 2)
  assert codes[0] == pytest.approx([0.5, 1.0])
  assert codes[3] == pytest.approx([0.2, 0.2])
  binarized = dis.model_representation(_MeanModel(), 3, binarized=True,
                                       binarization_seed=5)
  again = binarized(images)
  # Binary images are unchanged; grey ones become 0/1 pixels, the same
  # each time (the noise image is fixed), so the code is a function of the
  # image.
  assert np.array_equal(np.delete(again, 3, 0), np.delete(codes, 3, 0))
  assert again[3, 1] in (0.0, 1.0) and 0 <= again[3, 0] <= 1
  assert np.array_equal(binarized(images[3:4]), again[3:4])
  with pytest.raises(ValueError, match="uint8"):
    represent(images.astype(np.float32))


def test_requested_metrics_rules():
  class Discrete:
    has_continuous_code = False
    conditional = False

  class Conditional:
    has_continuous_code = True
    conditional = True

  assert dis.requested_metrics(None, None, _MeanModel, "vae") == ()
  assert dis.requested_metrics(None, GT, _MeanModel, "vae") == (
      DISENTANGLEMENT_METRICS)
  assert dis.requested_metrics(("mig",), GT, _MeanModel, "vae") == ("mig",)
  assert dis.requested_metrics((), GT, _MeanModel, "vae") == ()
  with pytest.raises(ConfigError, match="--disentanglement_metrics=mig,sap "
                     "needs data with known factors"):
    dis.requested_metrics(("mig", "sap"), None, _MeanModel, "vae")
  assert dis.requested_metrics(None, GT, Discrete, "vq_vae") == ()
  assert dis.requested_metrics(None, GT, Conditional, "cvae") == ()
  for model_cls, name in ((Discrete, "vq_vae"), (Conditional, "cvae")):
    with pytest.raises(ConfigError, match=f"--model={name}"):
      dis.requested_metrics(("mig",), GT, model_cls, name)


def test_too_few_samples_fail_before_training():
  from tfvae import config as config_lib  # pylint: disable=g-import-not-at-top

  dis.check_before_training(config_lib.EvalConfig(disentanglement_samples=5),
                            None, _MeanModel, "vae")  # Nothing to compute.
  with pytest.raises(ConfigError, match="--disentanglement_samples=5 is too "
                     "few"):
    dis.check_before_training(
        config_lib.EvalConfig(disentanglement_samples=5), GT, _MeanModel,
        "vae")


def test_metrics_asked_for_on_data_without_factors_fail_before_training(
    tmp_path):
  from tfvae import config as config_lib  # pylint: disable=g-import-not-at-top
  from tfvae.data import from_arrays  # pylint: disable=g-import-not-at-top
  from tfvae.training import experiment  # pylint: disable=g-import-not-at-top

  x = np.random.RandomState(0).randint(0, 256, (40, 4, 4, 1)).astype(np.uint8)
  model_dir = str(tmp_path / "run")
  config = config_lib.RunConfig(
      model=config_lib.ModelConfig(latent_dim=2, hidden_dims=(8,)),
      train=config_lib.TrainConfig(model_dir=model_dir, epochs=0,
                                   train_steps=1, batch_size=8,
                                   progress=False),
      eval=config_lib.EvalConfig(disentanglement_metrics=("mig",)),
      export=config_lib.ExportConfig(export=False)).validate()
  with pytest.raises(ConfigError, match="--disentanglement_metrics=mig"):
    experiment.train_and_evaluate(config, data=from_arrays(x))
  assert not os.path.exists(os.path.join(model_dir, "checkpoints"))


def _cli(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run(
      [sys.executable, "-m", "tfvae.evaluation.disentanglement", *args],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
      check=False)


def test_cli_errors_are_one_line(tmp_path):
  from tfvae.errors import ExportError  # pylint: disable=g-import-not-at-top

  result = _cli(f"--model_dir={tmp_path}", "--metrics=mig,fid")
  assert result.returncode == 1, result.stderr
  assert "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      "tfvae.evaluation.disentanglement: error: --metrics='fid' is not a "
      "metric; choose from: beta_vae, factor_vae, mig, dci, sap.")
  # What `main` turns into its one-line message (as for every TfvaeError).
  with pytest.raises(ExportError, match="has no config.json"):
    dis.evaluate_run(str(tmp_path))
  from tfvae import config as config_lib  # pylint: disable=g-import-not-at-top
  with pytest.raises(ConfigError, match="--dataset=mnist has no known "
                     "factors"):
    dis.ground_truth_for(config_lib.DataConfig(dataset="mnist"))


# ---- End to end: a tiny VAE on the shapes --------------------------------


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
  """A VAE trained 50 steps on 2000 shapes images, evaluated as train.py
  does."""
  from tfvae import config as config_lib  # pylint: disable=g-import-not-at-top
  from tfvae.training import experiment  # pylint: disable=g-import-not-at-top

  config = config_lib.RunConfig(
      data=config_lib.DataConfig(dataset="shapes", shapes_samples=2000),
      model=config_lib.ModelConfig(latent_dim=4, hidden_dims=(32,)),
      train=config_lib.TrainConfig(
          model_dir=str(tmp_path_factory.mktemp("shapes") / "run"),
          epochs=0, train_steps=50, batch_size=64, steps_per_loop=25,
          progress=False),
      eval=config_lib.EvalConfig(
          eval_iw_samples=2, eval_batch_size=250, eval_max_examples=200,
          images=False, frechet_samples=0, disentanglement_samples=500),
      export=config_lib.ExportConfig(export=False)).validate()
  return experiment.train_and_evaluate(config)


def _eval_scalars(model_dir):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  folder = os.path.join(model_dir, "eval")
  tags = {}
  for name in os.listdir(folder):
    for event in tf.compat.v1.train.summary_iterator(
        os.path.join(folder, name)):
      for value in event.summary.value:
        tags[value.tag] = float(tf.make_ndarray(value.tensor))
  return tags


def test_a_trained_model_gets_the_block_and_the_cli_reproduces_it(
    shapes_run):
  from tfvae.evaluation import report  # pylint: disable=g-import-not-at-top

  model_dir = shapes_run.trainer.config.train.model_dir
  with open(shapes_run.metrics_path) as f:
    metrics = json.load(f)
  block = metrics["disentanglement"]
  assert set(block) == set(DISENTANGLEMENT_METRICS) | {"samples", "seconds"}
  assert block["samples"]["dci"] == dis.sample_sizes(500)["dci"]
  values = dis.headlines(block)
  assert len(values) == 7
  for key, value in values.items():
    assert 0.0 <= value <= 1.0, key
  scalars = _eval_scalars(model_dir)
  for key, value in values.items():
    assert scalars[f"disentanglement/{key}"] == pytest.approx(value,
                                                              rel=1e-6)
  assert "DCI completeness" in report.summary_table(metrics, [])

  # What `python -m tfvae.evaluation.disentanglement --model_dir=...
  # --metrics=... --samples=500` runs (in-process: a second TensorFlow
  # start would double this test's time), from config.json and the
  # checkpoint alone.
  again, step, path = dis.update_run(model_dir, list(DISENTANGLEMENT_METRICS),
                                     500)
  assert (step, path) == (50, shapes_run.metrics_path)
  assert dis.headlines(again) == pytest.approx(values, abs=1e-6)
  with open(shapes_run.metrics_path) as f:
    rewritten = json.load(f)
  assert rewritten["test_nll"] == metrics["test_nll"]  # The rest is kept.
  assert dis.headlines(rewritten["disentanglement"]) == pytest.approx(
      values, abs=1e-6)


def test_writing_some_metrics_keeps_the_others(tmp_path):
  from tfvae.evaluation import report  # pylint: disable=g-import-not-at-top

  full = dis.evaluate(copies, GT, ("mig", "sap"), num_samples=400)
  report.write_metrics({"step": 3, "disentanglement": full}, str(tmp_path))
  some = dis.evaluate(noise, GT, ("mig",), num_samples=200)
  path = dis.write_into_metrics(some, str(tmp_path))
  with open(path) as f:
    written = json.load(f)
  block = written["disentanglement"]
  assert written["step"] == 3
  assert block["mig"] == json.loads(json.dumps(some["mig"]))
  assert block["sap"] == json.loads(json.dumps(full["sap"]))
  assert block["samples"]["mig"] == {"train": 200}
  assert block["samples"]["sap"] == {"train": 400, "test": 200}
  assert block["samples"]["num_samples"] == 200
