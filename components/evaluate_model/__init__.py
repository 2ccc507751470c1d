"""Scores the model on the held-out test set next to a constant baseline."""
