"""Counting the values of a column batch by batch in bounded memory, shared by validate_data (``column_stats``) and
prepare_data's reference profile (``components.prepare_data.profiling.build_profile_file``).

- ``CappedCounts``: occurrences per value in order of first appearance, exact while a column has at most ``cap``
  distinct values; past it a bounded heavy-hitter summary (counts kept for at most 2 x ``cap`` values, pruned to
  the ``cap`` most frequent whenever it grows past that), so the most frequent values survive and a column of
  identifiers (a distinct value per row) costs 2 x ``cap`` entries, not one per row. A value dropped at a pruning
  is counted afresh when it comes again: past the cap, a count is a lower bound of the value's true count.
- ``dictionary_columns``: which text columns of a Parquet file to read dictionary-encoded.
- ``text_value_counts``: a text column's values counted in Arrow, in order of first appearance.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# Distinct values per column counted exactly in memory; well above the 50 categories a schema or profile lists.
DISTINCT_CAP = 20_000
# Distinct values in a text column's first batch up to which it is read dictionary-encoded (``dictionary_columns``).
DICTIONARY_CAP = 20_000


def merge_counts(
    keys: pd.Index | None, counts: np.ndarray, uniques: np.ndarray, added: np.ndarray
) -> tuple[pd.Index, np.ndarray]:
    """``keys`` and their ``counts`` (in order of first appearance) with a batch's distinct ``uniques`` (in order of
    appearance) occurring ``added`` times: known values' counts grow, new ones are appended."""
    if keys is None:
        return pd.Index(uniques, dtype=uniques.dtype), added.astype(np.int64)
    positions = keys.get_indexer(uniques)
    seen = positions >= 0
    counts[positions[seen]] += added[seen]
    if not seen.all():
        keys = keys.append(pd.Index(uniques[~seen], dtype=uniques.dtype))
        counts = np.concatenate([counts, added[~seen]])
    return keys, counts


def most_frequent(keys: pd.Index, counts: np.ndarray, cap: int) -> tuple[pd.Index, np.ndarray]:
    """The ``cap`` most frequent of ``keys`` (ties: the first seen), still in order of first appearance."""
    keep = np.sort(np.argsort(-counts, kind="stable")[:cap])
    return keys[keep], counts[keep]


def ordered_counts(keys: pd.Index, counts: np.ndarray) -> tuple[pd.Index, np.ndarray]:
    """Values and counts as ``value_counts`` orders them, most frequent first: the same sort of counts kept in order
    of first appearance (as it keeps them), so ties come out in the same order."""
    order = pd.Series(counts).sort_values(ascending=False).index.to_numpy()
    return keys[order], counts[order]


class CappedCounts:
    """Occurrences per value: exact while at most ``cap`` (None: ``DISTINCT_CAP``) distinct values, then a
    heavy-hitter summary (see the module docstring). ``exact`` says which."""

    def __init__(self, cap: int | None = None):
        cap = DISTINCT_CAP if cap is None else cap
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise ValueError(f"parameter cap must be a positive integer, got {cap!r}")
        self.cap = cap
        self.keys: pd.Index | None = None
        self.counts = np.empty(0, dtype=np.int64)
        self.exact = True

    def add(self, uniques: np.ndarray, counts: np.ndarray) -> None:
        """``uniques``: a batch's distinct values in order of appearance, ``counts`` their occurrences."""
        if not len(uniques):
            return
        self.keys, self.counts = merge_counts(self.keys, self.counts, uniques, counts)
        if len(self.keys) > self.cap:
            self.exact = False
        if len(self.keys) > 2 * self.cap:
            self.keys, self.counts = most_frequent(self.keys, self.counts, self.cap)

    def ordered(self) -> tuple[pd.Index, np.ndarray]:
        """Values and counts, most frequent first (as ``value_counts``)."""
        if self.keys is None:
            return pd.Index([], dtype=object), np.empty(0, dtype=np.int64)
        return ordered_counts(self.keys, self.counts)


def dictionary_columns(path: str | Path, texts: Sequence[str], batch_rows: int, cap: int | None = None) -> list:
    """The ``texts`` columns of the Parquet file at ``path`` worth reading dictionary-encoded (``read_dictionary``):
    those with at most ``cap`` (None: ``DICTIONARY_CAP``) distinct values in its first batch of ``batch_rows`` rows.

    Arrow's dictionary reader grows one dictionary over a whole row group: each batch carries every distinct value
    read so far in it. For a column of categories that is a few entries; for an identifier (a distinct text per
    row) it is every row of the row group read so far (a million rows: hundreds of MB, and each batch's dictionary
    made Python strings), so such a column is read as plain text, batch by batch.
    """
    cap = DICTIONARY_CAP if cap is None else cap
    texts = list(texts)
    if not texts:
        return []
    first = next(pq.ParquetFile(path, read_dictionary=texts).iter_batches(batch_rows, columns=texts), None)
    if first is None:
        return texts
    return [name for name in texts if len(first.column(name).dictionary) <= cap]


def text_value_counts(values) -> tuple[np.ndarray, np.ndarray]:
    """The present values of an Arrow text column (plain or dictionary-encoded, an array or chunked) counted: its
    distinct values (Python strings, in order of first appearance, as ``pd.factorize`` orders them) and their counts
    (int64), without a Python string per row.

    Dictionary-encoded values are counted by index (``bincount``), cheaper than hashing every row; their order of
    first appearance is read from the shortest prefix (of 4^k x 4096 rows) that holds every index used, most often a
    short one (a column's categories come early in a batch). A dictionary that repeats a value is counted by value.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()  # chunks of several dictionaries become one
    if values.null_count:
        values = values.drop_null()
    if pa.types.is_dictionary(values.type):
        indices = values.indices.to_numpy(zero_copy_only=False).astype(np.intp, copy=False)
        counts = np.bincount(indices, minlength=len(values.dictionary))
        used, prefix = np.count_nonzero(counts), 4096
        while len(order := pd.unique(indices[:prefix])) < used:
            prefix *= 4
        uniques = values.dictionary.take(pa.array(order)).to_numpy(zero_copy_only=False)
        if pd.Index(uniques).is_unique:
            return uniques, counts[order].astype(np.int64)
        values = values.dictionary_decode()
    counted = pc.value_counts(values)
    return counted.field("values").to_numpy(zero_copy_only=False), counted.field("counts").to_numpy().astype(np.int64)
