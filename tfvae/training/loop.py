"""The strategy-aware custom training loop.

One `tf.function` call runs `steps_per_loop` optimizer steps (a `tf.range`
loop around `strategy.run`), so Python overhead is paid once per call. Each
replica's loss is summed over its examples and divided by the global batch,
so gradients summed across replicas equal the single-device gradient. The
reparameterization noise of a step is drawn for the whole global batch from
a stateless seed `(seed, step)` and each replica takes its rows: a mirrored
run sees the same noise as a single-device run with the same global batch.
Networks a model trains with optimizers of their own
(`tfvae.auxiliary.AuxiliaryObjective`, e.g. discriminators) take their step
after the model's, on the same batch and noise, and are checkpointed with
the rest.
"""

import os
import sys
import time

import keras
from absl import logging
import tensorflow as tf

from tfvae import models
from tfvae import schedules
from tfvae.data import pipeline
from tfvae.errors import ConfigError
from tfvae.errors import TrainingError
from tfvae.evaluation.likelihood import Evaluator
from tfvae.training import optimizers
from tfvae.training import precision
from tfvae.training import run_state
from tfvae.training import strategy as strategy_lib
from tfvae.training.strategy import make_strategy

ALL_METRICS = ("loss", "neg_elbo", "distortion", "rate")
_NOISE_STREAM = 17
# Stateless seed streams of the auxiliary objectives (one per objective).
_AUXILIARY_STREAM = 1_000_033


class Trainer:
  """Owns the model, optimizer, step counter, checkpoints and summaries.

  Args:
    config: a validated `RunConfig`.
    data: a `tfvae.data.pipeline.Data`.
    strategy: a `tf.distribute.Strategy`; default from `config.train`.
    encoder: a custom Keras encoder body (`tfvae.networks.custom`), or None.
    decoder: a custom Keras decoder body, or None.
  """

  def __init__(self, config, data, strategy=None, encoder=None,
               decoder=None):
    self.config = config
    self.data = data
    train = config.train
    self.strategy = strategy or make_strategy(train.strategy,
                                              train.worker_timeout_s)
    self.num_replicas = self.strategy.num_replicas_in_sync
    self.is_chief = strategy_lib.is_chief(self.strategy)
    if train.batch_size % self.num_replicas:
      raise TrainingError(
          f"--batch_size={train.batch_size} does not split evenly over "
          f"{self.num_replicas} replicas; use a multiple of "
          f"{self.num_replicas}.")
    self.binarized = (config.data.binarize
                      and config.model.likelihood == "bernoulli")
    if models.get(config.model.model).conditional and data.num_classes is None:
      raise ConfigError(
          f"--model={config.model.model} needs class labels, and "
          f"{data.source} has none; use a labelled dataset (mnist, "
          "fashion_mnist, cifar10, npz with y, image_folder with class "
          "folders) or another --model.")
    self.steps_per_epoch = pipeline.steps_per_epoch(len(data.train_x),
                                                    train.batch_size)
    self.total_steps = (train.train_steps
                        or train.epochs * self.steps_per_epoch)
    with self.strategy.scope():
      # The networks take the policy's compute dtype; variables, the
      # distributions and the loss stay float32 (tfvae.training.precision).
      with precision.policy_scope(train.mixed_precision):
        self.model = models.build(config.model, data.data_shape,
                                  data.num_classes, columns=data.columns,
                                  encoder_body=encoder, decoder_body=decoder)
        self.model.build_from_shape()
      self.auxiliaries = tuple(self.model.auxiliary_objectives())
      self.model_variables = _without(
          self.model.trainable_variables,
          [v for a in self.auxiliaries for v in a.network.trainable_variables])
      self.optimizer = precision.wrap_optimizer(optimizers.Adam(
          learning_rate=train.learning_rate,
          weight_decay=train.weight_decay or None), train.mixed_precision)
      self.optimizer.build(self.model_variables)
      self.auxiliary_optimizers = {}
      for objective in self.auxiliaries:
        optimizer = precision.wrap_optimizer(optimizers.Adam(
            learning_rate=objective.learning_rate, beta_1=objective.beta_1,
            beta_2=objective.beta_2), train.mixed_precision)
        optimizer.build(objective.network.trainable_variables)
        self.auxiliary_optimizers[objective.name] = optimizer
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False,
                              name="step")
    self.checkpoint = tf.train.Checkpoint(
        model=self.model, optimizer=self.optimizer, step=self.step,
        **{f"{name}_optimizer": optimizer
           for name, optimizer in self.auxiliary_optimizers.items()})
    # Every worker saves (TF's multi-worker rule), the chief into model_dir
    # and the others into a temporary folder they delete; all restore from
    # the chief's checkpoints.
    self.manager = run_state.checkpoint_manager(
        self.checkpoint, train.model_dir, train.checkpoints_to_keep)
    self._worker_dir = (None if self.is_chief else os.path.join(
        train.model_dir, f".{strategy_lib.task_name(self.strategy)}-tmp"))
    self._write_manager = self.manager if self.is_chief else (
        run_state.checkpoint_manager(self.checkpoint, self._worker_dir, 1))
    self.metrics_names = (ALL_METRICS if self.model.has_likelihood_bound
                          else ("loss", "distortion")) + tuple(
                              name for a in self.auxiliaries
                              for name in a.metric_names())
    self._compute_gradients = tf.function(
        self._compute_gradients_eager, jit_compile=train.jit_compile)
    self._auxiliary_gradients = [
        tf.function(self._auxiliary_gradients_fn(objective),
                    jit_compile=train.jit_compile)
        for objective in self.auxiliaries]
    self._train_loop = tf.function(self._train_loop_eager)
    self.evaluator = Evaluator(self.model, seed=train.seed)
    self.validation_metric = ("neg_elbo" if self.model.has_likelihood_bound
                              else "distortion")
    self.train_images_per_second = None
    # Wall seconds of `fit` in this process (tracing, steps, validation and
    # checkpoints), or None before it ran.
    self.train_seconds = None

  # ---- Checkpoints ---------------------------------------------------------

  def restore_or_initialize(self):
    """Restores the latest checkpoint, if any.

    Returns:
      The path restored from, or None for a fresh start.
    """
    latest = self.manager.latest_checkpoint
    if latest:
      self.checkpoint.restore(latest).assert_existing_objects_matched()
      # Keras checkpoints the learning rate; the flag of this run wins.
      self.optimizer.learning_rate.assign(self.config.train.learning_rate)
    return latest

  def save(self):
    """Writes a checkpoint at the current step; returns its path.

    On workers other than the chief the checkpoint is written to a
    temporary folder and removed again.
    """
    path = self._write_manager.save(checkpoint_number=int(self.step.numpy()))
    if not self.is_chief:
      tf.io.gfile.rmtree(self._worker_dir)
    return path

  # ---- One step ------------------------------------------------------------

  def kl_weight(self, step):
    train = self.config.train
    return schedules.kl_weight(step, train.kl_schedule, train.kl_warmup_steps,
                               self.total_steps, train.kl_cycles,
                               train.kl_cycle_ratio)

  def _step_noise(self, local_batch):
    """This replica's rows of the step's global-batch noise."""
    global_batch = self.config.train.batch_size
    seed = tf.stack([tf.constant(self.config.train.seed * 7919 + _NOISE_STREAM,
                                 tf.int64), self.step.read_value()])
    noise = tf.random.stateless_normal(
        (global_batch,) + tuple(self.model.noise_shape()), seed=seed)
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    start = tf.cast(replica, tf.int32) * local_batch
    return noise[start:start + local_batch]

  def _compute_gradients_eager(self, images, labels, noise, step,
                               kl_weight):
    global_batch = float(self.config.train.batch_size)
    with tf.GradientTape() as tape:
      terms = self.model.compute_loss(images, noise, step, kl_weight, labels,
                                      training=True)
      loss = tf.reduce_sum(terms["loss"]) / global_batch
      # Identity unless the optimizer scales the loss (mixed_float16).
      scaled_loss = self.optimizer.scale_loss(loss)
    grads = tape.gradient(scaled_loss, self.model_variables)
    summed = {name: tf.reduce_sum(terms[key]) / global_batch
              for name, key in (("neg_elbo", "elbo"), ("distortion",
                                                       "distortion"),
                                ("rate", "rate")) if key in terms}
    if "neg_elbo" in summed:
      summed["neg_elbo"] = -summed["neg_elbo"]
    summed["loss"] = loss
    return grads, summed

  def _auxiliary_gradients_fn(self, objective):
    """`(images, labels, noise, step, seed) -> (grads, terms)` of one
    auxiliary objective's step."""
    optimizer = self.auxiliary_optimizers[objective.name]
    variables = objective.network.trainable_variables
    global_batch = float(self.config.train.batch_size)

    def gradients(images, labels, noise, step, seed):
      with tf.GradientTape() as tape:
        terms = objective.loss_fn(images, labels, noise, step, seed,
                                  training=True)
        loss = tf.reduce_sum(terms["loss"]) / global_batch
        scaled_loss = optimizer.scale_loss(loss)
      grads = tape.gradient(scaled_loss, variables)
      return grads, {f"{objective.name}_{term}":
                     tf.reduce_sum(terms[term]) / global_batch
                     for term in objective.terms}
    return gradients

  def _auxiliary_seed(self, index, step):
    return tf.stack([tf.constant(
        self.config.train.seed * 7919 + _AUXILIARY_STREAM + index, tf.int64),
                     step])

  def _replica_step(self, batch):
    images = batch["image"]
    labels = batch.get("label") if self.model.conditional else None
    step = self.step.read_value()
    noise = self._step_noise(tf.shape(images)[0])
    grads, metrics = self._compute_gradients(images, labels, noise, step,
                                             self.kl_weight(step))
    self._apply(self.optimizer, grads, self.model_variables)
    for index, objective in enumerate(self.auxiliaries):
      grads, terms = self._auxiliary_gradients[index](
          images, labels, noise, step, self._auxiliary_seed(index, step))
      self._apply(self.auxiliary_optimizers[objective.name], grads,
                  objective.network.trainable_variables)
      metrics.update(terms)
    return metrics

  def _apply(self, optimizer, grads, variables):
    """One optimizer step from this replica's gradients."""
    clip_norm = self.config.train.clip_norm
    loss_scaled = precision.is_loss_scaled(optimizer)
    if clip_norm > 0 or loss_scaled:
      # Keras clips before its cross-replica sum; clip the summed gradient
      # instead and hand each replica 1/R of it for Keras to sum again.
      # With loss scaling every replica then holds the same gradients, so
      # the LossScaleOptimizer's finite check (it skips steps with Inf/NaN
      # gradients) agrees across replicas, and the clip unscales them first
      # and rescales them after (precision.clip_by_global_norm).
      context = tf.distribute.get_replica_context()
      grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
      if clip_norm > 0:
        grads = precision.clip_by_global_norm(optimizer, grads, clip_norm)
      grads = [g / self.num_replicas for g in grads]
    optimizer.apply_gradients(zip(grads, variables))

  def _train_loop_eager(self, iterator, num_steps):
    """Runs up to `num_steps` steps; stops early at a non-finite loss.

    Returns:
      `(means, steps_done, bad_step)`: metric means over the steps done,
      how many were done, and the step whose loss was not finite (-1 if
      none).
    """
    sums = {name: tf.constant(0.0) for name in self.metrics_names}
    done = tf.constant(0, tf.int64)
    bad_step = tf.constant(-1, tf.int64)
    for _ in tf.range(num_steps):
      per_replica = self.strategy.run(self._replica_step,
                                      args=(next(iterator),))
      metrics = {name: self.strategy.reduce(tf.distribute.ReduceOp.SUM,
                                            per_replica[name], axis=None)
                 for name in self.metrics_names}
      if not tf.math.is_finite(metrics["loss"]):
        bad_step = self.step.read_value()
        break
      sums = {name: sums[name] + metrics[name] for name in self.metrics_names}
      self.step.assign_add(1)
      done += 1
    count = tf.maximum(tf.cast(done, tf.float32), 1.0)
    return ({name: sums[name] / count for name in self.metrics_names}, done,
            bad_step)

  # ---- The loop ------------------------------------------------------------

  def fit(self):
    """Trains from the current step to `total_steps`.

    Writes summaries under `model_dir/train` and `model_dir/eval`, validates
    and checkpoints at the end of each epoch (and every `checkpoint_steps`).

    Returns:
      Dict of the last epoch's validation metrics (empty if none ran).

    Raises:
      TrainingError: when the loss becomes NaN or Inf; the last checkpoint
        is left as it was.
    """
    began_fit = time.perf_counter()
    try:
      return self._fit()
    finally:
      self.train_seconds = time.perf_counter() - began_fit

  def _fit(self):
    """`fit` without its timing."""
    train = self.config.train
    start = int(self.step.numpy())
    if start >= self.total_steps:
      return {}

    def dataset_fn(input_context):
      return pipeline.train_dataset(
          self.data.train_x, self.data.train_y, batch_size=train.batch_size,
          seed=train.seed, start_step=start, total_steps=self.total_steps,
          binarized=self.binarized, shuffle_buffer=self.config.data
          .shuffle_buffer, input_context=input_context)

    iterator = iter(self.strategy.distribute_datasets_from_function(
        dataset_fn))
    train_writer = self.summary_writer("train")
    eval_writer = self.summary_writer("eval")
    timed_images, timed_seconds, first_call = 0, 0.0, True
    validation = {}
    interactive = train.progress and sys.stdout.isatty()
    while int(self.step.numpy()) < self.total_steps:
      step = int(self.step.numpy())
      epoch = step // self.steps_per_epoch
      epoch_end = min((epoch + 1) * self.steps_per_epoch, self.total_steps)
      if interactive:
        total_epochs = -(-self.total_steps // self.steps_per_epoch)
        print(f"Epoch {epoch + 1}/{total_epochs}")
      progress = keras.utils.Progbar(
          epoch_end - epoch * self.steps_per_epoch,
          verbose=1 if interactive else 0,
          stateful_metrics=self.metrics_names + ("kl_weight", "img/s"))
      progress.update(step - epoch * self.steps_per_epoch)
      while step < epoch_end:
        num_steps = min(train.steps_per_loop, epoch_end - step)
        if train.checkpoint_steps:
          num_steps = min(num_steps, train.checkpoint_steps
                          - step % train.checkpoint_steps)
        began = time.perf_counter()
        try:
          means, done, bad_step = self._train_loop(
              iterator, tf.constant(num_steps, tf.int64))
        except tf.errors.OpError as e:
          error = pipeline.describe_read_error(self.data.train_x, e)
          if error is None and isinstance(self.strategy, tf.distribute
                                          .MultiWorkerMirroredStrategy):
            error = strategy_lib.WorkerLostError(
                f"Training stopped at step {int(self.step.numpy())}: "
                f"another worker stopped answering ({type(e).__name__}); "
                "the last "
                f"checkpoint ({self.manager.latest_checkpoint or 'none'}) is "
                "intact. Run the same command on every worker to resume.")
          if error is None:
            raise
          raise error from e
        means = {name: float(value) for name, value in means.items()}
        elapsed = time.perf_counter() - began
        if int(bad_step) >= 0:
          raise TrainingError(
              f"The loss became NaN or Inf at step {int(bad_step)}; the last "
              f"checkpoint ({self.manager.latest_checkpoint or 'none'}) is "
              "intact. Lower --learning_rate or set --clip_norm, then run "
              "again to resume.")
        step += int(done)
        images_per_second = int(done) * train.batch_size / elapsed
        if not first_call:  # The first call includes tracing.
          timed_images += int(done) * train.batch_size
          timed_seconds += elapsed
        first_call = False
        kl_weight = float(self.kl_weight(tf.constant(step - 1, tf.int64)))
        with train_writer.as_default(step=step):
          for name, value in means.items():
            tf.summary.scalar(name, value)
          tf.summary.scalar("kl_weight", kl_weight)
          tf.summary.scalar("learning_rate",
                            float(self.optimizer.learning_rate.numpy()))
          tf.summary.scalar("images_per_second", images_per_second)
        progress.update(step - epoch * self.steps_per_epoch, [
            *means.items(), ("kl_weight", kl_weight),
            ("img/s", images_per_second)])
        if train.checkpoint_steps and step % train.checkpoint_steps == 0:
          self.save()
      validation = self.validate(eval_writer)
      self.save()
      if timed_seconds:
        self.train_images_per_second = timed_images / timed_seconds
      if not interactive:
        shown = "  ".join(f"{name} {value:.3f}"
                          for name, value in means.items())
        logging.info(
            "epoch %d step %d/%d  %s  val %s %.3f  %s img/s", epoch + 1, step,
            self.total_steps, shown, self.validation_metric,
            validation.get(self.validation_metric, float("nan")),
            f"{self.train_images_per_second:.0f}"
            if self.train_images_per_second else "-")
    if timed_seconds:
      self.train_images_per_second = timed_images / timed_seconds
    return validation

  def summary_writer(self, name):
    """A writer for `model_dir/<name>`; a no-op one on non-chief workers."""
    if not self.is_chief:
      return tf.summary.create_noop_writer()
    return tf.summary.create_file_writer(
        os.path.join(self.config.train.model_dir, name))

  def validate(self, writer):
    """Single-sample ELBO on the validation split, written as summaries.

    Only the chief validates (its results are summaries and log lines).
    """
    if not len(self.data.validation_x) or not self.is_chief:
      return {}
    dataset = pipeline.eval_dataset(
        self.data.validation_x, self.data.validation_y,
        batch_size=self.config.eval.eval_batch_size, binarized=self.binarized,
        binarization_seed=self.config.eval.test_binarization_seed)
    results = self.evaluator.evaluate(dataset, iw_samples=0)
    with writer.as_default(step=int(self.step.numpy())):
      for name in ("neg_elbo", "distortion", "rate", "reconstruction_mse"):
        if results.get(name) is not None:
          tf.summary.scalar(f"validation/{name}", results[name])
      tf.summary.scalar("validation/active_units", results["active_units"])
    return results


def _without(variables, excluded):
  """`variables` less those in `excluded` (by identity), in order."""
  excluded_ids = {id(v) for v in excluded}
  return [v for v in variables if id(v) not in excluded_ids]
