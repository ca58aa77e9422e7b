"""PyTorch eager baseline: training throughput of the classic MLP VAE on CPU.

Measures how many images per second a straightforward PyTorch eager training
loop processes for the 784-400-20 Bernoulli MLP VAE of pytorch/examples
`vae/main.py`:

  encoder  Linear(784, 400) + ReLU, then Linear(400, 20) -> mu and
           Linear(400, 20) -> logvar;
  decoder  Linear(20, 400) + ReLU, Linear(400, 784) -> Bernoulli logits;
  loss     BCE-with-logits summed over pixels + analytic KL(q(z|x) || N(0, I)),
           averaged over the batch; Adam, lr 1e-3.

This is the reference point the tfvae TensorFlow training loop must beat by
1.5x. It is written the way a person would honestly write it: the data is
already in memory as a float tensor, reshuffled once per epoch and sliced into
batches, each batch is dynamically binarized with `torch.bernoulli`, and
gradients are cleared with `zero_grad(set_to_none=True)`. The per-epoch
reshuffle and the binarization are part of the timed loop, as they are part of
a real one.

Data: synthetic random images in [0, 1] of shape [N, 784] (fixed seed) by
default, since throughput does not depend on content; `--mnist_dir` reads the
MNIST IDX test split (`t10k-images-idx3-ubyte.gz`) instead.

FLOP convention: per step we count only the matmul FLOPs of the forward pass,
2 * B * (784*400 + 400*40 + 20*400 + 400*784) (the two 400->20 heads counted as
one 400->40 matmul; biases, activations, the loss and the optimizer are not
counted), and multiply by 3 for forward + backward (the backward pass costs two
matmuls per forward matmul). GFLOP/s = 3 * forward FLOPs * steps / seconds.

Install (CPU wheel; only needed for this benchmark):

  pip install -r benchmarks/requirements.txt

Run from the repository root:

  python benchmarks/pytorch_baseline.py

Options: --batch_size 128 --warmup_steps 50 --steps 1000 --repeats 3
--threads N (default: torch's default for the machine) --compile (use
torch.compile; default off, the bar is the eager loop) --mnist_dir DIR
--num_images 60000 --seed 0. The last line printed is exactly
`img_per_s N`, N being the median images/s over the repeats.
"""

import argparse
import gzip
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


def forward_flops(batch_size):
  """Matmul FLOPs of one forward pass (see the module docstring)."""
  macs = (INPUT_DIM * HIDDEN_DIM + HIDDEN_DIM * 2 * LATENT_DIM +
          LATENT_DIM * HIDDEN_DIM + HIDDEN_DIM * INPUT_DIM)
  return 2 * batch_size * macs


def synthetic_images(num_images, seed):
  """Uniform random images in [0, 1], shape [num_images, 784], float32."""
  generator = torch.Generator().manual_seed(seed)
  return torch.rand(num_images, INPUT_DIM, generator=generator)


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


def batches(images, batch_size, generator):
  """Yields binarized batches forever, reshuffling once per epoch.

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
      yield torch.bernoulli(batch, generator=generator)


def train_step(model, optimizer, x):
  """One Adam step on a batch; returns the loss tensor."""
  optimizer.zero_grad(set_to_none=True)
  logits, mu, logvar = model(x)
  loss = vae_loss(logits, x, mu, logvar)
  loss.backward()
  optimizer.step()
  return loss


def run_steps(model, optimizer, data, num_steps):
  """Runs `num_steps` training steps; returns the last loss as a float."""
  loss = None
  for _ in range(num_steps):
    loss = train_step(model, optimizer, next(data))
  return loss.item() if loss is not None else float("nan")


def time_repeat(model, optimizer, data, num_steps):
  """Wall-clock seconds and final loss of `num_steps` training steps."""
  start = time.perf_counter()
  loss = run_steps(model, optimizer, data, num_steps)
  return time.perf_counter() - start, loss


def report(label, seconds, num_steps, batch_size):
  """Prints throughput figures; returns images/s."""
  img_per_s = num_steps * batch_size / seconds
  ms_per_step = 1000.0 * seconds / num_steps
  gflops = 3 * forward_flops(batch_size) * num_steps / seconds / 1e9
  print(f"{label}: {img_per_s:10.1f} images/s  {ms_per_step:7.3f} ms/step  "
        f"{gflops:6.2f} GFLOP/s")
  return img_per_s


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch_size", type=int, default=128)
  parser.add_argument("--warmup_steps", type=int, default=50)
  parser.add_argument("--steps", type=int, default=1000,
                      help="timed steps per repeat")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--threads", type=int, default=None,
                      help="torch intra-op threads (default: torch default)")
  parser.add_argument("--compile", action="store_true",
                      help="wrap the model in torch.compile (default: eager)")
  parser.add_argument("--mnist_dir", default=None,
                      help=f"folder holding {MNIST_TEST_IMAGES}; default: "
                           "synthetic images")
  parser.add_argument("--num_images", type=int, default=60000,
                      help="number of synthetic images")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  for name in ("batch_size", "steps", "repeats"):
    if getattr(args, name) < 1:
      parser.error(f"--{name} must be >= 1")
  if args.warmup_steps < 0:
    parser.error("--warmup_steps must be >= 0")
  if args.threads is not None and args.threads < 1:
    parser.error("--threads must be >= 1")
  return args


def print_setup(args, images):
  print(f"torch {torch.__version__}, threads {torch.get_num_threads()} "
        f"(default {DEFAULT_THREADS}, cpu count {os.cpu_count()}), "
        f"interop threads {torch.get_num_interop_threads()}")
  source = args.mnist_dir or f"synthetic (seed {args.seed})"
  print(f"data: {source}, {images.shape[0]} x {images.shape[1]} float32")
  print(f"model: 784-400-20 Bernoulli MLP VAE, Adam lr {LEARNING_RATE}, "
        f"{'torch.compile' if args.compile else 'eager'}")
  print(f"batch {args.batch_size}, warmup {args.warmup_steps} steps, "
        f"{args.repeats} x {args.steps} timed steps, "
        f"{3 * forward_flops(args.batch_size) / 1e6:.1f} MFLOP/step "
        "(3 x forward matmul FLOPs)")


def main(argv=None):
  args = parse_args(argv)
  if args.threads is not None:
    torch.set_num_threads(args.threads)
  torch.manual_seed(args.seed)
  if args.mnist_dir:
    images = mnist_images(args.mnist_dir)
  else:
    images = synthetic_images(args.num_images, args.seed)
  print_setup(args, images)

  model = VAE()
  optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
  if args.compile:
    model = torch.compile(model)
  data = batches(images, args.batch_size,
                 torch.Generator().manual_seed(args.seed + 1))

  try:
    # With --compile, compilation happens (and may fail) on the first steps.
    warmup_loss = run_steps(model, optimizer, data, max(args.warmup_steps, 1))
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
    seconds, loss = time_repeat(model, optimizer, data, args.steps)
    rates.append(report(f"repeat {i + 1}", seconds, args.steps,
                        args.batch_size))
    print(f"  loss {loss:.2f}")
  median = statistics.median(rates)
  report("median  ", args.steps * args.batch_size / median, args.steps,
         args.batch_size)
  print(f"img_per_s {int(round(median))}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
