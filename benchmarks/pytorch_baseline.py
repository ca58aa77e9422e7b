"""PyTorch eager baseline: training throughput of tfvae's VAEs on CPU.

Measures how many images per second a straightforward PyTorch eager training
loop processes for one of two models (`--model`):

`mlp` (the default): the 784-400-20 Bernoulli MLP VAE of pytorch/examples
`vae/main.py`:

  encoder  Linear(784, 400) + ReLU, then Linear(400, 20) -> mu and
           Linear(400, 20) -> logvar;
  decoder  Linear(20, 400) + ReLU, Linear(400, 784) -> Bernoulli logits;
  loss     BCE-with-logits summed over pixels + analytic KL(q(z|x) || N(0, I)),
           averaged over the batch; Adam, lr 1e-3.

`conv`: the conv VAE of `benchmarks/throughput.py` (`SETUPS["conv"]`), in
the PyTorch-VAE VanillaVAE shape of `tfvae.networks.conv`, on 64x64x3 images:

  encoder  4 x [Conv2d 3x3 stride 2 padding 1 (no bias), BatchNorm2d,
           LeakyReLU] with 32, 64, 128, 256 channels (64 -> 4 pixels),
           flatten, Linear(4096, 128) -> mu and Linear(4096, 128) -> logvar;
  decoder  Linear(128, 4096) to 256x4x4, 4 x [ConvTranspose2d 3x3 stride 2
           padding 1 output_padding 1 (no bias), BatchNorm2d, LeakyReLU]
           with 256, 128, 64, 32 channels (4 -> 64 pixels), Conv2d(32, 3,
           3x3, padding 1), sigmoid mean;
  loss     Gaussian -log p(x|z) with tfvae's fixed scale 0.1, i.e. summed
           squared error / (2 * 0.1^2) plus its constant, + analytic KL,
           averaged over the batch; Adam, lr 1e-3.

The conv model has exactly the trainable parameters of tfvae's conv VAE for
64x64x3 and latent 128 (2,944,835: the convolutions before batch norm have
no bias, as in tfvae; batch norm uses Keras's epsilon 1e-3 and momentum
0.99), and the same layer output sizes (TF's `same` padding of a stride-2
3x3 convolution is padding 1 here, of its transpose padding 1 with
output_padding 1). Layout is PyTorch's default NCHW.

This is the reference point the tfvae TensorFlow training loop must beat by
1.5x. It is written the way a person would honestly write it: the data is
already in memory as a float tensor, reshuffled once per epoch and sliced into
batches, each batch is dynamically binarized with `torch.bernoulli`, and
gradients are cleared with `zero_grad(set_to_none=True)`. The per-epoch
reshuffle and the binarization are part of the timed loop, as they are part of
a real one.

Data: synthetic random images in [0, 1] of shape [N, 784] (fixed seed) by
default, since throughput does not depend on content; `--mnist_dir` reads the
MNIST IDX test split (`t10k-images-idx3-ubyte.gz`) instead. The conv model
reads synthetic [N, 3, 64, 64] images in [0, 1] (`--mnist_dir` does not
apply), reshuffled per epoch like the MLP's but not binarized (its
likelihood is Gaussian).

FLOP convention: per step we count only the matmul FLOPs of the forward pass,
2 * B * (784*400 + 400*40 + 20*400 + 400*784) (the two 400->20 heads counted as
one 400->40 matmul; biases, activations, the loss and the optimizer are not
counted), and multiply by 3 for forward + backward (the backward pass costs two
matmuls per forward matmul). GFLOP/s = 3 * forward FLOPs * steps / seconds.
The conv model counts the same way 2 x the multiply-adds of its convolutions
and matmuls: a stride-2 convolution (output pixels) * 9 * in * out, a
transposed one (input pixels) * 9 * in * out, the final 3x3 convolution
64 * 64 * 9 * 32 * 3, and the linear layers (two 4096 -> 128 heads, one
128 -> 4096); 172.4 MFLOP forward per image, 33.1 GFLOP per step of 64
(`benchmarks/conv_roofline.py` counts the same).

Install (CPU wheel; only needed for this benchmark):

  pip install -r benchmarks/requirements.txt

Run from the repository root:

  python benchmarks/pytorch_baseline.py
  python benchmarks/pytorch_baseline.py --model conv --threads 1

Options: --model mlp|conv (default mlp) --batch_size (128 mlp, 64 conv)
--warmup_steps (50 mlp, 5 conv) --steps (1000 mlp, 50 conv) --repeats 3
--threads N (default: torch's default for the machine) --compile (use
torch.compile; default off, the bar is the eager loop) --mnist_dir DIR
(mlp only) --num_images (60000 mlp, 5000 conv) --seed 0. The header gives
the model's parameter count (conv) and FLOPs per step. The last line
printed is exactly `img_per_s N`, N being the median images/s over the
repeats.
"""

import argparse
import gzip
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

INPUT_DIM = 784
HIDDEN_DIM = 400
LATENT_DIM = 20
LEARNING_RATE = 1e-3
# The conv model: tfvae's conv VAE on 64x64x3 (benchmarks/throughput.py).
IMAGE_SHAPE = (3, 64, 64)  # NCHW.
CONV_CHANNELS = (32, 64, 128, 256)
CONV_LATENT_DIM = 128
GAUSSIAN_SCALE = 0.1  # tfvae's ModelConfig.gaussian_scale default.
# Keras BatchNormalization's defaults (PyTorch momentum = 1 - Keras's).
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.01
LEAKY_RELU_SLOPE = 0.01  # nn.LeakyReLU's default, tfvae's too.
# Per model: batch size, warmup steps, timed steps, synthetic images.
DEFAULTS = {"mlp": dict(batch_size=128, warmup_steps=50, steps=1000,
                        num_images=60000),
            "conv": dict(batch_size=64, warmup_steps=5, steps=50,
                         num_images=5000)}
MNIST_TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
# Read at import, before --threads can change it.
DEFAULT_THREADS = torch.get_num_threads()


class VAE(nn.Module):
  """The 784-400-20 MLP VAE of pytorch/examples `vae/main.py` (logit output)."""

  def __init__(self):
    super().__init__()
    self.fc1 = nn.Linear(INPUT_DIM, HIDDEN_DIM)
    self.fc21 = nn.Linear(HIDDEN_DIM, LATENT_DIM)
    self.fc22 = nn.Linear(HIDDEN_DIM, LATENT_DIM)
    self.fc3 = nn.Linear(LATENT_DIM, HIDDEN_DIM)
    self.fc4 = nn.Linear(HIDDEN_DIM, INPUT_DIM)

  def encode(self, x):
    h = F.relu(self.fc1(x))
    return self.fc21(h), self.fc22(h)

  def reparameterize(self, mu, logvar):
    std = torch.exp(0.5 * logvar)
    return mu + torch.randn_like(std) * std

  def decode(self, z):
    return self.fc4(F.relu(self.fc3(z)))

  def forward(self, x):
    mu, logvar = self.encode(x)
    return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def vae_loss(logits, x, mu, logvar):
  """Negative ELBO: summed BCE + analytic KL, averaged over the batch."""
  bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
  kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
  return (bce + kl) / x.shape[0]


def conv_block(in_channels, out_channels, transpose=False):
  """A stride-2 3x3 (transposed) convolution, BatchNorm2d and LeakyReLU."""
  if transpose:
    conv = nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2,
                              padding=1, output_padding=1, bias=False)
  else:
    conv = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1,
                     bias=False)
  return nn.Sequential(
      conv, nn.BatchNorm2d(out_channels, eps=BN_EPSILON, momentum=BN_MOMENTUM),
      nn.LeakyReLU(LEAKY_RELU_SLOPE))


class ConvVAE(nn.Module):
  """tfvae's conv VAE (PyTorch-VAE VanillaVAE shape) for 64x64x3 images."""

  def __init__(self, image_shape=IMAGE_SHAPE, channels=CONV_CHANNELS,
               latent_dim=CONV_LATENT_DIM):
    super().__init__()
    image_channels, height, width = image_shape
    modules, fan = [], image_channels
    for out in channels:
      modules.append(conv_block(fan, out))
      fan = out
      height, width = (height + 1) // 2, (width + 1) // 2
    self.encoder = nn.Sequential(*modules)
    self.start_shape = (channels[-1], height, width)
    flat = channels[-1] * height * width
    self.fc_mu = nn.Linear(flat, latent_dim)
    self.fc_var = nn.Linear(flat, latent_dim)
    self.decoder_input = nn.Linear(latent_dim, flat)
    modules = []
    for out in reversed(channels):
      modules.append(conv_block(fan, out, transpose=True))
      fan = out
    self.decoder = nn.Sequential(*modules)
    self.final_layer = nn.Conv2d(fan, image_channels, 3, padding=1)

  def encode(self, x):
    h = torch.flatten(self.encoder(x), start_dim=1)
    return self.fc_mu(h), self.fc_var(h)

  def reparameterize(self, mu, logvar):
    std = torch.exp(0.5 * logvar)
    return mu + torch.randn_like(std) * std

  def decode(self, z):
    h = self.decoder_input(z).view(-1, *self.start_shape)
    return torch.sigmoid(self.final_layer(self.decoder(h)))

  def forward(self, x):
    mu, logvar = self.encode(x)
    return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def gaussian_vae_loss(mean, x, mu, logvar, scale=GAUSSIAN_SCALE):
  """Negative ELBO: Gaussian -log p(x|z) of fixed scale (the summed squared
  error / (2 scale^2) plus its constant) + analytic KL, batch mean."""
  distortion = (F.mse_loss(mean, x, reduction="sum") / (2 * scale**2)
                + x.numel() * (math.log(scale) + 0.5 * math.log(2 * math.pi)))
  kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
  return (distortion + kl) / x.shape[0]


def num_parameters(model):
  """Trainable parameters (batch-norm running statistics are buffers)."""
  return sum(p.numel() for p in model.parameters() if p.requires_grad)


def forward_flops(batch_size, model="mlp"):
  """Matmul (and conv) FLOPs of one forward pass (see the module docstring)."""
  if model == "conv":
    return conv_forward_flops(batch_size)
  macs = (INPUT_DIM * HIDDEN_DIM + HIDDEN_DIM * 2 * LATENT_DIM +
          LATENT_DIM * HIDDEN_DIM + HIDDEN_DIM * INPUT_DIM)
  return 2 * batch_size * macs


def conv_forward_flops(batch_size, image_shape=IMAGE_SHAPE,
                       channels=CONV_CHANNELS, latent_dim=CONV_LATENT_DIM):
  """2 x the conv and matmul multiply-adds of the conv VAE's forward pass."""
  image_channels, height, width = image_shape
  macs, fan = 0, image_channels
  for out in channels:
    height, width = (height + 1) // 2, (width + 1) // 2
    macs += height * width * 9 * fan * out
    fan = out
  flat = height * width * channels[-1]
  macs += flat * 2 * latent_dim + latent_dim * flat
  for out in reversed(channels):  # Input pixels x 9 x in x out.
    macs += height * width * 9 * fan * out
    height, width, fan = 2 * height, 2 * width, out
  macs += height * width * 9 * fan * image_channels
  return 2 * batch_size * macs


def synthetic_images(num_images, seed, shape=(INPUT_DIM,)):
  """Uniform random images in [0, 1], shape [num_images, *shape], float32."""
  generator = torch.Generator().manual_seed(seed)
  return torch.rand(num_images, *shape, generator=generator)


def mnist_images(mnist_dir):
  """The MNIST test images, shape [10000, 784], float32 in [0, 1]."""
  path = os.path.join(mnist_dir, MNIST_TEST_IMAGES)
  with gzip.open(path, "rb") as f:
    raw = f.read()
  magic, count, rows, cols = np.frombuffer(raw[:16], dtype=">i4")
  if magic != 2051:
    raise ValueError(f"{path}: not an IDX image file (magic {magic})")
  pixels = np.frombuffer(raw[16:], dtype=np.uint8)
  pixels = pixels.reshape(count, rows * cols).astype(np.float32) / 255.0
  return torch.from_numpy(pixels)


def batches(images, batch_size, generator, binarize=True):
  """Yields (binarized) batches forever, reshuffling once per epoch.

  The last incomplete batch of an epoch is dropped so every step has the
  same shape.
  """
  num_batches = images.shape[0] // batch_size
  if num_batches == 0:
    raise ValueError(f"batch size {batch_size} exceeds the "
                     f"{images.shape[0]} images")
  while True:
    shuffled = images[torch.randperm(images.shape[0], generator=generator)]
    for i in range(num_batches):
      batch = shuffled[i * batch_size:(i + 1) * batch_size]
      yield torch.bernoulli(batch, generator=generator) if binarize else batch


def train_step(model, optimizer, x, loss_fn=vae_loss):
  """One Adam step on a batch; returns the loss tensor."""
  optimizer.zero_grad(set_to_none=True)
  outputs, mu, logvar = model(x)
  loss = loss_fn(outputs, x, mu, logvar)
  loss.backward()
  optimizer.step()
  return loss


def run_steps(model, optimizer, data, num_steps, loss_fn=vae_loss):
  """Runs `num_steps` training steps; returns the last loss as a float."""
  loss = None
  for _ in range(num_steps):
    loss = train_step(model, optimizer, next(data), loss_fn)
  return loss.item() if loss is not None else float("nan")


def time_repeat(model, optimizer, data, num_steps, loss_fn=vae_loss):
  """Wall-clock seconds and final loss of `num_steps` training steps."""
  start = time.perf_counter()
  loss = run_steps(model, optimizer, data, num_steps, loss_fn)
  return time.perf_counter() - start, loss


def report(label, seconds, num_steps, batch_size, model="mlp"):
  """Prints throughput figures; returns images/s."""
  img_per_s = num_steps * batch_size / seconds
  ms_per_step = 1000.0 * seconds / num_steps
  gflops = 3 * forward_flops(batch_size, model) * num_steps / seconds / 1e9
  print(f"{label}: {img_per_s:10.1f} images/s  {ms_per_step:7.3f} ms/step  "
        f"{gflops:6.2f} GFLOP/s")
  return img_per_s


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", choices=sorted(DEFAULTS), default="mlp",
                      help="mlp (784-400-20 Bernoulli) or conv (64x64x3 "
                           "Gaussian conv VAE)")
  parser.add_argument("--batch_size", type=int, default=None,
                      help="default 128 (mlp), 64 (conv)")
  parser.add_argument("--warmup_steps", type=int, default=None,
                      help="default 50 (mlp), 5 (conv)")
  parser.add_argument("--steps", type=int, default=None,
                      help="timed steps per repeat; default 1000 (mlp), "
                           "50 (conv)")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--threads", type=int, default=None,
                      help="torch intra-op threads (default: torch default)")
  parser.add_argument("--compile", action="store_true",
                      help="wrap the model in torch.compile (default: eager)")
  parser.add_argument("--mnist_dir", default=None,
                      help=f"folder holding {MNIST_TEST_IMAGES}; default: "
                           "synthetic images")
  parser.add_argument("--num_images", type=int, default=None,
                      help="number of synthetic images; default 60000 "
                           "(mlp), 5000 (conv)")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  for name, value in DEFAULTS[args.model].items():
    if getattr(args, name) is None:
      setattr(args, name, value)
  if args.model == "conv" and args.mnist_dir:
    parser.error("--mnist_dir applies to --model mlp only")
  for name in ("batch_size", "steps", "repeats"):
    if getattr(args, name) < 1:
      parser.error(f"--{name} must be >= 1")
  if args.warmup_steps < 0:
    parser.error("--warmup_steps must be >= 0")
  if args.threads is not None and args.threads < 1:
    parser.error("--threads must be >= 1")
  return args


def print_setup(args, images, model=None):
  print(f"torch {torch.__version__}, threads {torch.get_num_threads()} "
        f"(default {DEFAULT_THREADS}, cpu count {os.cpu_count()}), "
        f"interop threads {torch.get_num_interop_threads()}")
  source = args.mnist_dir or f"synthetic (seed {args.seed})"
  shape = " x ".join(str(d) for d in images.shape)
  print(f"data: {source}, {shape} float32")
  mode = "torch.compile" if args.compile else "eager"
  if args.model == "conv":
    print(f"model: conv VAE (VanillaVAE shape, channels "
          f"{'-'.join(map(str, CONV_CHANNELS))}, batch norm, latent "
          f"{CONV_LATENT_DIM}), Gaussian scale {GAUSSIAN_SCALE}, "
          f"{num_parameters(model)} parameters, Adam lr {LEARNING_RATE}, "
          f"{mode}")
    flops = "3 x forward conv + matmul FLOPs"
  else:
    print(f"model: 784-400-20 Bernoulli MLP VAE, Adam lr {LEARNING_RATE}, "
          f"{mode}")
    flops = "3 x forward matmul FLOPs"
  print(f"batch {args.batch_size}, warmup {args.warmup_steps} steps, "
        f"{args.repeats} x {args.steps} timed steps, "
        f"{3 * forward_flops(args.batch_size, args.model) / 1e6:.1f} "
        f"MFLOP/step ({flops})")


def main(argv=None):
  args = parse_args(argv)
  if args.threads is not None:
    torch.set_num_threads(args.threads)
  torch.manual_seed(args.seed)
  conv = args.model == "conv"
  if args.mnist_dir:
    images = mnist_images(args.mnist_dir)
  else:
    images = synthetic_images(args.num_images, args.seed,
                              IMAGE_SHAPE if conv else (INPUT_DIM,))
  model = ConvVAE() if conv else VAE()
  loss_fn = gaussian_vae_loss if conv else vae_loss
  print_setup(args, images, model)

  optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
  if args.compile:
    model = torch.compile(model)
  data = batches(images, args.batch_size,
                 torch.Generator().manual_seed(args.seed + 1),
                 binarize=not conv)

  try:
    # With --compile, compilation happens (and may fail) on the first steps.
    warmup_loss = run_steps(model, optimizer, data, max(args.warmup_steps, 1),
                            loss_fn)
  except Exception as e:  # pylint: disable=broad-except
    if not args.compile:
      raise
    print(f"torch.compile FAILED on this machine: {type(e).__name__}: "
          f"{str(e).splitlines()[0] if str(e) else ''}", file=sys.stderr)
    print("no timing for --compile; run without it for the eager baseline",
          file=sys.stderr)
    return 1
  print(f"warmup done, loss {warmup_loss:.2f}")

  rates = []
  for i in range(args.repeats):
    seconds, loss = time_repeat(model, optimizer, data, args.steps, loss_fn)
    rates.append(report(f"repeat {i + 1}", seconds, args.steps,
                        args.batch_size, args.model))
    print(f"  loss {loss:.2f}")
  median = statistics.median(rates)
  report("median  ", args.steps * args.batch_size / median, args.steps,
         args.batch_size, args.model)
  print(f"img_per_s {int(round(median))}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
