"""Trains, evaluates and exports a VAE: `python train.py --flagfile=F`.

Resumes from the latest checkpoint in `--model_dir` unless `--restart`.
Errors a user can fix are printed as one line, and the exit code is 1.
The program is `tfvae.cli.train`, installed as `tfvae-train`.
"""

from tfvae.cli import train

if __name__ == "__main__":
  train.run()
