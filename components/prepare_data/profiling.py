"""The reference profile of a Parquet dataset read in record batches (prepare_data profiles its train file so):
``model_bundle.profile``'s format and rules, with Arrow reading and bounded category counts, which the model server's
image (model_bundle without pyarrow or these components) does not need."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from components._common.counting import CappedCounts
from components._common.datasets import BATCH_ROWS, dataset_layout
from model_bundle.profile import profile_batches


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
    others = [name for name in layout.dtypes if name not in text]

    def to_frame(rows: pa.RecordBatch) -> pd.DataFrame:
        frame = pa.Table.from_batches([rows]).replace_schema_metadata(file_schema.metadata).to_pandas()
        for name in frame.columns:
            dtype = layout.dtypes[name]
            # A categorical column keeps its batch's categories: the empty file's dtype has none.
            if frame[name].dtype != dtype and not isinstance(dtype, pd.CategoricalDtype):
                frame[name] = frame[name].astype(dtype)
        return frame

    def batches():
        # Text columns are counted in Arrow: a Python string per value is the costly part of pandas.
        for rows in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
            texts = {}
            for name in text:
                values = rows.column(name)
                found = pc.value_counts(values.drop_null())
                uniques = found.field("values").to_numpy(zero_copy_only=False)
                texts[name] = (len(values) - values.null_count, uniques, found.field("counts").to_numpy())
            yield to_frame(rows.select(others)), texts, lambda at, rows=rows: to_frame(rows.take(pa.array(at)))

    profile = profile_batches(empty, layout.rows, present, batches, target, seed, _CappedCategories)
    if profile is None:  # a float column holds NaN values that are not Parquet nulls: count them, then again
        present = dict.fromkeys(layout.dtypes, 0)
        for frame, texts, _ in batches():
            for name in layout.dtypes:
                present[name] += texts[name][0] if name in texts else int(frame[name].notna().sum())
        profile = profile_batches(empty, layout.rows, present, batches, target, seed, _CappedCategories)
    return profile
