"""Detects drift of new data from the champion's training rows (Evidently's statistical tests)."""
