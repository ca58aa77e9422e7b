"""Export of trained models: SavedModel for TF Serving, TFLite for devices."""
