"""Auxiliary networks: parts of a model trained by an optimizer of their own.

Adversarial variants (`factor_vae`'s total-correlation discriminator,
`aae`'s code discriminator, `vae_gan`'s image discriminator) train a second
network against the model's own objective. A variant declares each such
network with `VAE.auxiliary_objectives()`; the training loop
(`tfvae.training.loop.Trainer`) then, generically:

- leaves the network's variables out of the model's gradient step (the
  model's loss sees the network but does not train it);
- after each model step, runs the objective's own step on the same batch
  and the same reparameterization noise: the gradient of
  `loss_fn(...)['loss']` summed over the replica's examples and divided by
  the global batch, applied by its own Adam (`learning_rate`, `beta_1`,
  `beta_2`), under the same distribution strategy, gradient clipping and
  loss scaling as the model's step;
- checkpoints that optimizer as `<name>_optimizer` beside the model's, so a
  resumed run continues bit for bit;
- reports the mean of every term `loss_fn` returns as `<name>_<term>` in
  the training summaries and progress bar.

Randomness an objective needs beyond the step's noise (permutations, prior
draws) comes from `seed`, a stateless seed that is a pure function of the
run seed, the step and the objective, so resume and multi-worker runs stay
exact. The model's `build_from_shape` runs every objective once, so the
networks' variables exist before the optimizers and checkpoints are made.

A model keeps these networks in an `Unexported` holder attribute rather than
as Keras sub-layers: the checkpoint follows the holder, but the export
archive, which saves the model's Keras variables, does not, so exports
neither contain nor need a discriminator.
"""

import dataclasses
from typing import Callable, Tuple

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class AuxiliaryObjective:
  """A network and the loss its own optimizer minimizes.

  Attributes:
    name: names the optimizer's checkpoint slot (`<name>_optimizer`) and
      the reported terms (`<name>_<term>`); unique within a model, e.g.
      `discriminator`.
    network: the Keras layer or model owning the trained variables, held
      by the model in an `Unexported` attribute (so the model's checkpoint
      holds them and its exports do not).
    loss_fn: `loss_fn(images, labels, noise, step, seed, training)` ->
      dict of `[batch]` float32 tensors with at least `loss`; `images` and
      `labels` are the replica's batch, `noise` the model step's
      `[batch] + noise_shape()` draws, `step` the int64 step and `seed` a
      `[2]` int64 stateless seed.
    terms: the keys of `loss_fn`'s dict that are reported (`loss` first).
    learning_rate: Adam's learning rate.
    beta_1: Adam's beta_1 (GAN practice: 0.5).
    beta_2: Adam's beta_2.
  """
  name: str
  network: object
  loss_fn: Callable
  terms: Tuple[str, ...] = ("loss",)
  learning_rate: float = 1e-4
  beta_1: float = 0.5
  beta_2: float = 0.9

  def metric_names(self):
    """`<name>_<term>` for each reported term."""
    return tuple(f"{self.name}_{term}" for term in self.terms)


class Unexported(tf.Module):
  """Networks in the model's checkpoint but not among its Keras variables.

  `tf.train.Checkpoint(model=...)` follows a model attribute holding this
  module to the networks; Keras' `model.variables`, which the export
  archive saves, does not.

  Args:
    **networks: attribute name -> Keras layer or model.
  """

  def __init__(self, **networks):
    super().__init__(name="unexported")
    for name, network in networks.items():
      setattr(self, name, network)
