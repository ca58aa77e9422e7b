"""Tests of the conv VAE benchmarks: `benchmarks/conv_roofline.py` and the
`--model conv` of `benchmarks/pytorch_baseline.py`.

Both must describe the model `benchmarks/throughput.py` trains
(`SETUPS["conv"]`): tfvae's conv VAE on 64x64x3 images with latent 128.
"""

import importlib.util
import math
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO_ROOT
from tfvae import config as config_lib
from tfvae import models

BENCHMARKS = os.path.join(REPO_ROOT, "benchmarks")
IMAGE_SHAPE = (64, 64, 3)
LATENT_DIM = 128
# 2 x the conv and matmul multiply-adds of one forward pass of one image,
# counted by hand: encoder 32^2 9 3 32 + 16^2 9 32 64 + 8^2 9 64 128
# + 4^2 9 128 256, heads 2 x 4096 x 128, projection 128 x 4096, decoder
# 4^2 9 256 256 + 8^2 9 256 128 + 16^2 9 128 64 + 32^2 9 64 32, output
# 64^2 9 32 3.
FORWARD_FLOPS_PER_IMAGE = 2 * (
    32**2 * 9 * 3 * 32 + 16**2 * 9 * 32 * 64 + 8**2 * 9 * 64 * 128
    + 4**2 * 9 * 128 * 256 + 2 * 4096 * 128 + 128 * 4096
    + 4**2 * 9 * 256 * 256 + 8**2 * 9 * 256 * 128 + 16**2 * 9 * 128 * 64
    + 32**2 * 9 * 64 * 32 + 64**2 * 9 * 32 * 3)


def _load(name):
  """Imports `benchmarks/<name>.py` (benchmarks/ is not a package; its
  scripts import each other as top-level modules, as when run)."""
  path = os.path.join(BENCHMARKS, name + ".py")
  if BENCHMARKS not in sys.path:
    sys.path.insert(0, BENCHMARKS)
  if not os.path.exists(path):
    pytest.skip(f"{path} is not available here")
  spec = importlib.util.spec_from_file_location(f"_benchmark_{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope="module")
def roofline():
  return _load("conv_roofline")


@pytest.fixture(scope="module")
def baseline():
  pytest.importorskip("torch")
  return _load("pytorch_baseline")


@pytest.fixture(scope="module")
def tfvae_model():
  """tfvae's conv VAE as `benchmarks/throughput.py` configures it."""
  config = config_lib.ModelConfig(encoder="conv", decoder="conv",
                                  latent_dim=LATENT_DIM,
                                  likelihood="gaussian")
  model = models.build(config, IMAGE_SHAPE)
  model.build_from_shape()
  return model


def _count(variables):
  return sum(int(np.prod(v.shape)) for v in variables)


# ---- The roofline ------------------------------------------------------------


def test_roofline_variables_have_tfvaes_shapes(roofline, tfvae_model):
  variables = roofline.flat_variables(roofline.conv_variables())
  assert ([tuple(v.shape) for v in variables]
          == [tuple(v.shape) for v in tfvae_model.trainable_variables])
  assert (roofline.conv_num_parameters() == _count(variables)
          == _count(tfvae_model.trainable_variables) == 2_944_835)


def test_roofline_forward_flops(roofline):
  assert roofline.conv_forward_flops(1) == FORWARD_FLOPS_PER_IMAGE
  assert roofline.conv_forward_flops(64) == 64 * FORWARD_FLOPS_PER_IMAGE


def test_roofline_forward_flops_near_tf_profiler(roofline):
  """TF's profiler counts the same graph's FLOPs plus the elementwise ops."""
  variables = roofline.conv_variables()
  loss = tf.function(lambda x, e: roofline.conv_loss(variables, x, e))
  graph = loss.get_concrete_function(
      tf.TensorSpec((2,) + IMAGE_SHAPE), tf.TensorSpec((2, LATENT_DIM))).graph
  options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  options["output"] = "none"
  profiled = tf.compat.v1.profiler.profile(graph,
                                           options=options).total_float_ops
  counted = roofline.conv_forward_flops(2)
  assert counted <= profiled <= 1.03 * counted


def test_roofline_loss_is_the_negative_elbo(roofline):
  """With zero kernels the mean is sigmoid(bias) and q(z|x) = N(b, e^b/2)."""
  variables = roofline.conv_variables()
  for v in roofline.flat_variables(variables):
    v.assign(tf.zeros_like(v))
  head_bias = np.linspace(-1.0, 1.0, 2 * LATENT_DIM).astype(np.float32)
  variables["head"][1].assign(head_bias)
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(2,) + IMAGE_SHAPE).astype(np.float32)
  eps = rng.standard_normal((2, LATENT_DIM)).astype(np.float32)
  loss = float(roofline.conv_loss(variables, tf.constant(x),
                                  tf.constant(eps)))
  mu, log_var = head_bias[:LATENT_DIM], head_bias[LATENT_DIM:]
  scale = roofline.GAUSSIAN_SCALE
  log_px = np.sum(-0.5 * ((x - 0.5) / scale)**2 - math.log(scale)
                  - 0.5 * math.log(2 * math.pi), axis=(1, 2, 3))
  kl = 0.5 * np.sum(mu**2 + np.exp(log_var) - 1.0 - log_var)
  np.testing.assert_allclose(loss, np.mean(-log_px + kl), rtol=1e-5)


def test_roofline_batch_norms_agree(roofline):
  variables = roofline.conv_variables()
  rng = np.random.default_rng(1)
  x = tf.constant(rng.uniform(size=(4,) + IMAGE_SHAPE).astype(np.float32))
  eps = tf.constant(rng.standard_normal((4, LATENT_DIM)).astype(np.float32))
  fused, moments = (float(roofline.conv_loss(variables, x, eps,
                                             batch_norm=kind))
                    for kind in ("fused", "moments"))
  np.testing.assert_allclose(fused, moments, rtol=1e-5)
  with pytest.raises(ValueError, match="moments"):
    roofline.conv_loss(variables, x, eps, batch_norm="keras")


def test_roofline_two_steps_give_a_finite_rate(roofline):
  rates = roofline.conv_train_rate(batch_size=4, steps_per_call=2, calls=1,
                                   rounds=1)
  assert len(rates) == 1 and math.isfinite(rates[0]) and rates[0] > 0
  run = roofline.conv_train_step_fn(batch_size=4, steps_per_call=2)
  first, second = run(), run()
  assert math.isfinite(first) and second < first  # SGD lowers the loss.


# ---- The PyTorch baseline ----------------------------------------------------


def test_torch_conv_vae_has_tfvaes_parameter_count(baseline, tfvae_model):
  model = baseline.ConvVAE()
  assert (baseline.num_parameters(model)
          == _count(tfvae_model.trainable_variables))


def test_torch_conv_vae_layer_shapes_match_tfvae(baseline, tfvae_model):
  import torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  model = baseline.ConvVAE()
  x = torch.rand(2, *baseline.IMAGE_SHAPE)
  shapes = []
  h = x
  for block in list(model.encoder) + [None] + list(model.decoder):
    if block is None:
      h = model.decoder_input(model.fc_mu(torch.flatten(h, 1)))
      h = h.view(-1, *model.start_shape)
    else:
      h = block(h)
    shapes.append(tuple(h.permute(0, 2, 3, 1).shape))  # NCHW -> NHWC.
  with torch.no_grad():
    mean, mu, logvar = model(x)
  assert tuple(mean.shape) == (2,) + baseline.IMAGE_SHAPE
  assert float(mean.min()) > 0 and float(mean.max()) < 1
  assert tuple(mu.shape) == tuple(logvar.shape) == (2, LATENT_DIM)

  images = tf.zeros((2,) + IMAGE_SHAPE)
  expected = []
  h = images
  for layer in tfvae_model.encoder.blocks.layers:
    h = layer(h)
    if "leaky" in layer.name:
      expected.append(tuple(h.shape))
  h = tfvae_model.decoder.reshape(tfvae_model.decoder.project(
      tf.zeros((2, LATENT_DIM))))
  expected.append(tuple(h.shape))
  for layer in tfvae_model.decoder.blocks.layers:
    h = layer(h)
    if "leaky" in layer.name:
      expected.append(tuple(h.shape))
  assert shapes == expected


def test_torch_conv_loss_is_the_gaussian_negative_elbo(baseline):
  import torch  # pylint: disable=g-import-not-at-top
  generator = torch.Generator().manual_seed(0)
  x = torch.rand(2, 3, 8, 8, generator=generator)
  mean = torch.rand(2, 3, 8, 8, generator=generator)
  mu = torch.randn(2, 5, generator=generator)
  logvar = torch.randn(2, 5, generator=generator)
  scale = baseline.GAUSSIAN_SCALE
  log_px = torch.distributions.Normal(mean, scale).log_prob(x).sum()
  kl = torch.distributions.kl_divergence(
      torch.distributions.Normal(mu, torch.exp(0.5 * logvar)),
      torch.distributions.Normal(0.0, 1.0)).sum()
  expected = (kl - log_px) / 2
  loss = baseline.gaussian_vae_loss(mean, x, mu, logvar)
  np.testing.assert_allclose(float(loss), float(expected), rtol=1e-5)


def test_torch_and_roofline_count_the_same_flops(baseline, roofline):
  assert (baseline.forward_flops(64, "conv") == roofline.conv_forward_flops(64)
          == 64 * FORWARD_FLOPS_PER_IMAGE)


def test_baseline_defaults_per_model(baseline):
  mlp = baseline.parse_args([])
  assert (mlp.model, mlp.batch_size, mlp.warmup_steps, mlp.steps,
          mlp.num_images) == ("mlp", 128, 50, 1000, 60000)
  conv = baseline.parse_args(["--model", "conv"])
  assert (conv.batch_size, conv.warmup_steps, conv.steps,
          conv.num_images) == (64, 5, 50, 5000)
  assert baseline.parse_args(["--model", "conv", "--batch_size",
                              "8"]).batch_size == 8
  with pytest.raises(SystemExit):
    baseline.parse_args(["--model", "conv", "--mnist_dir", "/tmp"])


def test_baseline_conv_run_prints_header_and_rate(baseline, capsys):
  import torch  # pylint: disable=g-import-not-at-top
  threads = torch.get_num_threads()
  try:
    assert baseline.main(["--model", "conv", "--batch_size", "4",
                          "--warmup_steps", "1", "--steps", "1",
                          "--repeats", "1", "--num_images", "8",
                          "--threads", "1"]) == 0
  finally:
    torch.set_num_threads(threads)
  lines = capsys.readouterr().out.strip().splitlines()
  assert "2944835 parameters" in lines[2]
  assert f"{3 * 4 * FORWARD_FLOPS_PER_IMAGE / 1e6:.1f} MFLOP/step" in lines[3]
  assert lines[-1].startswith("img_per_s ")
  assert int(lines[-1].split()[1]) > 0
