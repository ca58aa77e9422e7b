"""Trains, evaluates and exports a VAE: `python train.py --flagfile=F`.

Resumes from the latest checkpoint in `--model_dir` unless `--restart`.
Errors a user can fix are printed as one line, and the exit code is 1.
The program is `tfvae.cli.train`, installed as `tfvae-train`.
"""

import os

from tfvae.cli import train

if __name__ == "__main__":
  # `bazel run //:train` starts in the runfiles tree; paths given on the
  # command line mean the caller's folder.
  os.chdir(os.environ.get("BUILD_WORKING_DIRECTORY", os.curdir))
  train.run()
