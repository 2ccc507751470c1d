"""Reads raw data from a URI into a Parquet dataset."""
