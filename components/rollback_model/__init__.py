"""Verifies a registered version and stages it to be served again: the rollback before the deploy step."""
