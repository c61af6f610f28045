"""Datasets: the synthetic fashion world, loaders for the real datasets, pose utilities."""
