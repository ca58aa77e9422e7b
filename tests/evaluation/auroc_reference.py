"""The AUROC by its definition, to check `tfvae.evaluation.scoring.auroc`."""

import itertools


def brute_force_auroc(scores, labels):
  """P(positive scores above negative), ties one half, over every pair."""
  positives = [s for s, l in zip(scores, labels) if l]
  negatives = [s for s, l in zip(scores, labels) if not l]
  wins = sum(1.0 if p > n else 0.5 if p == n else 0.0
             for p, n in itertools.product(positives, negatives))
  return wins / (len(positives) * len(negatives))
