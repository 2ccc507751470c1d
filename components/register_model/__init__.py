"""Logs the model to MLflow and registers a new version with the alias challenger."""
