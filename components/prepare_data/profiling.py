"""The reference profile of a Parquet dataset read in record batches (prepare_data profiles its train file so):
``model_bundle.profile``'s format and rules, with Arrow reading and bounded category counts, which the model server's
image (model_bundle without pyarrow or these components) does not need."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from components._common.counting import CappedCounts, dictionary_columns, text_value_counts
from components._common.datasets import BATCH_ROWS, DictionaryRows, dataset_layout, read_ahead
from model_bundle.profile import Batch, profile_batches


class _CappedCategories(CappedCounts):
    """Categories counted exactly up to ``DISTINCT_CAP`` distinct values, then as a heavy-hitter summary."""

    def shares(self, total: int) -> pd.Series:
        keys, counts = self.ordered()
        return pd.Series(counts, index=keys, dtype="int64") / total


def build_profile_file(path: str | Path, target: str, seed: int = 0, batch_rows: int | None = None) -> dict:
    """``build_profile(read_dataset(path), target, seed)`` in bounded memory: the Parquet dataset at ``path`` read
    in batches of ``batch_rows`` rows. The same profile, except that mean and standard deviation are merged from
    per-batch sums (Chan's formula), so they may differ from numpy's over the whole column in the last bits, and
    that a categorical column's categories are counted exactly only while it has at most ``DISTINCT_CAP`` (20,000,
    ``components._common.counting``) distinct values. Past that (an identifier, free text) they are a bounded
    heavy-hitter summary (``CappedCounts``): ``category_fractions`` lists the 50 most frequent categories that summary
    kept, with shares from its counts (the whole column's, unless a category was dropped at a pruning and counted
    afresh: then lower), and ``other_fraction`` is 1 - the listed shares (exact shares of every category would need
    memory growing with the distinct values). ``batch_rows``: None for ``read_batches``' default."""
    batch_rows = batch_rows or BATCH_ROWS
    layout = dataset_layout(path)
    empty = pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in layout.dtypes.items()})
    present = {name: layout.rows - nulls for name, nulls in layout.nulls.items()}
    file_schema = pq.read_schema(path)
    text = [f.name for f in file_schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    # Plain numbers (numpy integers or floats in pandas, as it reads the whole file) go from Arrow to numpy directly.
    numeric = [
        f.name
        for f in file_schema
        if (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))
        and isinstance(layout.dtypes[f.name], np.dtype)
        and layout.dtypes[f.name].kind in "iuf"
    ]
    others = [name for name in layout.dtypes if name not in text and name not in numeric]
    # Text as Parquet mostly stores it, dictionary-encoded: read without building each row's string, counted by
    # index. Not a column of (mostly) distinct texts: its dictionary would grow with the rows (``dictionary_columns``).
    # A second reader reads those; the first must keep a column, the batches' bounds (all text: none encoded).
    encoded = dictionary_columns(path, text, batch_rows) if len(text) < len(layout.dtypes) else []
    plain = [name for name in layout.dtypes if name not in encoded]

    def to_frame(table: pa.Table) -> pd.DataFrame:
        frame = table.replace_schema_metadata(file_schema.metadata).to_pandas()
        for name in frame.columns:
            dtype = layout.dtypes[name]
            # A categorical column keeps its batch's categories: the empty file's dtype has none.
            if frame[name].dtype != dtype and not isinstance(dtype, pd.CategoricalDtype):
                frame[name] = frame[name].astype(dtype)
        return frame

    def take(at, rows: pa.RecordBatch, cut: pa.Table | None) -> pa.Table:
        # Kept in Arrow: the rows of every batch become one frame at the end (``join``), not one frame a batch.
        at = pa.array(at)
        rows, cut = rows.take(at), cut.take(at) if cut is not None else None
        columns = [cut.column(f.name).cast(f.type) if f.name in encoded else rows.column(f.name) for f in file_schema]
        return pa.Table.from_arrays(columns, schema=file_schema)

    def join(taken: list) -> pd.DataFrame:
        return to_frame(pa.concat_tables(taken))

    def read():
        # In this reader's batch bounds, which the merged means and the category summary follow.
        alongside = DictionaryRows(path, encoded, encoded, batch_rows) if encoded else None
        for rows in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=plain, use_threads=False):
            cut = alongside.next(rows.num_rows) if alongside else None
            texts = {}
            for name in text:
                uniques, counts = text_value_counts(cut.column(name) if name in encoded else rows.column(name))
                texts[name] = (int(counts.sum()), uniques, counts)
            numbers, nan_stored = {}, False
            for name in numeric:
                column = rows.column(name)
                # Without nulls, Arrow's own numbers; with them, floats with NaN for the nulls (as pandas reads them).
                values = column.to_numpy(zero_copy_only=False).astype("float64", copy=False)
                if column.null_count or pa.types.is_floating(column.type):
                    missing = np.isnan(values)
                    values = values[~missing] if column.null_count or missing.any() else values
                    nan_stored = nan_stored or len(values) != len(column) - column.null_count
                numbers[name] = values
            frame = to_frame(pa.Table.from_batches([rows.select(others)])) if others else None
            yield rows, cut, texts, numbers, frame, nan_stored

    def batches(stop_at_nan: bool):
        # Read, counted and converted by a thread (Arrow and numpy mostly without the GIL) while profile_batches
        # takes the batch before.
        for rows, cut, texts, numbers, frame, nan_stored in read_ahead(read()):
            if stop_at_nan and nan_stored:
                return  # NaN stored as a value (missing to pandas): the counts sampled from are wrong
            yield Batch(rows.num_rows, frame, texts, numbers, lambda at, rows=rows, cut=cut: take(at, rows, cut))

    profile = profile_batches(
        empty, layout.rows, present, partial(batches, True), target, seed, _CappedCategories, join
    )
    if profile is None:  # a float column holds NaN values that are not Parquet nulls (the first pass stopped at
        # the first): count them, reading all but the text, then profile again
        present |= dict.fromkeys(others, 0)
        for rows in read_ahead(pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=numeric + others)):
            for name in numeric:
                if pa.types.is_floating(rows.schema.field(name).type):
                    present[name] -= pc.sum(pc.is_nan(rows.column(name))).as_py() or 0
            if others:
                frame = to_frame(pa.Table.from_batches([rows.select(others)]))
                for name in others:
                    present[name] += int(frame[name].notna().sum())
        profile = profile_batches(
            empty, layout.rows, present, partial(batches, False), target, seed, _CappedCategories, join
        )
    return profile
