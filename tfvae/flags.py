"""absl flag definitions (one per config field, same names) and `from_flags`.

Single-flag checks (ranges, choices) are flag validators, so absl reports a
bad value as one line before anything runs; checks that involve several
values live in `RunConfig.validate`.
"""

import dataclasses

from absl import flags

from tfvae import config as config_lib

FLAGS = flags.FLAGS


def _positive(name, flag_values):
  flags.register_validator(name, lambda v: v is None or v > 0,
                           message=f"--{name} must be positive.",
                           flag_values=flag_values)


def _non_negative(name, flag_values):
  flags.register_validator(name, lambda v: v is None or v >= 0,
                           message=f"--{name} must be >= 0.",
                           flag_values=flag_values)


def define_flags(flag_values=FLAGS):
  """Defines every `train.py` flag on `flag_values`; safe to call twice.

  Args:
    flag_values: the `absl.flags.FlagValues` to define them on; default the
      process-wide `flags.FLAGS` (what `train.py` parses). A private
      `flags.FlagValues()` reads a flagfile without touching the global
      flags (`tfvae.config_from_flagfile`).
  """
  if "latent_dim" in flag_values:
    return
  # Data.
  flags.DEFINE_string("dataset", "fashion_mnist",
                      "mnist, fashion_mnist, cifar10, shapes, npz, image_folder, "
                      "csv or tfrecord.",
                      flag_values=flag_values)
  flags.DEFINE_string(
      "data_dir", None,
      "Folder to look in first for the dataset's files; for npz a .npz file "
      "or a folder with train.npz/test.npz; for image_folder its root.",
      flag_values=flag_values)
  flags.DEFINE_integer("image_size", 64,
                       "Side of the square images image_folder produces.",
                       flag_values=flag_values)
  flags.DEFINE_float("validation_fraction", 0.1,
                     "Share of the training split held out for validation.",
                     flag_values=flag_values)
  flags.DEFINE_float("test_fraction", 0.2,
                     "Share held out as test set when the source has none.",
                     flag_values=flag_values)
  flags.DEFINE_bool("binarize", True,
                    "Binarize images for Bernoulli likelihoods (dynamically "
                    "in training, once with a fixed seed for evaluation).",
                    flag_values=flag_values)
  flags.DEFINE_bool("download", True,
                    "Try keras.datasets when no local copy is found.",
                    flag_values=flag_values)
  flags.DEFINE_list("categorical_columns", [],
                    "csv: columns read as categories (e.g. colour,city).",
                    flag_values=flag_values)
  flags.DEFINE_string("label_column", None,
                      "csv: the column holding class labels.",
                      flag_values=flag_values)
  flags.DEFINE_integer(
      "max_in_memory_mb", None,
      "image_folder: decode images into memory up to this many MB, stream "
      "them from disk above it; default a quarter of RAM, 0 always streams.",
      flag_values=flag_values)
  flags.DEFINE_integer("shuffle_buffer", 10_000,
                       "tfrecord: records shuffled together per window of "
                       "the streamed training order.",
                       flag_values=flag_values)
  flags.DEFINE_integer("shapes_samples", 100_000,
                       "shapes: images drawn (seeded) from the full factor "
                       "grid; 0 renders the whole grid (737,280 images).",
                       flag_values=flag_values)
  flags.DEFINE_bool("shapes_color", False,
                    "shapes: the sprite's colour is a factor (RGB images).",
                    flag_values=flag_values)
  flags.DEFINE_bool("shapes_background", False,
                    "shapes: the background's brightness is a factor.",
                    flag_values=flag_values)
  # Model.
  flags.DEFINE_string("model", "vae", "Registered model variant.",
                      flag_values=flag_values)
  flags.DEFINE_integer("latent_dim", 20, "Number of latent dimensions.",
                       flag_values=flag_values)
  flags.DEFINE_enum("encoder", "mlp", config_lib.NETWORKS, "Encoder network.",
                    flag_values=flag_values)
  flags.DEFINE_enum("decoder", "mlp", config_lib.NETWORKS, "Decoder network.",
                    flag_values=flag_values)
  flags.DEFINE_list(
      "hidden_dims", [],
      "MLP widths or conv channels, input side first (e.g. 512,256); empty "
      "for the network's default.",
      flag_values=flag_values)
  flags.DEFINE_enum("activation", None, config_lib.ACTIVATIONS,
                    "Hidden activation; default relu (mlp), leaky_relu "
                    "(conv).",
                    flag_values=flag_values)
  flags.DEFINE_bool("batch_norm", None,
                    "Batch norm in hidden layers; default off (mlp), on "
                    "(conv).",
                    flag_values=flag_values)
  flags.DEFINE_float("dropout", 0.0, "Dropout rate after hidden MLP layers.",
                     flag_values=flag_values)
  flags.DEFINE_enum("likelihood", "bernoulli", config_lib.LIKELIHOODS,
                    "p(x|z): bernoulli (binary data), gaussian, tabular "
                    "(one likelihood per csv column) or "
                    "discretized_logistic (8-bit pixels, PixelCNN++ "
                    "mixture).",
                    flag_values=flag_values)
  flags.DEFINE_integer("logistic_mixtures", 1,
                       "discretized_logistic: mixture components (1: a "
                       "single discretized logistic).",
                       flag_values=flag_values)
  flags.DEFINE_float("gaussian_scale", 0.1,
                     "Fixed (or initial, if learned) Gaussian pixel std.",
                     flag_values=flag_values)
  flags.DEFINE_bool("learn_gaussian_scale", False,
                    "Learn one Gaussian scale per pixel.",
                    flag_values=flag_values)
  flags.DEFINE_float("beta", 1.0, "KL weight of beta_vae.",
                     flag_values=flag_values)
  flags.DEFINE_float("capacity_max", 0.0,
                     "beta_vae capacity C in nats (Burgess et al. 2018); 0 "
                     "disables capacity annealing.",
                     flag_values=flag_values)
  flags.DEFINE_integer("capacity_steps", 100_000,
                       "Steps over which the capacity grows to its max.",
                       flag_values=flag_values)
  flags.DEFINE_float("gamma", 1000.0, "Weight of |KL - C| with a capacity.",
                     flag_values=flag_values)
  flags.DEFINE_float("free_bits", 0.0,
                     "Minimum KL per latent dimension in nats; 0 disables.",
                     flag_values=flag_values)
  flags.DEFINE_integer("iw_samples", 5,
                       "Importance samples k of the iwae objective.",
                       flag_values=flag_values)
  flags.DEFINE_enum("conditioning", "concat", config_lib.CONDITIONINGS,
                    "cvae: add a label projection to z, or concatenate the "
                    "one-hot label to the encoder/decoder inputs.",
                    flag_values=flag_values)
  flags.DEFINE_enum("prior", "normal", config_lib.PRIORS,
                    "p(z): standard normal, a learned Gaussian mixture, or "
                    "the VampPrior.",
                    flag_values=flag_values)
  flags.DEFINE_integer("prior_components", 50,
                       "Mixture components or VampPrior pseudo-inputs.",
                       flag_values=flag_values)
  flags.DEFINE_enum("posterior_flow", "none", config_lib.FLOWS,
                    "Flow on q(z|x): none or inverse autoregressive flow.",
                    flag_values=flag_values)
  flags.DEFINE_integer("flow_layers", 2, "Number of flow layers.",
                       flag_values=flag_values)
  flags.DEFINE_list("flow_hidden_dims", ["64", "64"],
                    "Hidden widths of each flow layer's autoregressive net.",
                    flag_values=flag_values)
  flags.DEFINE_float("mmd_weight", 100.0, "info_vae: weight of the MMD.",
                     flag_values=flag_values)
  flags.DEFINE_enum("mmd_kernel", "imq", config_lib.MMD_KERNELS,
                    "info_vae: MMD kernel.",
                    flag_values=flag_values)
  flags.DEFINE_float("info_alpha", 0.0,
                     "info_vae: KL weighted by 1 - alpha (0: ELBO + MMD; 1: "
                     "MMD-VAE without KL).",
                     flag_values=flag_values)
  flags.DEFINE_integer("num_embeddings", 64, "vq_vae: codebook size.",
                       flag_values=flag_values)
  flags.DEFINE_integer("embedding_dim", 16, "vq_vae: code vector size.",
                       flag_values=flag_values)
  flags.DEFINE_float("commitment_cost", 0.25, "vq_vae: commitment weight.",
                     flag_values=flag_values)
  flags.DEFINE_float("vq_ema_decay", 0.0,
                     "vq_vae: EMA codebook updates with this decay; 0 "
                     "learns the codebook by gradient.",
                     flag_values=flag_values)
  flags.DEFINE_integer("code_prior_layers", 4,
                       "vq_vae: layers of the autoregressive code prior.",
                       flag_values=flag_values)
  flags.DEFINE_integer("code_prior_channels", 64,
                       "vq_vae: channels of the autoregressive code prior.",
                       flag_values=flag_values)
  flags.DEFINE_integer("latent_layers", 2,
                       "hvae: number of stochastic layers.",
                       flag_values=flag_values)
  flags.DEFINE_list("latent_dims", [],
                    "hvae: latent dimensions per layer, bottom first (e.g. "
                    "32,16); empty: --latent_dim in every layer.",
                    flag_values=flag_values)
  flags.DEFINE_integer("categorical_latents", 10,
                       "categorical_vae: number of categorical variables.",
                       flag_values=flag_values)
  flags.DEFINE_integer("categories", 10,
                       "categorical_vae: classes per categorical variable.",
                       flag_values=flag_values)
  flags.DEFINE_float("temperature_start", 1.0,
                     "categorical_vae: Gumbel-softmax temperature at step 0.",
                     flag_values=flag_values)
  flags.DEFINE_float("temperature_min", 0.5,
                     "categorical_vae: floor of the temperature.",
                     flag_values=flag_values)
  flags.DEFINE_float("temperature_anneal_rate", 3e-5,
                     "categorical_vae: temperature = max(min, start * "
                     "exp(-rate * step)).",
                     flag_values=flag_values)
  flags.DEFINE_integer("continuous_latent_dim", 0,
                       "categorical_vae: Gaussian latents beside the "
                       "categorical code (JointVAE); 0 for none.",
                       flag_values=flag_values)
  flags.DEFINE_float("continuous_capacity_max", 0.0,
                     "categorical_vae: JointVAE capacity of the continuous "
                     "code in nats; 0 uses the plain KL.",
                     flag_values=flag_values)
  flags.DEFINE_float("categorical_capacity_max", 0.0,
                     "categorical_vae: JointVAE capacity of the categorical "
                     "code in nats; 0 uses the plain KL.",
                     flag_values=flag_values)
  flags.DEFINE_enum("sampler", None, config_lib.SAMPLERS,
                    "How sample draws codes: prior, or gmm (a Gaussian "
                    "mixture fitted to the training codes after training); "
                    "default gmm for ae, prior otherwise.",
                    flag_values=flag_values)
  flags.DEFINE_integer("sampler_components", 10,
                       "gmm sampler: mixture components.",
                       flag_values=flag_values)
  flags.DEFINE_float("tc_weight", 10.0,
                     "factor_vae: weight of the discriminator's total "
                     "correlation estimate.",
                     flag_values=flag_values)
  flags.DEFINE_enum("dip_type", "i", config_lib.DIP_TYPES,
                    "dip_vae: i (covariance of the posterior means) or ii "
                    "(plus the mean posterior variance).",
                    flag_values=flag_values)
  flags.DEFINE_float("dip_lambda_od", 10.0,
                     "dip_vae: weight of the off-diagonal covariance "
                     "penalty.",
                     flag_values=flag_values)
  flags.DEFINE_float("dip_lambda_d", 100.0,
                     "dip_vae: weight of the diagonal (to 1) penalty.",
                     flag_values=flag_values)
  flags.DEFINE_float("adversarial_weight", 10.0,
                     "aae: weight of the encoder's adversarial loss.",
                     flag_values=flag_values)
  flags.DEFINE_float("gan_weight", 1.0,
                     "vae_gan: weight of the decoder's GAN loss.",
                     flag_values=flag_values)
  flags.DEFINE_float("pixel_weight", 1.0,
                     "vae_gan: weight of the pixel likelihood beside the "
                     "discriminator-feature term (0: Larsen et al.).",
                     flag_values=flag_values)
  flags.DEFINE_list("discriminator_hidden_dims", [],
                    "Discriminator MLP widths or conv channels; empty for "
                    "the model's default.",
                    flag_values=flag_values)
  flags.DEFINE_float("discriminator_learning_rate", None,
                     "Adam learning rate of the discriminator; default "
                     "1e-4 (factor_vae, vae_gan) or 1e-3 (aae).",
                     flag_values=flag_values)
  # Training.
  flags.DEFINE_string("model_dir", "runs/default",
                      "Checkpoints, summaries, metrics and images go here.",
                      flag_values=flag_values)
  flags.DEFINE_integer("epochs", 10, "Passes over the training split.",
                       flag_values=flag_values)
  flags.DEFINE_integer("train_steps", 0,
                       "Total optimizer steps; wins over --epochs if > 0.",
                       flag_values=flag_values)
  flags.DEFINE_integer("batch_size", 128, "Global batch size.",
                       flag_values=flag_values)
  flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.",
                     flag_values=flag_values)
  flags.DEFINE_float("clip_norm", 0.0,
                     "Clip gradients to this global norm; 0 disables.",
                     flag_values=flag_values)
  flags.DEFINE_float("weight_decay", 0.0,
                     "Decoupled weight decay; 0 disables.",
                     flag_values=flag_values)
  flags.DEFINE_integer("seed", 0, "Seed of initialization, data and noise.",
                       flag_values=flag_values)
  flags.DEFINE_enum("strategy", "default", config_lib.STRATEGIES,
                    "tf.distribute strategy: default (one device), mirrored "
                    "(local GPUs/CPUs) or multi_worker (hosts from "
                    "TF_CONFIG).",
                    flag_values=flag_values)
  flags.DEFINE_integer("worker_timeout_s", 300,
                       "multi_worker: seconds a worker waits for the others.",
                       flag_values=flag_values)
  flags.DEFINE_enum("mixed_precision", "none", config_lib.MIXED_PRECISIONS,
                    "Network compute dtype: none (float32), mixed_float16 "
                    "(GPUs, with loss scaling) or mixed_bfloat16 (TPUs, "
                    "recent GPUs and CPUs).",
                    flag_values=flag_values)
  flags.DEFINE_integer("steps_per_loop", 50,
                       "Optimizer steps per tf.function call.",
                       flag_values=flag_values)
  flags.DEFINE_bool("jit_compile", False,
                    "Compile the forward/backward pass with XLA.",
                    flag_values=flag_values)
  flags.DEFINE_enum("kl_schedule", "constant", config_lib.KL_SCHEDULES,
                    "KL weight schedule.",
                    flag_values=flag_values)
  flags.DEFINE_integer("kl_warmup_steps", 10_000,
                       "Steps of the linear/sigmoid KL warm-up.",
                       flag_values=flag_values)
  flags.DEFINE_integer("kl_cycles", 4, "Cycles of the cyclical schedule.",
                       flag_values=flag_values)
  flags.DEFINE_float("kl_cycle_ratio", 0.5,
                     "Share of each cycle spent increasing the KL weight.",
                     flag_values=flag_values)
  flags.DEFINE_bool("restart", False,
                    "Discard this model_dir's checkpoints and start over.",
                    flag_values=flag_values)
  flags.DEFINE_bool("progress", True,
                    "Show a progress bar when stdout is a terminal.",
                    flag_values=flag_values)
  flags.DEFINE_integer("checkpoints_to_keep", 3, "Checkpoints kept.",
                       flag_values=flag_values)
  flags.DEFINE_integer("checkpoint_steps", 0,
                       "Also checkpoint every N steps; 0: once per epoch.",
                       flag_values=flag_values)
  # Evaluation.
  flags.DEFINE_integer("eval_iw_samples", 1000,
                       "Importance samples k of the final -log p(x).",
                       flag_values=flag_values)
  flags.DEFINE_integer("eval_batch_size", 500, "Test examples per batch.",
                       flag_values=flag_values)
  flags.DEFINE_integer("eval_max_examples", 0,
                       "Evaluate on at most this many test examples; 0: all.",
                       flag_values=flag_values)
  flags.DEFINE_integer("test_binarization_seed", 0,
                       "Fixed seed binarizing the test set once.",
                       flag_values=flag_values)
  flags.DEFINE_bool("images", True, "Write PNG grids and image summaries.",
                    flag_values=flag_values)
  flags.DEFINE_integer(
      "frechet_samples", 10_000,
      "Classifier-feature Frechet distance of this many samples vs test "
      "images (labelled images only); 0 skips it.",
      flag_values=flag_values)
  flags.DEFINE_string(
      "feature_classifier_dir", None,
      "Where the Frechet distance's feature classifier is kept; default "
      "<model_dir>/feature_classifier.",
      flag_values=flag_values)
  flags.DEFINE_list(
      "disentanglement_metrics", None,
      "Metrics on data with known factors (shapes): beta_vae, factor_vae, "
      "mig, dci, sap; default all of them there, none elsewhere.",
      flag_values=flag_values)
  flags.DEFINE_integer("disentanglement_samples", 10_000,
                       "Examples drawn for the disentanglement metrics.",
                       flag_values=flag_values)
  # Export.
  flags.DEFINE_bool("export", True, "Export after training.",
                    flag_values=flag_values)
  flags.DEFINE_string("export_dir", None,
                      "TF Serving base path; default saved_models/<run>.",
                      flag_values=flag_values)
  flags.DEFINE_enum("tflite_quantization", "none",
                    config_lib.TFLITE_QUANTIZATIONS,
                    "Weights of model.tflite: float32, float16 or int8.",
                    flag_values=flag_values)

  for name in ("latent_dim", "batch_size", "learning_rate", "steps_per_loop",
               "eval_iw_samples", "eval_batch_size", "gaussian_scale",
               "kl_cycles", "checkpoints_to_keep", "image_size",
               "capacity_steps", "iw_samples", "prior_components",
               "flow_layers", "num_embeddings", "embedding_dim",
               "code_prior_layers", "code_prior_channels", "shuffle_buffer",
               "worker_timeout_s", "logistic_mixtures", "latent_layers",
               "categorical_latents", "categories", "temperature_start",
               "temperature_min", "sampler_components",
               "discriminator_learning_rate", "disentanglement_samples"):
    _positive(name, flag_values)
  for name in ("epochs", "train_steps", "clip_norm", "weight_decay",
               "kl_warmup_steps", "free_bits", "beta", "capacity_max",
               "gamma", "eval_max_examples", "seed", "checkpoint_steps",
               "mmd_weight", "commitment_cost", "max_in_memory_mb",
               "temperature_anneal_rate", "continuous_latent_dim",
               "continuous_capacity_max", "categorical_capacity_max",
               "frechet_samples", "shapes_samples", "tc_weight",
               "dip_lambda_od", "dip_lambda_d", "adversarial_weight",
               "gan_weight", "pixel_weight"):
    _non_negative(name, flag_values)
  flags.register_validator("info_alpha", lambda v: 0 <= v <= 1,
                           message="--info_alpha must be in [0, 1].",
                           flag_values=flag_values)
  for name in ("dropout", "validation_fraction", "test_fraction",
               "kl_cycle_ratio", "vq_ema_decay"):
    flags.register_validator(name, lambda v: 0 <= v < 1,
                             message=f"--{name} must be in [0, 1).",
                             flag_values=flag_values)
  for name in ("hidden_dims", "flow_hidden_dims", "latent_dims",
               "discriminator_hidden_dims"):
    flags.register_validator(
        name,
        lambda dims: all(d.strip().isdigit() and int(d) > 0 for d in dims),
        message=f"--{name} must be positive integers, e.g. 512,256.",
        flag_values=flag_values)


def _section(cls, flag_values, overrides=None):
  values = {}
  for field in dataclasses.fields(cls):
    if field.name in flag_values:
      values[field.name] = flag_values[field.name].value
  values.update(overrides or {})
  return cls(**values)


def from_flags(flag_values=FLAGS):
  """The validated `RunConfig` of the parsed flags.

  Args:
    flag_values: parsed `absl.flags.FlagValues` on which `define_flags` ran;
      default the process-wide `flags.FLAGS`.

  Raises:
    ConfigError: for contradictory values.
  """
  fv = flag_values
  model = _section(config_lib.ModelConfig, fv, {
      "hidden_dims": tuple(int(d) for d in fv.hidden_dims),
      "flow_hidden_dims": tuple(int(d) for d in fv.flow_hidden_dims),
      "latent_dims": tuple(int(d) for d in fv.latent_dims),
      "discriminator_hidden_dims": tuple(
          int(d) for d in fv.discriminator_hidden_dims)})
  return config_lib.RunConfig(
      data=_section(config_lib.DataConfig, fv, {
          "categorical_columns": tuple(fv.categorical_columns)}),
      model=model,
      train=_section(config_lib.TrainConfig, fv),
      eval=_section(config_lib.EvalConfig, fv, {
          "disentanglement_metrics": None if fv.disentanglement_metrics is None
                                     else tuple(fv.disentanglement_metrics)}),
      export=_section(config_lib.ExportConfig, fv),
  ).validate()
