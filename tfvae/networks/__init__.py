"""Encoder and decoder networks: Keras models from images/codes to tensors."""
