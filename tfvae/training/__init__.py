"""The custom training loop, its strategy, checkpoints and summaries."""
