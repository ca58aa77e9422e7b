"""Evaluation: likelihood estimates, metrics reports and image grids."""
