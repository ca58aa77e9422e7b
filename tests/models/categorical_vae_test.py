"""`categorical_vae`: Gumbel-softmax closed forms, exact log p(x), JointVAE.

The relaxation's limits and the Gumbel-max frequencies, the KL to the
uniform prior and the code enumeration are checked against numpy/scipy;
the exact log p(x) of a 2 x 3 code against a loop over its nine codes, and
the importance-sampled estimate against it; the JointVAE loss against its
formula; then the plain variant goes through the shared zoo checks and the
joint variant through export, TFLite and `tfvae.load`.
"""

import itertools
import math
import types

from ai_edge_litert.interpreter import Interpreter
import keras
import numpy as np
import pytest
from scipy import special
from scipy import stats
import tensorflow as tf

from tests.models import tiny
from tests.models import zoo_harness
from tfvae import gumbel
from tfvae import schedules
from tfvae.config import ModelConfig
from tfvae.errors import ConfigError
from tfvae.evaluation.likelihood import Evaluator
from tfvae.export import exporter
from tfvae.export import signatures
from tfvae.models import registry

STEP = tf.constant(0, tf.int64)
CONFIG = ModelConfig(model="categorical_vae", hidden_dims=(64,),
                     categorical_latents=5, categories=4,
                     temperature_anneal_rate=1e-3)
JOINT = dict(categorical_latents=2, categories=3, continuous_latent_dim=2,
             continuous_capacity_max=2.0, categorical_capacity_max=1.5,
             capacity_steps=100, gamma=30.0)


def _tiny(**overrides):
  return tiny.build("categorical_vae", 2,
                    **dict(dict(categorical_latents=2, categories=3),
                           **overrides))


def _noise(model, shape, seed=0):
  return tf.random.stateless_normal(tuple(shape) + model.noise_shape(),
                                    [seed, 7])


# ---- Gumbel noise and the relaxation -----------------------------------------


def test_gumbel_from_normal_is_the_probability_integral_transform():
  normal = np.linspace(-40, 40, 4001).astype(np.float32)
  got = gumbel.gumbel_from_normal(normal).numpy()
  x = normal.astype(np.float64)
  # -log Phi(n), accurate in both tails; g = -log of it (-log Phi(-n) for
  # large n, where -log Phi(n) = Phi(-n) to double precision).
  minus_log_u = np.where(x <= 0, -stats.norm.logcdf(x),
                         -np.log1p(-stats.norm.sf(np.maximum(x, 0))))
  with np.errstate(divide="ignore"):  # Unselected where n > 8.
    want = np.where(x > 8, -stats.norm.logsf(x), -np.log(minus_log_u))
  assert np.all(np.isfinite(got))
  np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-5)


def test_gumbels_from_normals_have_the_gumbel_distribution():
  normal = tf.random.stateless_normal([200_000], [3, 4])
  g = gumbel.gumbel_from_normal(normal).numpy()
  assert stats.kstest(g, stats.gumbel_r.cdf).statistic < 0.005
  assert np.mean(g) == pytest.approx(np.euler_gamma, abs=0.01)


def test_gumbel_softmax_tends_to_the_hard_draw_as_temperature_falls():
  logits = tf.random.stateless_normal([50, 3, 5], [1, 2]) * 2
  g = gumbel.gumbel_from_normal(tf.random.stateless_normal([50, 3, 5],
                                                           [2, 3]))
  hard = gumbel.gumbel_max(logits, g).numpy()
  np.testing.assert_array_equal(hard.sum(-1), 1.0)
  np.testing.assert_array_equal(
      hard.argmax(-1), tf.argmax(logits + g, axis=-1).numpy())
  np.testing.assert_allclose(gumbel.gumbel_softmax(logits, g, 1e-3).numpy(),
                             hard, atol=1e-6)
  soft = gumbel.gumbel_softmax(logits, g, 1.0).numpy()
  np.testing.assert_allclose(soft.sum(-1), 1.0, rtol=1e-6)
  assert soft.min() > 0 and np.abs(soft - hard).max() > 0.1


def test_gumbel_softmax_tends_to_uniform_as_temperature_grows():
  logits = tf.random.stateless_normal([20, 2, 4], [4, 5]) * 3
  g = gumbel.gumbel_from_normal(tf.random.stateless_normal([20, 2, 4],
                                                           [5, 6]))
  np.testing.assert_allclose(gumbel.gumbel_softmax(logits, g, 1e5).numpy(),
                             0.25, atol=1e-4)


def test_gumbel_max_frequencies_match_softmax():
  logits = tf.constant([[1.5, 0.0, -1.0, 0.5]])
  draws = 100_000
  g = gumbel.gumbel_from_normal(
      tf.random.stateless_normal([draws, 1, 4], [6, 7]))
  frequency = gumbel.gumbel_max(logits, g).numpy().mean(axis=0)[0]
  # Standard error sqrt(p (1 - p) / n) < 0.0016.
  np.testing.assert_allclose(frequency, special.softmax(logits[0].numpy()),
                             atol=0.006)


def test_kl_to_uniform_and_log_prob_match_numpy():
  logits = np.random.default_rng(0).normal(size=(7, 3, 5)).astype(np.float32)
  q = special.softmax(logits.astype(np.float64), axis=-1)
  want = np.sum(q * np.log(q), axis=-1) + np.log(5)
  np.testing.assert_allclose(gumbel.kl_to_uniform(logits).numpy(), want,
                             rtol=1e-5, atol=1e-6)
  assert float(tf.reduce_max(tf.abs(
      gumbel.kl_to_uniform(tf.zeros([2, 4]))))) < 1e-6
  assert float(gumbel.kl_to_uniform(tf.constant([[50.0, 0, 0]]))[0]
               ) == pytest.approx(math.log(3), abs=1e-5)
  codes = np.eye(5, dtype=np.float32)[[[0, 4, 2]] * 7]
  np.testing.assert_allclose(
      gumbel.log_prob(logits, codes).numpy(),
      np.log(q[:, [0, 1, 2], [0, 4, 2]]).sum(-1), rtol=1e-5)


def test_enumerate_codes_lists_every_code_once():
  codes = gumbel.enumerate_codes(tf.range(3**4), 4, 3).numpy()
  assert codes.shape == (81, 4, 3)
  np.testing.assert_array_equal(codes.sum(-1), 1.0)
  classes = codes.argmax(-1)
  # Variable 0 is the least significant digit.
  want = [digits[::-1] for digits in itertools.product(range(3), repeat=4)]
  np.testing.assert_array_equal(classes, want)


# ---- The model's objective and likelihood ------------------------------------


def test_code_sampling_and_rate():
  model = _tiny()
  images = tiny.binary_images(5)
  params = model.encode(images)
  assert params["logits"].shape == (5, 2, 3)
  noise = _noise(model, [5])
  hard, log_q = model.latent_sample(params, noise)
  hard = hard.numpy().reshape(5, 2, 3)
  np.testing.assert_array_equal(hard.sum(-1), 1.0)
  q = special.softmax(params["logits"].numpy().astype(np.float64), axis=-1)
  np.testing.assert_allclose(log_q.numpy(), np.log(
      (q * hard).sum(-1)).sum(-1), rtol=1e-5)
  relaxed, none = model.latent_sample(params, noise, tf.constant(0.5))
  assert none is None
  relaxed = relaxed.numpy().reshape(5, 2, 3)
  np.testing.assert_allclose(relaxed.sum(-1), 1.0, rtol=1e-6)
  np.testing.assert_array_equal(relaxed.argmax(-1), hard.argmax(-1))
  terms = model.compute_loss(images, noise, STEP, tf.constant(1.0))
  want_rate = (np.sum(q * np.log(q), axis=(-2, -1)) + 2 * math.log(3))
  np.testing.assert_allclose(terms["rate"].numpy(), want_rate, rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(terms["rate_categorical"], terms["rate"])
  np.testing.assert_allclose(terms["loss"], terms["distortion"] +
                             terms["rate"], rtol=1e-6)


def test_training_decodes_the_relaxation_at_the_scheduled_temperature():
  cold = _tiny(temperature_start=1e-4, temperature_min=1e-4)
  images = tiny.binary_images(6, seed=2)
  noise = _noise(cold, [6], seed=3)
  relaxed = cold.compute_loss(images, noise, STEP, tf.constant(1.0),
                              training=True)
  hard = cold.compute_loss(images, noise, STEP, tf.constant(1.0),
                           training=False)
  # At tau -> 0 the relaxed code is the hard one.
  np.testing.assert_allclose(relaxed["distortion"], hard["distortion"],
                             rtol=1e-4)
  warm = _tiny(temperature_start=5.0, temperature_min=5.0)
  warm.set_weights(cold.get_weights())
  relaxed = warm.compute_loss(images, noise, STEP, tf.constant(1.0))
  assert np.abs(relaxed["distortion"] - hard["distortion"]).max() > 1e-3
  model = _tiny(temperature_start=2.0, temperature_min=0.5,
                temperature_anneal_rate=1e-3)
  assert float(model.temperature(tf.constant(1000, tf.int64))) == (
      pytest.approx(2.0 * math.exp(-1.0), rel=1e-5))


def _brute_force_log_likelihood(model, images):
  """log p(x) by a Python loop over the K^N codes, numpy Bernoulli pixels."""
  n, k = model.num_variables, model.categories
  x = images.numpy().reshape(len(images), -1).astype(np.float64)
  terms = []
  for classes in itertools.product(range(k), repeat=n):
    code = np.zeros((1, n * k), np.float32)
    code[0, [j * k + c for j, c in enumerate(classes)]] = 1.0
    logits = model.decode(tf.constant(code))["logits"].numpy().reshape(
        1, -1).astype(np.float64)
    log_px_z = np.sum(x * logits - np.logaddexp(0.0, logits), axis=1)
    terms.append(log_px_z - n * math.log(k))
  return special.logsumexp(np.stack(terms), axis=0)


def test_exact_log_likelihood_equals_a_loop_over_the_codes():
  # Fixed weights: how close k samples come depends on the model (mean
  # errors of 0.003-0.04 over seeds), and unseeded weights depend on which
  # tests ran before in this process.
  keras.utils.set_random_seed(2)
  model = _tiny()
  assert model.enumerates_codes and model.num_codes == 9
  images = tiny.binary_images(7, seed=4)
  want = _brute_force_log_likelihood(model, images)
  np.testing.assert_allclose(model.exact_log_likelihood(images).numpy(), want,
                             rtol=0, atol=1e-4)
  # Chunks of one code (max_decoded < batch) give the same sum.
  np.testing.assert_allclose(
      model.exact_log_likelihood(images, max_decoded=3).numpy(), want,
      rtol=0, atol=1e-4)
  # Importance sampling with hard codes approaches it from below.
  k = 4000
  log_w = model.log_weights(images, _noise(model, [k, 7], seed=5)).numpy()
  estimate = special.logsumexp(log_w.astype(np.float64), axis=0) - math.log(k)
  np.testing.assert_allclose(estimate, want, atol=0.05)
  assert np.mean(np.abs(estimate - want)) < 0.02
  assert np.mean(log_w) < np.mean(want)  # The ELBO is below log p(x).


def test_evaluator_reports_the_exact_likelihood():
  model = _tiny()
  images = tiny.binary_images(12, seed=6)
  want = _brute_force_log_likelihood(model, images)
  evaluator = Evaluator(model, seed=0)
  for k, seed in ((1, (0, 0)), (50, (3, 1))):
    np.testing.assert_allclose(evaluator.log_likelihood(images, k, seed),
                               want, atol=1e-4)
  dataset = tf.data.Dataset.from_tensor_slices({"image": images}).batch(5)
  results = evaluator.evaluate(dataset, iw_samples=10)
  assert results["nll_exact"] is True
  assert results["nll"] == pytest.approx(-np.mean(want), abs=1e-4)
  assert results["nll"] <= results["neg_elbo"] + 1e-3
  usage = results["code_usage"]
  assert usage["variables"] == 2 and usage["categories"] == 3
  assert len(usage["perplexity"]) == 2
  assert all(1.0 <= p <= 3.0 + 1e-9 for p in usage["perplexity"])
  assert evaluator.evaluate(dataset, iw_samples=0)["nll_exact"] is False


def test_large_or_joint_codes_fall_back_to_importance_sampling():
  images = tiny.binary_images(3)
  assert _tiny(categorical_latents=6, categories=4).enumerates_codes  # 4096.
  assert _tiny(categorical_latents=4, categories=9).exact_log_likelihood(
      images) is None  # 9^4 = 6561 codes.
  model = _tiny(continuous_latent_dim=2)
  assert not model.enumerates_codes
  assert model.exact_log_likelihood(images) is None
  evaluator = Evaluator(model)
  assert evaluator.exact_log_likelihood(images) is None
  first = evaluator.log_likelihood(images, 8, (1, 0))
  assert np.all(np.isfinite(first))
  assert not np.array_equal(first, evaluator.log_likelihood(images, 8,
                                                            (2, 0)))


def test_code_usage_counts_informative_variables():
  model = _tiny(categorical_latents=3, categories=4)
  rng = np.random.default_rng(0)
  one_hot = np.eye(4)[rng.integers(0, 4, 1000)]  # Used: I = log 4.
  collapsed = np.tile([0.7, 0.1, 0.1, 0.1], (1000, 1))  # Same q for all x.
  uniform = np.full((1000, 4), 0.25)
  usage = model.code_usage(np.concatenate([one_hot, collapsed, uniform], 1))
  assert usage["used_variables"] == 1
  np.testing.assert_allclose(usage["mutual_information"],
                             [math.log(4), 0, 0], atol=0.01)
  np.testing.assert_allclose(
      usage["perplexity"],
      [4, math.exp(stats.entropy([0.7, 0.1, 0.1, 0.1])), 4], rtol=0.01)


# ---- JointVAE: continuous latents and capacities -----------------------------


@pytest.mark.parametrize("capacities", ["both", "categorical", "none"])
def test_joint_vae_loss_is_distortion_plus_capacity_terms(capacities):
  overrides = dict(JOINT)
  if capacities != "both":
    overrides["continuous_capacity_max"] = 0.0
  if capacities == "none":
    overrides.update(categorical_capacity_max=0.0, capacity_steps=100_000,
                     gamma=1000.0)
  model = _tiny(**overrides)
  assert model.latent_dim == 2 * 3 + 2
  images = tiny.binary_images(4, seed=8)
  step, kl_weight = tf.constant(40, tf.int64), tf.constant(0.7)
  terms = model.compute_loss(images, _noise(model, [4]), step, kl_weight)
  params = model.encode(images)
  mu, sigma = params["loc"].numpy(), params["scale"].numpy()
  kl_cont = 0.5 * np.sum(mu**2 + sigma**2 - 1 - 2 * np.log(sigma), axis=-1)
  np.testing.assert_allclose(terms["rate_continuous"], kl_cont, rtol=1e-4,
                             atol=1e-6)
  kl_cat = terms["rate_categorical"].numpy()
  np.testing.assert_allclose(terms["rate"], kl_cat + kl_cont, rtol=1e-4)
  penalty = (terms["loss"] - terms["distortion"]).numpy()
  c_cat, c_cont = 0.4 * 1.5, 0.4 * 2.0  # 40 of 100 capacity steps.
  if capacities == "both":
    want = 30 * np.abs(kl_cat - c_cat) + 30 * np.abs(kl_cont - c_cont)
  elif capacities == "categorical":
    want = 30 * np.abs(kl_cat - c_cat) + 0.7 * kl_cont
  else:
    want = 0.7 * (kl_cat + kl_cont)
  np.testing.assert_allclose(penalty, want, rtol=1e-4, atol=1e-4)
  assert float(schedules.capacity(step, 1.5, 100)) == pytest.approx(c_cat)


def test_joint_code_sampling_and_log_weights():
  model = _tiny(continuous_latent_dim=2)
  images = tiny.binary_images(3)
  noise = _noise(model, [5, 3])
  code, log_q = model.latent_sample(model.encode(images), noise)
  assert code.shape == (5, 3, 8) and log_q.shape == (5, 3)
  params = model.encode(images)
  continuous = code.numpy()[..., 6:]
  want = (params["loc"].numpy() + params["scale"].numpy()
          * noise.numpy()[..., 6:])
  np.testing.assert_allclose(continuous, want, rtol=1e-5, atol=1e-6)
  log_prior = model.log_prior(code).numpy()
  np.testing.assert_allclose(
      log_prior, -2 * math.log(3) + stats.norm.logpdf(continuous).sum(-1),
      rtol=1e-5)
  assert model.log_weights(images, noise).shape == (5, 3)


@pytest.mark.parametrize("kwargs,match", [
    (dict(categorical_latents=2, categories=3, categorical_capacity_max=2.5),
     "--categorical_capacity_max=2.5 exceeds .* 2.197"),
    (dict(continuous_capacity_max=5.0), "--continuous_latent_dim"),
    (dict(gamma=10.0), "--gamma=10.0 applies to the JointVAE"),
    (dict(capacity_steps=10), "--capacity_steps=10"),
    (dict(categories=1), "--categories=1"),
    (dict(beta=4.0), "--beta"),
    (dict(prior="mixture"), "--prior"),
    (dict(sampler="gmm"), "--sampler"),
])
def test_rejects_unusable_options(kwargs, match):
  with pytest.raises(ConfigError, match=match):
    registry.check_options(ModelConfig(model="categorical_vae", **kwargs))


def test_categorical_options_rejected_by_other_variants():
  with pytest.raises(ConfigError, match="--categories=4.*categorical_vae"):
    registry.check_options(ModelConfig(model="vae", categories=4))
  assert registry.get("categorical_vae").has_continuous_code is False
  registry.check_options(ModelConfig(model="categorical_vae", **JOINT))


# ---- The zoo checks ----------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  return zoo_harness.train_variant(
      CONFIG, tmp_path_factory.mktemp("categorical_vae"), train_steps=200,
      eval_iw_samples=5)


def test_learns(run):
  zoo_harness.assert_learns(run)
  metrics = run.metrics
  assert metrics["code_dim"] == 5 * 4
  # 4^5 = 1024 codes: the test NLL is exact, below the -ELBO.
  assert run.model.enumerates_codes
  assert metrics["test_nll"] < metrics["test_neg_elbo"]
  assert metrics["test_nll"] < 0.8 * metrics["trivial_nll"]


def test_exports_and_serves(run, tmp_path):
  served = zoo_harness.assert_serves(run, tmp_path)
  zoo_harness.assert_loads(run)
  zoo_harness.assert_tflite_runs(run)
  probs = served["encode"]["probs"]
  assert set(served["encode"]) == {"probs"}
  assert probs.shape == (2, 5, 4)
  np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
  assert served["decode"]["mean"].shape == (2, 16, 16, 1)


def test_decoding_the_most_probable_code_reconstructs(run):
  images = tf.constant(run.test_x[:8].astype(np.float32) / 255.0)
  probs = run.model.export_encode(images)["probs"].numpy()
  code = np.eye(4, dtype=np.float32)[probs.argmax(-1)].reshape(8, -1)
  np.testing.assert_allclose(run.model.decode(tf.constant(code))["mean"],
                             run.model.reconstruct(images), atol=1e-6)


def test_samples_are_seeded_and_equal_on_tflite(run):
  loaded = tf.saved_model.load(run.export.version_dir)
  saved = lambda n, s: loaded.signatures["sample"](
      num_samples=tf.constant(n), seed=tf.constant(s))["images"].numpy()
  lite = Interpreter(model_path=run.export.tflite_path).get_signature_runner(
      "sample")
  first = saved(6, 3)
  assert first.shape == (6, 16, 16, 1)
  assert np.all((first >= 0) & (first <= 1))
  np.testing.assert_array_equal(first, saved(6, 3))
  assert np.abs(first - saved(6, 4)).max() > 1e-3
  np.testing.assert_allclose(
      lite(num_samples=np.int32(6), seed=np.int32(3))["images"], first,
      atol=1e-4)


def test_joint_variant_exports_serves_and_loads(tmp_path):
  model = _tiny(**JOINT)
  result = exporter.export(model, str(tmp_path / "export"), "joint")
  joint = types.SimpleNamespace(model=model, export=result)
  zoo_harness.assert_tflite_runs(joint)
  loaded = zoo_harness.assert_loads(joint)
  encoded = loaded.encode(tiny.binary_images(3).numpy())
  assert set(encoded) == {"probs", "mean", "stddev"}
  assert encoded["probs"].shape == (3, 2, 3)
  assert encoded["mean"].shape == encoded["stddev"].shape == (3, 2)
  assert signatures.example_inputs(model)["decode"]["z"].shape == (2, 8)
