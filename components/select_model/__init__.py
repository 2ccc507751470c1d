"""Picks the best of the candidate models trained in parallel, by their validation scores."""
