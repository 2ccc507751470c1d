"""Infers the data's schema and stops the run when a model cannot be trained on it."""
