"""What evaluation reports for vector (tabular) data beyond the likelihood.

- `column_errors`: the reconstruction error of every column in its own
  terms: RMSE in raw units for continuous columns, the error rate of the
  thresholded probability for binary ones and of the most probable category
  for categorical ones.
- `trivial_nll`: -log p(x) under independent per-column marginals fitted to
  the training split, the baseline a model must beat.
"""

import math

import numpy as np

# Keeps a category unseen in training from having probability 0.
_CATEGORY_PSEUDO_COUNT = 0.5


def column_errors(x, reconstruction, columns):
  """Per-column reconstruction error.

  Args:
    x: `[N, D]` raw rows (category ids for categorical columns).
    reconstruction: `[N, D]` the likelihood's point values of their
      reconstructions (means, probabilities, most probable ids).
    columns: the D `tfvae.data.columns.Column`s.

  Returns:
    Dict column name -> `{'kind', 'metric', 'value'}`, metric `rmse` or
    `error_rate`.
  """
  errors = {}
  for index, column in enumerate(columns):
    truth, guess = x[:, index], reconstruction[:, index]
    if column.kind == "continuous":
      metric, value = "rmse", float(np.sqrt(np.mean((truth - guess)**2)))
    elif column.kind == "binary":
      metric, value = "error_rate", float(np.mean((guess > 0.5) != (truth > 0.5)))
    else:
      metric, value = "error_rate", float(np.mean(np.round(guess) != truth))
    errors[column.name] = {"kind": column.kind, "metric": metric,
                           "value": value}
  return errors


def trivial_nll(train_x, test_x, columns):
  """-log p(x) per test row under independent per-column marginals.

  Continuous columns: a Gaussian with the training mean and std (std 1 for
  a constant column, as `tfvae.data.columns.fit` gives the model); binary: a Bernoulli with the training frequency; categorical:
  the training frequencies (plus a pseudo-count of 1/2 per category).

  Args:
    train_x: `[N, D]` training rows.
    test_x: `[M, D]` test rows.
    columns: the D `Column`s.

  Returns:
    float nats per test row.
  """
  train_x = np.asarray(train_x, np.float64)
  test_x = np.asarray(test_x, np.float64)
  total = np.zeros(len(test_x))
  for index, column in enumerate(columns):
    train, test = train_x[:, index], test_x[:, index]
    if column.kind == "continuous":
      mean, std = train.mean(), train.std()
      std = std if std > 0 else 1.0
      total += (-0.5 * ((test - mean) / std)**2 - math.log(std)
                - 0.5 * math.log(2 * math.pi))
    elif column.kind == "binary":
      p = np.clip(train.mean(), 1e-6, 1 - 1e-6)
      total += test * math.log(p) + (1 - test) * math.log1p(-p)
    else:
      counts = np.bincount(train.astype(int),
                           minlength=len(column.categories))
      probs = ((counts + _CATEGORY_PSEUDO_COUNT)
               / (counts.sum() + _CATEGORY_PSEUDO_COUNT * len(counts)))
      total += np.log(probs[test.astype(int)])
  return float(-total.mean())
