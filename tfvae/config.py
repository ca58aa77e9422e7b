"""Frozen configuration dataclasses; the single source of truth for a run.

Library code takes these configs, never absl flags, so tests can build a run
directly. `tfvae.flags` defines one flag per field (same names) and
`from_flags` turns parsed flags into a `RunConfig`.
"""

import dataclasses
import os
from typing import Optional, Tuple

from tfvae.errors import ConfigError

LIKELIHOODS = ("bernoulli", "gaussian", "tabular", "discretized_logistic")
NETWORKS = ("mlp", "conv")
ACTIVATIONS = ("relu", "leaky_relu")
KL_SCHEDULES = ("constant", "linear", "sigmoid", "cyclical")
STRATEGIES = ("default", "mirrored", "multi_worker")
MIXED_PRECISIONS = ("none", "mixed_float16", "mixed_bfloat16")
TFLITE_QUANTIZATIONS = ("none", "float16", "dynamic_int8")
CONDITIONINGS = ("add", "concat")
PRIORS = ("normal", "mixture", "vamp")
FLOWS = ("none", "iaf")
MMD_KERNELS = ("rbf", "imq")
SAMPLERS = ("prior", "gmm")
DIP_TYPES = ("i", "ii")
DISENTANGLEMENT_METRICS = ("beta_vae", "factor_vae", "mig", "dci", "sap")


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Which data to read and how to prepare it.

  Attributes:
    dataset: registered dataset name (`tfvae.data.sources.DATASETS`).
    data_dir: a folder to look in first (for `npz`, the `.npz` file or a
      folder holding `train.npz`/`test.npz`; for `image_folder`, its root).
    image_size: side of the square images `image_folder` resizes/crops to.
    validation_fraction: share of the training split held out for validation.
    test_fraction: share held out as test set when a source has no test split.
    binarize: binarize images for Bernoulli likelihoods (dynamically for
      training, once with a fixed seed for evaluation).
    download: try `keras.datasets` when nothing is found locally.
    categorical_columns: `csv` columns read as categories (strings or
      integers); their vocabulary comes from the training split.
    label_column: `csv` column holding class labels (not a model input).
    max_in_memory_mb: `image_folder` decodes its images into memory up to
      this size and streams them from disk (decoding in the input pipeline)
      above it; None means a quarter of the machine's memory, 0 always
      streams.
    shuffle_buffer: `tfrecord`: records shuffled together in one window of
      the streamed training order (see `tfvae.data.streams`).
    shapes_samples: `shapes`: images drawn (seeded, without replacement)
      from the full factor grid; 0 renders the whole grid.
    shapes_color: `shapes`: add the sprite's colour as a factor (RGB
      images).
    shapes_background: `shapes`: add the background's brightness as a
      factor.
  """
  dataset: str = "fashion_mnist"
  data_dir: Optional[str] = None
  image_size: int = 64
  validation_fraction: float = 0.1
  test_fraction: float = 0.2
  binarize: bool = True
  download: bool = True
  categorical_columns: Tuple[str, ...] = ()
  label_column: Optional[str] = None
  max_in_memory_mb: Optional[int] = None
  shuffle_buffer: int = 10_000
  shapes_samples: int = 100_000
  shapes_color: bool = False
  shapes_background: bool = False


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """The model: variant, networks, latent space and likelihood.

  Attributes:
    model: registered model name (`tfvae.models.registry`).
    latent_dim: number of latent dimensions.
    encoder: encoder network, one of `NETWORKS`.
    decoder: decoder network, one of `NETWORKS`.
    hidden_dims: MLP layer widths or conv channels per stride-2 block, input
      side first; empty means the network's default for the image size.
    activation: hidden activation, one of `ACTIVATIONS`; None means the
      network's default (`relu` for `mlp`, `leaky_relu` for `conv`).
    batch_norm: batch normalization after hidden layers; None means the
      network's default (off for `mlp`, on for `conv`).
    dropout: dropout rate after hidden MLP layers.
    likelihood: p(x|z) family, one of `LIKELIHOODS`; `tabular` is one
      likelihood per column of vector data (Gaussian, Bernoulli or
      categorical); `discretized_logistic` is the mixture of discretized
      logistics of Salimans et al. (2017) over 8-bit pixel values.
    logistic_mixtures: components of the discretized logistic mixture (1:
      a single discretized logistic).
    gaussian_scale: fixed (or initial, when learned) per-pixel std. deviation
      of the Gaussian likelihood.
    learn_gaussian_scale: learn a per-pixel scale instead of fixing it.
    beta: weight of the KL term (`beta_vae`; 1 is the plain ELBO).
    capacity_max: Burgess et al. (2018) target KL in nats; 0 disables it.
    capacity_steps: steps over which the capacity grows linearly to its max.
    gamma: weight of |KL - C| when capacity annealing is on.
    free_bits: minimum KL in nats per latent dimension (Kingma et al. 2016);
      0 disables it.
    iw_samples: importance samples k of the `iwae` objective.
    conditioning: how `cvae` feeds labels: `add` (a learned projection of
      the label added to z and to the encoder's features) or `concat` (the
      one-hot label concatenated to the encoder's and decoder's inputs).
    prior: p(z) of Gaussian-latent models, one of `PRIORS`.
    prior_components: mixture components, or VampPrior pseudo-inputs.
    posterior_flow: flow on q(z|x), one of `FLOWS`.
    flow_layers: number of flow layers.
    flow_hidden_dims: hidden widths of each flow layer's autoregressive net.
    mmd_weight: lambda of the MMD term of `info_vae`.
    mmd_kernel: `rbf` or `imq` kernel of the MMD.
    info_alpha: InfoVAE's alpha: the KL term is weighted by 1 - alpha
      (0: the ELBO plus the MMD term; 1: the MMD-VAE, no KL).
    num_embeddings: `vq_vae` codebook size.
    embedding_dim: `vq_vae` code vector size.
    commitment_cost: `vq_vae` commitment loss weight.
    vq_ema_decay: EMA codebook updates with this decay; 0 learns the
      codebook by gradient (codebook loss).
    code_prior_layers: layers of `vq_vae`'s autoregressive code prior.
    code_prior_channels: channels of `vq_vae`'s autoregressive code prior.
    latent_layers: `hvae`: number of stochastic layers L.
    latent_dims: `hvae`: latent dimensions per layer, bottom (closest to x)
      first; empty means `latent_dim` in every layer.
    categorical_latents: `categorical_vae`: number of categorical variables.
    categories: `categorical_vae`: classes of each categorical variable.
    temperature_start: `categorical_vae`: Gumbel-softmax temperature at step
      0.
    temperature_min: `categorical_vae`: the temperature's floor.
    temperature_anneal_rate: `categorical_vae`: the temperature is
      max(temperature_min, temperature_start * exp(-rate * step)).
    continuous_latent_dim: `categorical_vae`: Gaussian latents beside the
      categorical code (JointVAE, Dupont 2018); 0 for none.
    continuous_capacity_max: `categorical_vae` with continuous latents:
      target KL of the continuous code in nats (JointVAE capacity, grown over
      `capacity_steps`, weighted by `gamma`); 0 uses the plain KL.
    categorical_capacity_max: `categorical_vae`: target KL of the
      categorical code in nats, as above; 0 uses the plain KL.
    sampler: how `sample` draws codes: `prior` (from p(z)) or `gmm` (a
      Gaussian mixture fitted to the training codes after training, Ghosh et
      al. 2020); None means the model's default (`gmm` for `ae`, else
      `prior`).
    sampler_components: components K of the `gmm` sampler.
    tc_weight: `factor_vae`: weight gamma of the total-correlation term
      estimated by the discriminator.
    dip_type: `dip_vae`: `i` (covariance of the posterior means) or `ii`
      (plus the mean posterior variance).
    dip_lambda_od: `dip_vae`: weight of the off-diagonal covariance penalty.
    dip_lambda_d: `dip_vae`: weight of the diagonal (to 1) penalty.
    adversarial_weight: `aae`: weight of the encoder's adversarial loss
      (fooling the code discriminator).
    gan_weight: `vae_gan`: weight of the decoder's GAN loss.
    pixel_weight: `vae_gan`: weight of the pixel likelihood beside the
      discriminator-feature reconstruction term (0: Larsen et al.'s loss).
    discriminator_hidden_dims: widths of an MLP discriminator or channels of
      a conv one; empty means the model's default.
    discriminator_learning_rate: Adam learning rate of the discriminator;
      None means the model's default (1e-4 for `factor_vae`, as Kim & Mnih,
      and `vae_gan`; 1e-3 for `aae`, whose discriminator must keep pace with
      the encoder).
  """
  model: str = "vae"
  latent_dim: int = 20
  encoder: str = "mlp"
  decoder: str = "mlp"
  hidden_dims: Tuple[int, ...] = ()
  activation: Optional[str] = None
  batch_norm: Optional[bool] = None
  dropout: float = 0.0
  likelihood: str = "bernoulli"
  gaussian_scale: float = 0.1
  learn_gaussian_scale: bool = False
  beta: float = 1.0
  capacity_max: float = 0.0
  capacity_steps: int = 100_000
  gamma: float = 1000.0
  free_bits: float = 0.0
  iw_samples: int = 5
  conditioning: str = "concat"
  prior: str = "normal"
  prior_components: int = 50
  posterior_flow: str = "none"
  flow_layers: int = 2
  flow_hidden_dims: Tuple[int, ...] = (64, 64)
  mmd_weight: float = 100.0
  mmd_kernel: str = "imq"
  info_alpha: float = 0.0
  num_embeddings: int = 64
  embedding_dim: int = 16
  commitment_cost: float = 0.25
  vq_ema_decay: float = 0.0
  code_prior_layers: int = 4
  code_prior_channels: int = 64
  logistic_mixtures: int = 1
  latent_layers: int = 2
  latent_dims: Tuple[int, ...] = ()
  categorical_latents: int = 10
  categories: int = 10
  temperature_start: float = 1.0
  temperature_min: float = 0.5
  temperature_anneal_rate: float = 3e-5
  continuous_latent_dim: int = 0
  continuous_capacity_max: float = 0.0
  categorical_capacity_max: float = 0.0
  sampler: Optional[str] = None
  sampler_components: int = 10
  tc_weight: float = 10.0
  dip_type: str = "i"
  dip_lambda_od: float = 10.0
  dip_lambda_d: float = 100.0
  adversarial_weight: float = 10.0
  gan_weight: float = 1.0
  pixel_weight: float = 1.0
  discriminator_hidden_dims: Tuple[int, ...] = ()
  discriminator_learning_rate: Optional[float] = None


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """The optimization loop.

  Attributes:
    model_dir: where checkpoints, summaries, metrics and images go.
    epochs: passes over the training split (used when `train_steps` is 0).
    train_steps: total optimizer steps; wins over `epochs` when positive.
    batch_size: global batch size (split across replicas).
    learning_rate: Adam learning rate.
    clip_norm: clip gradients to this global norm; 0 disables clipping.
    weight_decay: decoupled (AdamW-style) weight decay; 0 disables it.
    seed: seeds initialization, data order, binarization and sampling.
    strategy: `default` (one device), `mirrored` (all local devices) or
      `multi_worker` (`MultiWorkerMirroredStrategy` over the hosts that
      `TF_CONFIG` names).
    worker_timeout_s: with `multi_worker`, how long a worker waits for the
      others to come up before it gives up.
    mixed_precision: Keras dtype policy of the networks: `none` (float32),
      `mixed_float16` (with loss scaling) or `mixed_bfloat16`.
    steps_per_loop: optimizer steps run inside one `tf.function` call.
    jit_compile: compile the training step with XLA.
    kl_schedule: KL weight schedule, one of `KL_SCHEDULES`.
    kl_warmup_steps: steps of the linear/sigmoid warm-up.
    kl_cycles: number of cycles of the cyclical schedule.
    kl_cycle_ratio: share of each cycle spent increasing the weight.
    restart: discard existing checkpoints and start over.
    progress: show a progress bar (only when stdout is a terminal).
    checkpoints_to_keep: how many checkpoints `CheckpointManager` keeps.
    checkpoint_steps: also save every this many steps; 0 saves at the end
      of each epoch only.
  """
  model_dir: str = "runs/default"
  epochs: int = 10
  train_steps: int = 0
  batch_size: int = 128
  learning_rate: float = 1e-3
  clip_norm: float = 0.0
  weight_decay: float = 0.0
  seed: int = 0
  strategy: str = "default"
  worker_timeout_s: int = 300
  mixed_precision: str = "none"
  steps_per_loop: int = 50
  jit_compile: bool = False
  kl_schedule: str = "constant"
  kl_warmup_steps: int = 10_000
  kl_cycles: int = 4
  kl_cycle_ratio: float = 0.5
  restart: bool = False
  progress: bool = True
  checkpoints_to_keep: int = 3
  checkpoint_steps: int = 0


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """Evaluation of the trained model.

  Attributes:
    eval_iw_samples: importance samples k of the final log p(x) estimate.
    eval_batch_size: test examples per evaluation batch.
    eval_max_examples: evaluate on at most this many test examples (0: all).
    test_binarization_seed: the fixed seed that binarizes the test set once,
      the same for every run so numbers are comparable.
    images: write PNG grids and image summaries.
    frechet_samples: the classifier-feature Frechet distance between this
      many model samples and as many real test images (labelled image data
      only; `tfvae.evaluation.sample_quality`); 0 skips it.
    feature_classifier_dir: where the feature classifier is saved and found
      again (keyed by the training data); None means
      `<model_dir>/feature_classifier`.
    disentanglement_metrics: names from `DISENTANGLEMENT_METRICS` computed
      on data with known factors (`shapes`); None means all of them there
      and none elsewhere; asking for one on data without factors is an
      error.
    disentanglement_samples: examples drawn for the metrics (training points
      of the classifiers; the held-out and voting sets scale with it).
  """
  eval_iw_samples: int = 1000
  eval_batch_size: int = 500
  eval_max_examples: int = 0
  test_binarization_seed: int = 0
  images: bool = True
  frechet_samples: int = 10_000
  feature_classifier_dir: Optional[str] = None
  disentanglement_metrics: Optional[Tuple[str, ...]] = None
  disentanglement_samples: int = 10_000


@dataclasses.dataclass(frozen=True)
class ExportConfig:
  """Where and how the trained model is exported.

  Attributes:
    export: export after training.
    export_dir: TF Serving model base path; default `saved_models/<run name>`.
    tflite_quantization: `none`, `float16` or `dynamic_int8`.
  """
  export: bool = True
  export_dir: Optional[str] = None
  tflite_quantization: str = "none"

  def resolved_export_dir(self, run_name):
    """`export_dir`, or `saved_models/<run_name>` when unset."""
    return self.export_dir or os.path.join("saved_models", run_name)


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """Everything one `train.py` run needs."""
  data: DataConfig = DataConfig()
  model: ModelConfig = ModelConfig()
  train: TrainConfig = TrainConfig()
  eval: EvalConfig = EvalConfig()
  export: ExportConfig = ExportConfig()

  def validate(self) -> "RunConfig":
    """Checks values and combinations a flag validator cannot see alone.

    Returns:
      self, for chaining.

    Raises:
      ConfigError: naming the flag and the fix.
    """
    _check_choice("likelihood", self.model.likelihood, LIKELIHOODS)
    _check_choice("encoder", self.model.encoder, NETWORKS)
    _check_choice("decoder", self.model.decoder, NETWORKS)
    if self.model.activation is not None:
      _check_choice("activation", self.model.activation, ACTIVATIONS)
    _check_choice("kl_schedule", self.train.kl_schedule, KL_SCHEDULES)
    _check_choice("strategy", self.train.strategy, STRATEGIES)
    _check_choice("mixed_precision", self.train.mixed_precision,
                  MIXED_PRECISIONS)
    _check_choice("tflite_quantization", self.export.tflite_quantization,
                  TFLITE_QUANTIZATIONS)
    _check_choice("conditioning", self.model.conditioning, CONDITIONINGS)
    _check_choice("prior", self.model.prior, PRIORS)
    _check_choice("posterior_flow", self.model.posterior_flow, FLOWS)
    _check_choice("mmd_kernel", self.model.mmd_kernel, MMD_KERNELS)
    if self.model.sampler is not None:
      _check_choice("sampler", self.model.sampler, SAMPLERS)
    _check_choice("dip_type", self.model.dip_type, DIP_TYPES)
    for name in self.eval.disentanglement_metrics or ():
      if name not in DISENTANGLEMENT_METRICS:
        raise ConfigError(
            f"--disentanglement_metrics={name!r} is not a metric; choose "
            f"from: {', '.join(DISENTANGLEMENT_METRICS)}.")
    positive = {
        "latent_dim": self.model.latent_dim,
        "batch_size": self.train.batch_size,
        "learning_rate": self.train.learning_rate,
        "steps_per_loop": self.train.steps_per_loop,
        "eval_iw_samples": self.eval.eval_iw_samples,
        "eval_batch_size": self.eval.eval_batch_size,
        "gaussian_scale": self.model.gaussian_scale,
        "kl_cycles": self.train.kl_cycles,
        "checkpoints_to_keep": self.train.checkpoints_to_keep,
        "image_size": self.data.image_size,
        "capacity_steps": self.model.capacity_steps,
        "iw_samples": self.model.iw_samples,
        "prior_components": self.model.prior_components,
        "flow_layers": self.model.flow_layers,
        "num_embeddings": self.model.num_embeddings,
        "embedding_dim": self.model.embedding_dim,
        "code_prior_layers": self.model.code_prior_layers,
        "code_prior_channels": self.model.code_prior_channels,
        "shuffle_buffer": self.data.shuffle_buffer,
        "worker_timeout_s": self.train.worker_timeout_s,
        "logistic_mixtures": self.model.logistic_mixtures,
        "latent_layers": self.model.latent_layers,
        "categorical_latents": self.model.categorical_latents,
        "categories": self.model.categories,
        "temperature_start": self.model.temperature_start,
        "temperature_min": self.model.temperature_min,
        "sampler_components": self.model.sampler_components,
        "discriminator_learning_rate":
            1.0 if self.model.discriminator_learning_rate is None
            else self.model.discriminator_learning_rate,
        "disentanglement_samples": self.eval.disentanglement_samples,
    }
    for name, value in positive.items():
      if not value > 0:
        raise ConfigError(f"--{name}={value} must be positive.")
    non_negative = {
        "epochs": self.train.epochs,
        "train_steps": self.train.train_steps,
        "clip_norm": self.train.clip_norm,
        "weight_decay": self.train.weight_decay,
        "kl_warmup_steps": self.train.kl_warmup_steps,
        "free_bits": self.model.free_bits,
        "beta": self.model.beta,
        "capacity_max": self.model.capacity_max,
        "gamma": self.model.gamma,
        "mmd_weight": self.model.mmd_weight,
        "commitment_cost": self.model.commitment_cost,
        "eval_max_examples": self.eval.eval_max_examples,
        "seed": self.train.seed,
        "checkpoint_steps": self.train.checkpoint_steps,
        "max_in_memory_mb": self.data.max_in_memory_mb or 0,
        "temperature_anneal_rate": self.model.temperature_anneal_rate,
        "continuous_latent_dim": self.model.continuous_latent_dim,
        "continuous_capacity_max": self.model.continuous_capacity_max,
        "categorical_capacity_max": self.model.categorical_capacity_max,
        "frechet_samples": self.eval.frechet_samples,
        "shapes_samples": self.data.shapes_samples,
        "tc_weight": self.model.tc_weight,
        "dip_lambda_od": self.model.dip_lambda_od,
        "dip_lambda_d": self.model.dip_lambda_d,
        "adversarial_weight": self.model.adversarial_weight,
        "gan_weight": self.model.gan_weight,
        "pixel_weight": self.model.pixel_weight,
    }
    for name, value in non_negative.items():
      if value < 0:
        raise ConfigError(f"--{name}={value} must be >= 0.")
    if self.data.dataset != "shapes":
      for name in ("shapes_samples", "shapes_color", "shapes_background"):
        value = getattr(self.data, name)
        if value != getattr(DataConfig, name):
          flag = (f"--{'' if value else 'no'}{name}"
                  if isinstance(value, bool) else f"--{name}={value}")
          raise ConfigError(
              f"{flag} applies to --dataset=shapes only, not "
              f"--dataset={self.data.dataset}; drop it or pass "
              "--dataset=shapes.")
    if not 0 <= self.model.vq_ema_decay < 1:
      raise ConfigError(f"--vq_ema_decay={self.model.vq_ema_decay} must be in "
                        "[0, 1).")
    if any(d <= 0 for d in self.model.flow_hidden_dims):
      raise ConfigError("--flow_hidden_dims must be positive integers, e.g. "
                        "--flow_hidden_dims=64,64.")
    if any(d <= 0 for d in self.model.latent_dims):
      raise ConfigError(
          f"--latent_dims={','.join(map(str, self.model.latent_dims))} "
          "must be positive integers, e.g. --latent_dims=32,16.")
    if (self.model.logistic_mixtures != 1
        and self.model.likelihood != "discretized_logistic"):
      raise ConfigError(
          f"--logistic_mixtures={self.model.logistic_mixtures} applies to "
          "--likelihood=discretized_logistic only; drop it or set that "
          "likelihood.")
    if self.model.temperature_min > self.model.temperature_start:
      raise ConfigError(
          f"--temperature_min={self.model.temperature_min} is above "
          f"--temperature_start={self.model.temperature_start}; the "
          "temperature anneals down to its floor.")
    if any(d <= 0 for d in self.model.discriminator_hidden_dims):
      raise ConfigError(
          "--discriminator_hidden_dims must be positive integers, e.g. "
          "--discriminator_hidden_dims=1000,1000.")
    if any(d <= 0 for d in self.model.hidden_dims):
      raise ConfigError(
          f"--hidden_dims={','.join(map(str, self.model.hidden_dims))} "
          "must be positive integers, e.g. --hidden_dims=512,256.")
    if not 0 <= self.model.info_alpha <= 1:
      raise ConfigError(f"--info_alpha={self.model.info_alpha} must be in "
                        "[0, 1].")
    for name, value in (("dropout", self.model.dropout),
                        ("validation_fraction", self.data.validation_fraction),
                        ("test_fraction", self.data.test_fraction),
                        ("kl_cycle_ratio", self.train.kl_cycle_ratio)):
      if not 0 <= value < 1:
        raise ConfigError(f"--{name}={value} must be in [0, 1).")
    if self.train.kl_schedule == "cyclical" and self.train.kl_cycle_ratio == 0:
      raise ConfigError(
          "--kl_cycle_ratio=0 gives a cyclical schedule that never rises; "
          "use a value in (0, 1), e.g. 0.5.")
    if self.train.epochs == 0 and self.train.train_steps == 0:
      raise ConfigError(
          "Nothing to train: set --epochs or --train_steps to a positive "
          "value.")
    return self

  @classmethod
  def from_dict(cls, values) -> "RunConfig":
    """The inverse of `dataclasses.asdict` (e.g. a saved config.json)."""
    sections = {field.name: field.type for field in dataclasses.fields(cls)}
    kwargs = {}
    for name, section in sections.items():
      section_cls = {"data": DataConfig, "model": ModelConfig,
                     "train": TrainConfig, "eval": EvalConfig,
                     "export": ExportConfig}[name]
      known = {f.name for f in dataclasses.fields(section_cls)}
      fields = {k: v for k, v in values.get(name, {}).items() if k in known}
      for name_of_tuple in ("hidden_dims", "flow_hidden_dims",
                            "latent_dims", "categorical_columns",
                            "discriminator_hidden_dims",
                            "disentanglement_metrics"):
        if fields.get(name_of_tuple) is not None:
          fields[name_of_tuple] = tuple(fields[name_of_tuple])
      kwargs[name] = section_cls(**fields)
    return cls(**kwargs)

  @property
  def run_name(self) -> str:
    """The last component of `model_dir`, used to name exports."""
    return os.path.basename(os.path.normpath(self.train.model_dir)) or "model"


def _check_choice(name, value, choices):
  if value not in choices:
    raise ConfigError(
        f"--{name}={value!r} is not one of: {', '.join(choices)}.")
