"""Datasets: sources of image and vector arrays and the tf.data pipeline.

`from_arrays` wraps numpy arrays a user already has as the splits that
`tfvae.train_and_evaluate(config, data=...)` takes.
"""

from tfvae.data.arrays import from_arrays

__all__ = ["from_arrays"]
