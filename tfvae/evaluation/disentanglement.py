"""Disentanglement metrics: how a code lines up with known factors of the data.

On data generated from independent, known factors (`--dataset=shapes`,
`tfvae.data.shapes.Shapes`), five scores of a representation `r(x)` (here a
model's deterministic code, `model_representation`), defined as in
disentanglement_lib (Locatello et al. 2019), each after its paper:

- **beta-VAE score** (Higgins et al. 2017). One point: a factor k drawn
  uniformly, two batches of `batch_size` factor vectors that agree on
  factor k only (the others independent), the mean over the batch of
  `|r(x1) - r(x2)|` (`[code_dim]`). A logistic regression (sklearn,
  L2, C=1) predicts k from it; the score is its accuracy on held-out points
  (`beta_vae_score`; the training accuracy is `beta_vae_train_accuracy`).
  Chance is 1/F.
- **FactorVAE score** (Kim & Mnih 2018). Each code dimension is scaled by its
  standard deviation over a global sample; dimensions whose std is below
  `PRUNE_STD` (collapsed to a constant; disentanglement_lib's threshold of
  0 keeps every dimension) are dropped. One vote: a factor k,
  one batch with factor k fixed to one value and the others drawn; the vote
  is the active dimension of least (scaled) variance in the batch. The
  majority-vote classifier maps each dimension to the factor that voted for
  it most on the training votes; the score is its accuracy on held-out votes
  (`factor_vae_score`; `factor_vae_train_accuracy` on the training votes).
  Chance is 1/F. No active dimension scores 0 (`num_active_dims` says so).
- **MIG**, the mutual information gap (Chen et al. 2018). Each code
  dimension is discretised into `NUM_BINS` = 20 equal-width bins over its
  range in the sample (`np.histogram`), I(z_j; v_k) is the plug-in mutual
  information of the discretised code with factor k (nats), and
  MIG = mean_k (I_(1) - I_(2)) / H(v_k), the gap between the two most
  informative dimensions normalised by the factor's entropy. A factor with
  at most 20 values that a dimension copies exactly, the others independent
  of it, scores 1; a copied factor with more values than bins loses what the
  binning merges (32 values: 0.85).
- **DCI** (Eastwood & Williams 2018). Per factor, a gradient-boosted tree
  classifier (sklearn `GradientBoostingClassifier`, as disentanglement_lib,
  but `DCI_ESTIMATORS` stages instead of 100; see below) predicts the factor
  from the code; its impurity importances are column k of the importance
  matrix R `[code_dim, F]`. Disentanglement = sum_j rho_j (1 - H_F(P_j.)),
  P_j. the row j of R normalised and rho_j its share of R; completeness =
  sum_k rho_k (1 - H_D(P_.k)), over columns; entropies in base F and D
  (code_dim). Informativeness is the classifiers' mean test accuracy
  (disentanglement_lib's convention; the chance level, the mean share of
  each factor's most frequent value, is `dci_informativeness_chance`).
- **SAP**, the separated attribute predictability (Kumar et al. 2018). Score
  matrix S `[code_dim, F]`: S_jk is the test accuracy of a linear SVM
  (sklearn `LinearSVC`, C=0.01, balanced class weights, as
  disentanglement_lib) predicting factor k from code dimension j alone;
  SAP = mean_k (S_(1)k - S_(2)k), the gap between its two best dimensions.
  (For continuous factors S_jk is the squared correlation, R^2.) A linear
  classifier of one dimension tells apart few of a factor's values, so even
  a code that copies the factors scores well below 1: on the `Shapes`
  factors 0.22 (shape 0.66, scale 0.33, orientation, x and y about 0.03).

All five lie in [0, 1] and higher is better.

Sample sizes (`sample_sizes`) from `num_samples` N (`--disentanglement_samples`,
default 10,000): MIG and SAP train on N points, SAP tests on N/2; the DCI
trees train on N/5 and are tested on N/10 points of the same two samples.
The beta-VAE score trains on N/50 points and is tested on N/100 (64-image
pairs of batches each: 128 images a point), the FactorVAE score trains on
N/50 votes and is tested on N/100 (64 images a vote), and its global std
comes from N/2 images; the point and vote counts are at least 50 and 25.
disentanglement_lib uses 10,000 points for the beta-VAE and FactorVAE
classifiers (1.3M and 640k images), 10,000 tree training points and 100
boosting stages: on dSprites-like factors (113 values, one tree per value
and stage) the trees alone take minutes on a CPU, so tfvae fits fewer, on
fewer points. At the defaults a model's code is computed for about 78,000
images; on `Shapes` with a 10-dimensional code, rendering and the metrics
took 13 s on one CPU core (DCI's trees 7 s of it), and the whole block with
the encoder of a 1200-1200 MLP VAE 23 s on two. Every metric draws from its
own seeded `np.random.RandomState`, so a metric's value does not depend on
which others are computed; evaluation uses the fixed seed `EVAL_SEED` for
every run, so runs are compared on the same factor samples.

`evaluate` computes the block that `metrics.json` holds under
`disentanglement`; `python -m tfvae.evaluation.disentanglement
--model_dir=DIR [--metrics=mig,dci] [--samples=N]` computes it for a finished
run and writes it into the run's metrics.json.

#### References
Higgins, Matthey, Pal, Burgess, Glorot, Botvinick, Mohamed & Lerchner
(2017). beta-VAE: Learning Basic Visual Concepts with a Constrained
Variational Framework. ICLR.
Kim & Mnih (2018). Disentangling by Factorising. ICML.
Chen, Li, Grosse & Duvenaud (2018). Isolating Sources of Disentanglement in
Variational Autoencoders. NeurIPS.
Eastwood & Williams (2018). A Framework for the Quantitative Evaluation of
Disentangled Representations. ICLR.
Kumar, Sattigeri & Balakrishnan (2018). Variational Inference of
Disentangled Latent Concepts from Unlabeled Observations. ICLR.
Locatello, Bauer, Lucic, Raetsch, Gelly, Schoelkopf & Bachem (2019).
Challenging Common Assumptions in the Unsupervised Learning of Disentangled
Representations. ICML. (disentanglement_lib.)
"""

import json
import os
import sys
import time
import warnings

from absl import logging
import numpy as np

from tfvae.config import DISENTANGLEMENT_METRICS
from tfvae.errors import ConfigError

# The headline values of each metric's block (what the summary table shows).
HEADLINE_KEYS = {
    "beta_vae": ("beta_vae_score",),
    "factor_vae": ("factor_vae_score",),
    "mig": ("mig",),
    "dci": ("dci_disentanglement", "dci_completeness",
            "dci_informativeness"),
    "sap": ("sap",),
}
# Equal-width bins of MIG's discretised code (disentanglement_lib's 20).
NUM_BINS = 20
# Images per batch of a beta-VAE point and of a FactorVAE vote.
BATCH_SIZE = 64
# FactorVAE: dimensions whose std over the global sample is below this are
# collapsed (a posterior mean that no longer depends on the image).
PRUNE_STD = 0.05
# Boosting stages of each DCI tree classifier (depth 3, learning rate 0.1).
DCI_ESTIMATORS = 10
# SAP's linear SVM (disentanglement_lib's settings).
SAP_C = 0.01
# The fewest samples N (DCI's trees then train on 20 points).
MIN_SAMPLES = 100
# The sampling seed of the evaluation after training (the same every run).
EVAL_SEED = 0
# Images rendered and represented at once.
_CHUNK = 4096
# Fewest beta-VAE points and FactorVAE votes, train and eval.
_MIN_POINTS = (50, 25)
_PROGRAM = "tfvae.evaluation.disentanglement"


# ---- Samples -------------------------------------------------------------


def sample_sizes(num_samples):
  """The sample sizes of every metric for `num_samples` N (module docstring).

  Args:
    num_samples: N, the training points of MIG and SAP.

  Returns:
    dict metric name -> dict of sizes (`train`, `test`/`eval`, and
    `batch_size`, `variance` where they apply).

  Raises:
    ValueError: N below `MIN_SAMPLES`.
  """
  n = int(num_samples)
  if n < MIN_SAMPLES:
    raise ValueError(f"num_samples={n}: need at least {MIN_SAMPLES}.")
  points = (max(n // 50, _MIN_POINTS[0]), max(n // 100, _MIN_POINTS[1]))
  return {
      "beta_vae": {"batch_size": BATCH_SIZE, "train": points[0],
                   "eval": points[1]},
      "factor_vae": {"batch_size": BATCH_SIZE, "train": points[0],
                     "eval": points[1], "variance": n // 2},
      "mig": {"train": n},
      "dci": {"train": n // 5, "test": n // 10},
      "sap": {"train": n, "test": n // 2},
  }


def represent_factors(represent, gt, factors):
  """The codes of the images of factor points.

  Args:
    represent: `images [n, H, W, C] uint8 -> [n, d]` float codes.
    gt: the ground truth (`render(factors)`).
    factors: `[n, F]` int64 factor indices.

  Returns:
    `[n, d]` float64 codes.

  Raises:
    ValueError: codes of the wrong shape or not finite.
  """
  factors = np.asarray(factors, np.int64).reshape(-1, len(gt.factor_sizes))
  codes = []
  for start in range(0, len(factors), _CHUNK):
    chunk = factors[start:start + _CHUNK]
    code = np.asarray(represent(gt.render(chunk)), np.float64)
    if code.ndim != 2 or len(code) != len(chunk):
      raise ValueError(f"The representation of {len(chunk)} images is "
                       f"{list(code.shape)}, not [{len(chunk)}, code_dim].")
    codes.append(code)
  codes = np.concatenate(codes)
  if not np.isfinite(codes).all():
    raise ValueError("The representation holds NaN or Inf.")
  return codes


def _names(names, count):
  return tuple(names) if names is not None else tuple(
      f"factor_{k}" for k in range(count))


def _seed_of(random_state):
  """An int seed for sklearn, drawn from `random_state`."""
  return int(random_state.randint(2**31 - 1))


def _check_factor_values(factors, metric):
  """`[n, F]` int64 factors, each taking at least two values."""
  factors = np.asarray(factors)
  if factors.ndim != 2 or factors.dtype.kind not in "iu":
    raise ValueError(f"{metric}: factors must be integers [n, F]; got "
                     f"{factors.dtype} {list(factors.shape)}.")
  constant = [k for k in range(factors.shape[1])
              if len(np.unique(factors[:, k])) < 2]
  if constant:
    raise ValueError(f"{metric}: factor(s) {constant} take a single value "
                     "in the sample; every factor must vary.")
  return factors.astype(np.int64)


def _check_codes(codes, factors, metric, min_dims=1):
  codes = np.asarray(codes, np.float64)
  if codes.ndim != 2 or len(codes) != len(factors):
    raise ValueError(f"{metric}: codes {list(codes.shape)} do not match "
                     f"factors {list(np.shape(factors))}.")
  if codes.shape[1] < min_dims:
    raise ValueError(f"{metric}: needs a code of at least {min_dims} "
                     f"dimensions; got {codes.shape[1]}.")
  return codes


# ---- Information ---------------------------------------------------------


def histogram_discretize(codes, num_bins=NUM_BINS):
  """Each column of `codes` in `num_bins` equal-width bins over its range.

  As disentanglement_lib: `np.digitize(x, np.histogram(x, num_bins)[1][:-1])`
  (bin ids 1..num_bins; a constant column lands in one bin).

  Args:
    codes: `[n, d]` floats.
    num_bins: bins per column.

  Returns:
    `[n, d]` int64 bin ids.
  """
  codes = np.asarray(codes, np.float64)
  binned = np.empty(codes.shape, np.int64)
  for j in range(codes.shape[1]):
    edges = np.histogram(codes[:, j], num_bins)[1]
    binned[:, j] = np.digitize(codes[:, j], edges[:-1])
  return binned


def discrete_entropy(values):
  """The plug-in entropy (nats) of a discrete sample `[n]`."""
  _, counts = np.unique(np.asarray(values), return_counts=True)
  p = counts / counts.sum()
  return float(-(p * np.log(p)).sum())


def discrete_mutual_information(a, b):
  """The plug-in mutual information I(a; b) (nats) of two discrete `[n]`.

  `sklearn.metrics.mutual_info_score`'s value (disentanglement_lib's), from
  the empirical joint distribution.
  """
  _, a = np.unique(np.asarray(a), return_inverse=True)
  _, b = np.unique(np.asarray(b), return_inverse=True)
  a, b = a.reshape(-1), b.reshape(-1)
  joint = np.bincount(a * (b.max() + 1) + b,
                      minlength=(a.max() + 1) * (b.max() + 1)).reshape(
                          a.max() + 1, b.max() + 1) / len(a)
  pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
  nonzero = joint > 0
  return float(max((joint[nonzero] * np.log(
      joint[nonzero] / (pa @ pb)[nonzero])).sum(), 0.0))


def mutual_information_matrix(discrete_codes, factors):
  """`[d, F]` I(z_j; v_k) (nats) of discrete codes `[n, d]` and factors
  `[n, F]`."""
  return np.array([[discrete_mutual_information(discrete_codes[:, j],
                                                factors[:, k])
                    for k in range(factors.shape[1])]
                   for j in range(discrete_codes.shape[1])])


def _top_two_gap(matrix):
  """`[F]` best minus second best of each column of `[d, F]`."""
  ordered = np.sort(matrix, axis=0)
  return ordered[-1] - ordered[-2]


# ---- MIG -----------------------------------------------------------------


def mig(codes, factors, num_bins=NUM_BINS, factor_names=None):
  """The mutual information gap of codes for their factors.

  Args:
    codes: `[n, d]` codes, d >= 2.
    factors: `[n, F]` integer factors, each varying in the sample.
    num_bins: equal-width bins per code dimension.
    factor_names: F names (default `factor_0`, ...).

  Returns:
    dict: `mig` (the mean over factors), `mig_per_factor` (name -> gap / H),
    `mutual_information` (`[d, F]` nats, as lists) and `factor_entropy`
    (name -> nats).
  """
  factors = _check_factor_values(factors, "MIG")
  codes = _check_codes(codes, factors, "MIG", min_dims=2)
  names = _names(factor_names, factors.shape[1])
  information = mutual_information_matrix(
      histogram_discretize(codes, num_bins), factors)
  entropy = np.array([discrete_entropy(factors[:, k])
                      for k in range(factors.shape[1])])
  per_factor = _top_two_gap(information) / entropy
  return {
      "mig": float(per_factor.mean()),
      "mig_per_factor": dict(zip(names, map(float, per_factor))),
      "mutual_information": information.tolist(),
      "factor_entropy": dict(zip(names, map(float, entropy))),
      "num_bins": num_bins,
  }


# ---- DCI -----------------------------------------------------------------


def _normalised_entropy(p, base):
  """Entropy in `base` of each column of non-negative `p` (normalised),
  with disentanglement_lib's 1e-11 added to every entry."""
  p = np.asarray(p, np.float64) + 1e-11
  p = p / p.sum(0, keepdims=True)
  return -(p * np.log(p)).sum(0) / np.log(base)


def dci_from_importance(importance):
  """Disentanglement and completeness of an importance matrix.

  Args:
    importance: `[d, F]` non-negative importances R_jk of code dimension j
      for factor k; d >= 2, F >= 2.

  Returns:
    dict: `dci_disentanglement`, `dci_completeness`,
    `disentanglement_per_code` `[d]` and `completeness_per_factor` `[F]`.
  """
  importance = np.abs(np.asarray(importance, np.float64))
  num_codes, num_factors = importance.shape
  if num_codes < 2 or num_factors < 2:
    raise ValueError("DCI needs at least 2 code dimensions and 2 factors; "
                     f"got an importance matrix {list(importance.shape)}.")
  per_code = 1.0 - _normalised_entropy(importance.T, num_factors)
  per_factor = 1.0 - _normalised_entropy(importance, num_codes)
  weights = importance if importance.sum() > 0 else np.ones_like(importance)
  code_share = weights.sum(1) / weights.sum()
  factor_share = weights.sum(0) / weights.sum()
  return {
      "dci_disentanglement": float((per_code * code_share).sum()),
      "dci_completeness": float((per_factor * factor_share).sum()),
      "disentanglement_per_code": per_code.tolist(),
      "completeness_per_factor": per_factor.tolist(),
  }


def dci(codes, factors, test_codes, test_factors, random_state=None,
        n_estimators=DCI_ESTIMATORS, factor_names=None):
  """DCI disentanglement, completeness and informativeness.

  Args:
    codes: `[n, d]` training codes, d >= 2.
    factors: `[n, F]` their integer factors, F >= 2, each varying.
    test_codes: `[m, d]` held-out codes.
    test_factors: `[m, F]` their factors.
    random_state: a `np.random.RandomState` seeding the trees (default 0).
    n_estimators: boosting stages per factor's classifier.
    factor_names: F names (default `factor_0`, ...).

  Returns:
    dict: `dci_disentanglement`, `dci_completeness`,
    `dci_informativeness` (mean test accuracy), `dci_train_accuracy`,
    `dci_informativeness_chance`, per-factor `completeness_per_factor` and
    `informativeness_per_factor` (name -> value), `disentanglement_per_code`
    `[d]` and `importance` (`[d, F]`, as lists).
  """
  from sklearn import ensemble  # pylint: disable=g-import-not-at-top

  factors = _check_factor_values(factors, "DCI")
  codes = _check_codes(codes, factors, "DCI", min_dims=2)
  test_factors = np.asarray(test_factors, np.int64)
  test_codes = _check_codes(test_codes, test_factors, "DCI", min_dims=2)
  names = _names(factor_names, factors.shape[1])
  random_state = random_state or np.random.RandomState(0)
  importance = np.zeros((codes.shape[1], factors.shape[1]))
  train_accuracy, test_accuracy, chance = [], [], []
  for k in range(factors.shape[1]):
    model = ensemble.GradientBoostingClassifier(
        n_estimators=n_estimators, random_state=_seed_of(random_state))
    model.fit(codes, factors[:, k])
    importance[:, k] = np.abs(model.feature_importances_)
    train_accuracy.append(np.mean(model.predict(codes) == factors[:, k]))
    test_accuracy.append(np.mean(model.predict(test_codes)
                                 == test_factors[:, k]))
    chance.append(np.bincount(test_factors[:, k]).max() / len(test_factors))
  result = dci_from_importance(importance)
  per_factor = result.pop("completeness_per_factor")
  return dict(
      result,
      dci_informativeness=float(np.mean(test_accuracy)),
      dci_train_accuracy=float(np.mean(train_accuracy)),
      dci_informativeness_chance=float(np.mean(chance)),
      completeness_per_factor=dict(zip(names, per_factor)),
      informativeness_per_factor=dict(zip(names, map(float, test_accuracy))),
      importance=importance.tolist(),
      n_estimators=n_estimators)


# ---- SAP -----------------------------------------------------------------


def sap_score_matrix(codes, factors, test_codes, test_factors,
                     continuous_factors=False):
  """SAP's `[d, F]` score matrix.

  Args:
    codes: `[n, d]` training codes.
    factors: `[n, F]` their factors.
    test_codes: `[m, d]` held-out codes (discrete factors).
    test_factors: `[m, F]` their factors.
    continuous_factors: score R^2 (the squared correlation on the training
      codes) instead of a classifier's accuracy.

  Returns:
    `[d, F]` float64: S_jk, the test accuracy of a linear SVM predicting
    factor k from dimension j alone (or R^2).
  """
  from sklearn import svm  # pylint: disable=g-import-not-at-top
  from sklearn.exceptions import ConvergenceWarning  # pylint: disable=g-import-not-at-top

  scores = np.zeros((codes.shape[1], factors.shape[1]))
  for j in range(codes.shape[1]):
    for k in range(factors.shape[1]):
      if continuous_factors:
        cov = np.cov(codes[:, j], factors[:, k], ddof=1)
        scores[j, k] = (cov[0, 1]**2 / (cov[0, 0] * cov[1, 1])
                        if cov[0, 0] > 1e-12 else 0.0)
        continue
      # The primal solver (what sklearn's dual="auto" picks for one
      # feature): the same optimum as the dual one disentanglement_lib ran.
      classifier = svm.LinearSVC(C=SAP_C, class_weight="balanced",
                                 dual=False)
      with warnings.catch_warnings():
        # liblinear may stop at its iteration cap on unscaled codes; the
        # accuracy of what it found is the score either way.
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(codes[:, j:j + 1], factors[:, k])
      scores[j, k] = np.mean(classifier.predict(test_codes[:, j:j + 1])
                             == test_factors[:, k])
  return scores


def sap(codes, factors, test_codes, test_factors, continuous_factors=False,
        factor_names=None):
  """The separated attribute predictability of codes for their factors.

  Args:
    codes: `[n, d]` training codes, d >= 2.
    factors: `[n, F]` their integer factors, each varying.
    test_codes: `[m, d]` held-out codes.
    test_factors: `[m, F]` their factors.
    continuous_factors: see `sap_score_matrix`.
    factor_names: F names (default `factor_0`, ...).

  Returns:
    dict: `sap` (the mean over factors), `sap_per_factor` (name -> gap) and
    `score_matrix` (`[d, F]`, as lists).
  """
  factors = _check_factor_values(factors, "SAP")
  codes = _check_codes(codes, factors, "SAP", min_dims=2)
  test_factors = np.asarray(test_factors, np.int64)
  test_codes = _check_codes(test_codes, test_factors, "SAP", min_dims=2)
  names = _names(factor_names, factors.shape[1])
  scores = sap_score_matrix(codes, factors, test_codes, test_factors,
                            continuous_factors)
  per_factor = _top_two_gap(scores)
  return {
      "sap": float(per_factor.mean()),
      "sap_per_factor": dict(zip(names, map(float, per_factor))),
      "score_matrix": scores.tolist(),
  }


# ---- beta-VAE and FactorVAE scores --------------------------------------


def _fix_one_factor(gt, random_state, num_points, batch_size):
  """`(fixed [P], factors [P, B, F])` with a drawn factor per point."""
  num_factors = len(gt.factor_sizes)
  fixed = random_state.randint(num_factors, size=num_points)
  factors = np.asarray(gt.sample_factors(num_points * batch_size,
                                         random_state),
                       np.int64).reshape(num_points, batch_size, num_factors)
  return fixed, factors


def _beta_vae_points(represent, gt, random_state, batch_size, num_points):
  """`(features [P, d], labels [P])`: mean |r(x1) - r(x2)| over pairs of
  batches sharing the value of factor `labels[p]` (pair by pair)."""
  fixed, first = _fix_one_factor(gt, random_state, num_points, batch_size)
  second = np.asarray(gt.sample_factors(num_points * batch_size,
                                        random_state), np.int64).reshape(
                                            first.shape)
  rows = np.arange(num_points)[:, np.newaxis]
  columns = np.arange(batch_size)[np.newaxis, :]
  second[rows, columns, fixed[:, np.newaxis]] = first[
      rows, columns, fixed[:, np.newaxis]]
  codes = represent_factors(represent, gt,
                            np.concatenate([first, second]).reshape(
                                -1, first.shape[-1]))
  codes = codes.reshape(2, num_points, batch_size, -1)
  return np.abs(codes[0] - codes[1]).mean(axis=1), fixed


def beta_vae_score(represent, gt, random_state, batch_size=BATCH_SIZE,
                   num_train=500, num_eval=250):
  """The beta-VAE score (Higgins et al. 2017), as disentanglement_lib.

  Args:
    represent: `images [n, H, W, C] uint8 -> [n, d]` codes.
    gt: the ground truth (`factor_sizes`, `sample_factors`, `render`).
    random_state: a `np.random.RandomState`.
    batch_size: factor vectors per batch of a point (L).
    num_train: training points of the classifier.
    num_eval: held-out points.

  Returns:
    dict: `beta_vae_score` (held-out accuracy), `beta_vae_train_accuracy`
    and `beta_vae_chance` (1/F).
  """
  from sklearn import linear_model  # pylint: disable=g-import-not-at-top
  from sklearn.exceptions import ConvergenceWarning  # pylint: disable=g-import-not-at-top

  train_x, train_y = _beta_vae_points(represent, gt, random_state,
                                      batch_size, num_train)
  if len(np.unique(train_y)) < 2:
    raise ValueError(f"beta-VAE score: {num_train} training points drew "
                     "a single factor; use more points.")
  model = linear_model.LogisticRegression(
      random_state=_seed_of(random_state), max_iter=1000)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", ConvergenceWarning)
    model.fit(train_x, train_y)
  if any(issubclass(w.category, ConvergenceWarning) for w in caught):
    logging.info("beta-VAE score: the logistic regression stopped at its "
                 "iteration cap.")
  eval_x, eval_y = _beta_vae_points(represent, gt, random_state, batch_size,
                                    num_eval)
  return {
      "beta_vae_score": float(np.mean(model.predict(eval_x) == eval_y)),
      "beta_vae_train_accuracy": float(np.mean(model.predict(train_x)
                                               == train_y)),
      "beta_vae_chance": 1.0 / len(gt.factor_sizes),
  }


def _factor_vae_votes(represent, gt, random_state, batch_size, num_votes,
                      variance, active):
  """`[F, n_active]` vote counts: (fixed factor, argmin scaled variance)."""
  fixed, factors = _fix_one_factor(gt, random_state, num_votes, batch_size)
  rows = np.arange(num_votes)
  factors[rows[:, np.newaxis], :, fixed[:, np.newaxis]] = factors[
      rows, 0, fixed][:, np.newaxis, np.newaxis]
  codes = represent_factors(represent, gt,
                            factors.reshape(-1, factors.shape[-1]))
  codes = codes.reshape(num_votes, batch_size, -1)
  local = np.var(codes[:, :, active], axis=1, ddof=1)
  chosen = np.argmin(local / variance[active], axis=1)
  votes = np.zeros((len(gt.factor_sizes), int(active.sum())), np.int64)
  np.add.at(votes, (fixed, chosen), 1)
  return votes


def factor_vae_score(represent, gt, random_state, batch_size=BATCH_SIZE,
                     num_train=500, num_eval=250, num_variance=5000,
                     prune_std=PRUNE_STD):
  """The FactorVAE score (Kim & Mnih 2018), as disentanglement_lib.

  Args:
    represent: `images [n, H, W, C] uint8 -> [n, d]` codes.
    gt: the ground truth (`factor_sizes`, `sample_factors`, `render`).
    random_state: a `np.random.RandomState`.
    batch_size: images of a vote (L), one factor fixed.
    num_train: training votes of the majority-vote classifier.
    num_eval: held-out votes.
    num_variance: images of the global variance estimate.
    prune_std: dimensions with a global std below this are dropped.

  Returns:
    dict: `factor_vae_score` (held-out accuracy),
    `factor_vae_train_accuracy`, `factor_vae_chance` (1/F),
    `num_active_dims` and `vote_classifier` (the factor each active
    dimension votes for, by dimension; None for one no training vote
    chose).
  """
  codes = represent_factors(represent, gt,
                            gt.sample_factors(num_variance, random_state))
  variance = np.var(codes, axis=0, ddof=1)
  active = np.sqrt(variance) >= prune_std
  active &= variance > 0
  result = {"factor_vae_chance": 1.0 / len(gt.factor_sizes),
            "num_active_dims": int(active.sum())}
  if not active.any():
    logging.info("FactorVAE score: every code dimension has collapsed "
                 "(std < %g); the score is 0.", prune_std)
    return dict(result, factor_vae_score=0.0, factor_vae_train_accuracy=0.0,
                vote_classifier={})
  train = _factor_vae_votes(represent, gt, random_state, batch_size,
                            num_train, variance, active)
  classifier = np.argmax(train, axis=0)
  columns = np.arange(train.shape[1])
  evaluation = _factor_vae_votes(represent, gt, random_state, batch_size,
                                 num_eval, variance, active)
  names = tuple(gt.factor_names)
  return dict(
      result,
      factor_vae_score=float(evaluation[classifier, columns].sum()
                             / evaluation.sum()),
      factor_vae_train_accuracy=float(train[classifier, columns].sum()
                                      / train.sum()),
      vote_classifier={str(dim): names[k] if train[:, i].any() else None
                       for i, (dim, k) in enumerate(zip(np.flatnonzero(active),
                                                        classifier))})


# ---- The block -----------------------------------------------------------


def check_metric_names(names, flag="disentanglement_metrics"):
  """Raises `ConfigError` naming `--flag` for a name not in the metrics."""
  for name in names:
    if name not in DISENTANGLEMENT_METRICS:
      raise ConfigError(f"--{flag}={name!r} is not a metric; choose from: "
                        f"{', '.join(DISENTANGLEMENT_METRICS)}.")


def evaluate(represent, gt, metrics=None, num_samples=10_000, seed=0):
  """The disentanglement block of a representation.

  Args:
    represent: `images [n, H, W, C] uint8 -> [n, d]` float codes, called on
      up to 4096 images at once.
    gt: the ground truth: `factor_names`, `factor_sizes`,
      `sample_factors(num, random_state)`, `render(factors)`.
    metrics: names from `DISENTANGLEMENT_METRICS`; None computes all.
    num_samples: N, see `sample_sizes`.
    seed: the sampling seed; metric `m` draws from
      `np.random.RandomState([seed, index of m])`, MIG, DCI and SAP share
      the training and test samples of `RandomState([seed, 100])` (DCI
      takes their first points), so a metric's value does not depend on
      which others are computed.

  Returns:
    dict: one dict per metric computed (see `beta_vae_score`,
    `factor_vae_score`, `mig`, `dci`, `sap`; each with its `seconds`; MIG,
    DCI and SAP of a code with one dimension are `{"skipped": reason}`),
    `samples` (the sizes used per metric, `seed`) and `seconds` (all of it).

  Raises:
    ConfigError: an unknown metric name.
    ValueError: a representation of the wrong shape or not finite.
  """
  names = tuple(DISENTANGLEMENT_METRICS if metrics is None else metrics)
  check_metric_names(names)
  sizes = sample_sizes(num_samples)
  factor_names = tuple(gt.factor_names)
  began = time.perf_counter()
  block = {"samples": {"seed": seed, "num_samples": int(num_samples)}}
  shared = {}
  if {"mig", "dci", "sap"} & set(names):
    state = np.random.RandomState([seed, 100])
    # Drawn in full whatever is asked for (factors are cheap; codes are
    # computed for the points used), so DCI alone sees the same points.
    train_factors = np.asarray(gt.sample_factors(sizes["mig"]["train"],
                                                 state), np.int64)
    test_factors = np.asarray(gt.sample_factors(sizes["sap"]["test"], state),
                              np.int64)
    if not {"mig", "sap"} & set(names):
      train_factors = train_factors[:sizes["dci"]["train"]]
    test_factors = test_factors[:(sizes["sap"]["test"] if "sap" in names
                                  else sizes["dci"]["test"] if "dci" in names
                                  else 0)]
    shared = {"factors": train_factors, "test_factors": test_factors,
              "codes": represent_factors(represent, gt, train_factors),
              "test_codes": (represent_factors(represent, gt, test_factors)
                             if len(test_factors) else None)}
    block["samples"]["shared_seconds"] = time.perf_counter() - began
  for name in DISENTANGLEMENT_METRICS:
    if name not in names:
      continue
    start = time.perf_counter()
    state = np.random.RandomState([seed, DISENTANGLEMENT_METRICS.index(name)])
    size = sizes[name]
    if name in ("mig", "dci", "sap") and shared["codes"].shape[1] < 2:
      reason = "needs a code of at least 2 dimensions"
      logging.info("No %s: it %s.", name, reason)
      result = {"skipped": reason}
    elif name == "beta_vae":
      result = beta_vae_score(represent, gt, state, size["batch_size"],
                              size["train"], size["eval"])
    elif name == "factor_vae":
      result = factor_vae_score(represent, gt, state, size["batch_size"],
                                size["train"], size["eval"],
                                size["variance"])
    elif name == "mig":
      result = mig(shared["codes"], shared["factors"],
                   factor_names=factor_names)
    elif name == "dci":
      result = dci(shared["codes"][:size["train"]],
                   shared["factors"][:size["train"]],
                   shared["test_codes"][:size["test"]],
                   shared["test_factors"][:size["test"]], state,
                   factor_names=factor_names)
    else:
      result = sap(shared["codes"], shared["factors"], shared["test_codes"],
                   shared["test_factors"], factor_names=factor_names)
    result["seconds"] = time.perf_counter() - start
    block[name] = result
    block["samples"][name] = size
  block["seconds"] = time.perf_counter() - began
  return block


def headlines(block):
  """`{key: value}` of the headline values in a block (computed ones)."""
  return {key: block[name][key] for name, keys in HEADLINE_KEYS.items()
          if isinstance(block.get(name), dict)
          for key in keys if block[name].get(key) is not None}


# ---- Models --------------------------------------------------------------


def model_representation(model, batch_size=500, binarized=False,
                         binarization_seed=0):
  """`represent` of a trained model: its deterministic code of images.

  Images are converted as `tfvae.data.pipeline.eval_dataset` does (uint8 ->
  float32 / 255). With `binarized` (Bernoulli models trained on binarized
  data) each pixel is then binarized against one fixed uniform noise image
  (seed `[binarization_seed, 0]`), so every pixel is a Bernoulli draw of its
  value as in evaluation, and the code remains a function of the image alone
  (the metrics compare codes of images that share factors). Binary images
  (the shapes without colour or background) are unchanged by it.

  Args:
    model: a model with `encode_code(images, labels)` (`has_continuous_code`).
    batch_size: images per encoder call.
    binarized: binarize the images first.
    binarization_seed: the seed of the fixed noise image.

  Returns:
    A function `images [n, H, W, C] uint8 -> [n, code_dim]` float32 (the
    posterior mean code, `model.encode_code(images, labels=None)`).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfvae.data import pipeline  # pylint: disable=g-import-not-at-top

  traced = {}

  def encode_fn(shape):
    noise = (tf.random.stateless_uniform(shape[1:], seed=[binarization_seed,
                                                           0])
             if binarized else None)

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.uint8)])
    def encode(images):
      x = pipeline.to_unit_float(images)
      if noise is not None:
        x = tf.cast(noise < x, tf.float32)
      return model.encode_code(x, labels=None)

    return encode

  def represent(images):
    images = np.asarray(images)
    if images.dtype != np.uint8:
      raise ValueError(f"Expected uint8 images; got {images.dtype}.")
    shape = (None,) + images.shape[1:]
    if shape not in traced:
      traced[shape] = encode_fn(shape)
    codes = [traced[shape](images[start:start + batch_size]).numpy()
             for start in range(0, len(images), batch_size)]
    return np.concatenate(codes) if codes else np.zeros((0, 0), np.float32)

  return represent


def requested_metrics(asked, ground_truth, model_cls, model_name, log=True):
  """The metrics to compute after training, or `()` with a logged reason.

  Args:
    asked: `--disentanglement_metrics`: names, or None (all of them on data
      with factors, none elsewhere).
    ground_truth: the data's ground truth, or None.
    model_cls: the model's class (`has_continuous_code`, `conditional`).
    model_name: its `--model`, for messages.
    log: log why a model's code is skipped.

  Returns:
    A tuple of metric names (all of them when the data have factors and
    the flag is unset).

  Raises:
    ConfigError: metrics asked for on data without factors, or for a model
      without a continuous, unconditional code.
  """
  if asked is not None:
    check_metric_names(asked)
    if not asked:
      return ()
  if ground_truth is None:
    if asked:
      raise ConfigError(
          f"--disentanglement_metrics={','.join(asked)} needs data with "
          "known factors (--dataset=shapes); this data has none; drop the "
          "flag.")
    return ()
  reason = None
  if not getattr(model_cls, "has_continuous_code", False):
    reason = "its code is not continuous"
  elif getattr(model_cls, "conditional", False):
    reason = "its code is conditioned on the label"
  if reason:
    if asked:
      raise ConfigError(
          "--disentanglement_metrics needs a model with a continuous code "
          f"of the image alone; --model={model_name}: {reason}. Drop the "
          "flag or choose another --model.")
    if log:
      logging.info("No disentanglement metrics for --model=%s: %s.",
                   model_name, reason)
    return ()
  return tuple(DISENTANGLEMENT_METRICS if asked is None else asked)


def check_before_training(eval_config, ground_truth, model_cls, model_name):
  """Raises for metrics asked for that the run could not compute.

  Called once the data are loaded, before training starts.

  Raises:
    ConfigError: see `requested_metrics`; or `--disentanglement_samples`
      below `MIN_SAMPLES` when metrics will be computed.
  """
  names = requested_metrics(eval_config.disentanglement_metrics,
                            ground_truth, model_cls, model_name, log=False)
  if names and eval_config.disentanglement_samples < MIN_SAMPLES:
    raise ConfigError(
        f"--disentanglement_samples={eval_config.disentanglement_samples} "
        f"is too few for the disentanglement metrics; use at least "
        f"{MIN_SAMPLES}.")


def evaluate_model(model, model_name, ground_truth, eval_config, binarized):
  """The block for a trained model after training (None when not computed).

  Args:
    model: the trained model.
    model_name: its `--model`.
    ground_truth: the data's ground truth, or None.
    eval_config: `EvalConfig` (`disentanglement_metrics`,
      `disentanglement_samples`, `eval_batch_size`,
      `test_binarization_seed`).
    binarized: whether the model was trained on binarized images.

  Returns:
    The `evaluate` block; `{"error": message}` when the codes could not be
    scored (not finite); None when no metric applies.
  """
  names = requested_metrics(eval_config.disentanglement_metrics,
                            ground_truth, type(model), model_name)
  if not names:
    return None
  try:
    block = evaluate(
        model_representation(model, eval_config.eval_batch_size, binarized,
                             eval_config.test_binarization_seed),
        ground_truth, names, eval_config.disentanglement_samples, EVAL_SEED)
  except ValueError as e:  # E.g. NaN codes: the run's other results stand.
    logging.warning("No disentanglement metrics: %s", e)
    return {"error": str(e)}
  logging.info("Disentanglement (%d samples, %.1f s): %s",
               eval_config.disentanglement_samples, block["seconds"],
               ", ".join(f"{k} {v:.3f}" for k, v in headlines(block).items()))
  return block


def write_summaries(block, writer, step):
  """A TensorBoard scalar `disentanglement/<key>` per headline value."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  with writer.as_default(step=step):
    for key, value in headlines(block).items():
      tf.summary.scalar(f"disentanglement/{key}", value)


# ---- Finished runs -------------------------------------------------------


def ground_truth_for(data_config):
  """The ground truth of a run's data, rebuilt from its `DataConfig`.

  Raises:
    ConfigError: the data have no known factors.
  """
  if data_config.dataset != "shapes":
    raise ConfigError(
        f"--dataset={data_config.dataset} has no known factors; the "
        "disentanglement metrics need a run trained on --dataset=shapes.")
  from tfvae.data.shapes import Shapes  # pylint: disable=g-import-not-at-top
  return Shapes(color=data_config.shapes_color,
                background=data_config.shapes_background)


def evaluate_run(model_dir, metrics=None, num_samples=None):
  """The block for a finished run, from its config and latest checkpoint.

  Args:
    model_dir: the run's folder.
    metrics: names from `DISENTANGLEMENT_METRICS`; None takes the run's
      `--disentanglement_metrics` (all when unset).
    num_samples: N; None takes the run's `--disentanglement_samples`.

  Returns:
    `(block, step)`: the `evaluate` block and the checkpoint's step.

  Raises:
    ExportError: the folder has no config or checkpoint.
    ConfigError: the data have no factors, an unknown metric, or a model
      without a continuous code.
  """
  if metrics is not None:
    check_metric_names(metrics, "metrics")
  # Imported here: evaluation does not otherwise reach into training.
  from tfvae.training import run_state  # pylint: disable=g-import-not-at-top

  model, config, step = run_state.load_trained_model(model_dir)
  ground_truth = ground_truth_for(config.data)
  # Asked for here, so a model without a continuous code is an error.
  names = requested_metrics(
      tuple(metrics or config.eval.disentanglement_metrics
            or DISENTANGLEMENT_METRICS), ground_truth, type(model),
      config.model.model)
  binarized = (config.data.binarize
               and config.model.likelihood == "bernoulli")
  block = evaluate(
      model_representation(model, config.eval.eval_batch_size, binarized,
                           config.eval.test_binarization_seed),
      ground_truth, names,
      (config.eval.disentanglement_samples if num_samples is None
       else num_samples), EVAL_SEED)
  return block, step


def write_into_metrics(block, model_dir):
  """Puts `block` under `disentanglement` in the run's metrics.json.

  The metrics in `block` replace their earlier values there; the others
  stay as they were, each with its sizes in `samples` (the top-level
  `samples.num_samples`, `samples.seed` and `seconds` are this block's).

  Returns:
    The file's path (written atomically; created when missing).
  """
  from tfvae.evaluation import report  # pylint: disable=g-import-not-at-top

  path = os.path.join(model_dir, report.METRICS_FILE)
  metrics = {}
  if os.path.exists(path):
    with open(path) as f:
      metrics = json.load(f)
  earlier = metrics.get("disentanglement")
  merged = {}
  if isinstance(earlier, dict) and "error" not in earlier:
    merged = {name: earlier[name] for name in DISENTANGLEMENT_METRICS
              if name in earlier and name not in block}
    merged["samples"] = {name: size for name, size in
                         earlier.get("samples", {}).items()
                         if name in merged}
  merged.update({k: v for k, v in block.items() if k != "samples"})
  merged["samples"] = dict(merged.get("samples", {}), **block["samples"])
  metrics["disentanglement"] = merged
  return report.write_metrics(metrics, model_dir)


def update_run(model_dir, metrics=None, num_samples=None):
  """What the CLI does: `evaluate_run`, then metrics.json and TensorBoard.

  The block goes into `<model_dir>/metrics.json` (`write_into_metrics`) and
  its headline values are TensorBoard scalars `disentanglement/<key>` under
  `<model_dir>/eval` at the checkpoint's step.

  Args:
    model_dir: the run's folder.
    metrics: names, or None (see `evaluate_run`).
    num_samples: N, or None (see `evaluate_run`).

  Returns:
    `(block, step, path)`: the block, the checkpoint's step and the path of
    metrics.json.

  Raises:
    TfvaeError: see `evaluate_run`.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  block, step = evaluate_run(model_dir, metrics, num_samples)
  path = write_into_metrics(block, model_dir)
  writer = tf.summary.create_file_writer(os.path.join(model_dir, "eval"))
  write_summaries(block, writer, step)
  writer.flush()
  return block, step, path


def format_block(block):
  """The headline values, one `name  value` line each."""
  values = headlines(block)
  width = max((len(k) for k in values), default=0)
  return "\n".join(f"{k:<{width}}  {v:.4f}" for k, v in values.items())


def main(argv):
  """Computes the metrics of `--model_dir` and writes them to metrics.json."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from tfvae.cli import absl_main  # pylint: disable=g-import-not-at-top
  from tfvae.cli import quiet_startup  # pylint: disable=g-import-not-at-top
  from tfvae.errors import TfvaeError  # pylint: disable=g-import-not-at-top

  program = absl_main.program_name(_PROGRAM)
  if program == os.path.basename(__file__):  # `python -m`'s sys.argv[0].
    program = _PROGRAM
  if len(argv) > 1:
    sys.exit(f"{program}: error: unexpected arguments {argv[1:]}.")
  quiet_startup.import_tensorflow()
  values = flags.FLAGS
  try:
    block, step, path = update_run(values.model_dir, values.metrics,
                                   values.samples)
  except (TfvaeError, ValueError) as e:
    sys.exit(f"{program}: error: {e}")
  print(format_block(block))
  print(f"Disentanglement of step {step} ({block['samples']['num_samples']} "
        f"samples, {block['seconds']:.1f} s): {path}")


def _define_flags():
  """The CLI's flags (defined only when it runs, not on import)."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  return [
      flags.DEFINE_string("model_dir", None, "The finished run.",
                          required=True),
      flags.DEFINE_list(
          "metrics", None,
          f"Metrics to compute ({', '.join(DISENTANGLEMENT_METRICS)}); "
          "default the run's --disentanglement_metrics, else all."),
      flags.DEFINE_integer(
          "samples", None,
          "N, the training points of MIG/DCI/SAP (the other sizes scale "
          "with it); default the run's --disentanglement_samples.",
          lower_bound=MIN_SAMPLES),
  ]


def run():
  """`python -m tfvae.evaluation.disentanglement`."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from tfvae.cli import absl_main  # pylint: disable=g-import-not-at-top

  holders = _define_flags()
  absl_main.run(main, [flags.FLAGS[h.name] for h in holders], __doc__)


if __name__ == "__main__":
  from tfvae.cli import quiet_startup  # pylint: disable=g-import-not-at-top
  quiet_startup.default_log_level()
  run()
