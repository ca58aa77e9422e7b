"""Command-line programs: `tfvae-train` (`train.py`); see pyproject.toml."""
