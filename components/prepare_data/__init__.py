"""Cleans the data by explicit policy and splits train and test sets."""
