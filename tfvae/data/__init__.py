"""Datasets: sources of image arrays and the tf.data input pipeline."""
