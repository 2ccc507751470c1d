"""How datasets travel between steps: as Parquet files, read and written the same way everywhere, with the content
hash every step records as lineage."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def content_hash(table: pa.Table) -> str:
    """sha256 of the data itself (column names, types and values, missing ones included), independent of the file
    format it came from, of row order within Arrow chunks and of how Arrow laid the values out in memory."""
    digest = hashlib.sha256()
    digest.update(repr([(field.name, str(field.type)) for field in table.schema]).encode())
    for column in table.columns:
        # One stream per part, each the same however the column is chunked: validity, lengths (text), values.
        parts = [hashlib.sha256() for _ in range(3)]
        for chunk in column.chunks:
            _hash_chunk(chunk, *parts)
        for part in parts:
            digest.update(part.digest())
    return digest.hexdigest()


def _hash_chunk(chunk: pa.Array, validity, lengths, values) -> None:
    if pa.types.is_dictionary(chunk.type):
        chunk = chunk.dictionary_decode()
    validity.update(chunk.is_valid().to_numpy(zero_copy_only=False).tobytes())
    kind = chunk.type
    if pa.types.is_null(kind):
        return
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        filled = pc.fill_null(chunk, "")
        offset_type = "<i8" if pa.types.is_large_string(kind) else "<i4"
        start = filled.offset
        offsets = np.frombuffer(filled.buffers()[1], dtype=offset_type)[start : start + len(filled) + 1]
        lengths.update(np.diff(offsets).astype("<i8").tobytes())
        if filled.buffers()[2] is not None:
            values.update(memoryview(filled.buffers()[2])[offsets[0] : offsets[-1]])
    elif pa.types.is_primitive(kind):  # numbers, booleans, dates and times: fixed width, nulls filled with zero
        filled = pc.fill_null(chunk, pa.scalar(0 if not pa.types.is_boolean(kind) else False, kind))
        values.update(np.ascontiguousarray(filled.to_numpy(zero_copy_only=False)).tobytes())
    else:  # binary and nested values (lists, structs): rare enough for their Python form
        values.update(repr(chunk.to_pylist()).encode())


def write_dataset(data: pd.DataFrame | pa.Table, path: str | Path) -> dict:
    """Writes ``data`` as Parquet at ``path``; returns the metadata every step records (rows, columns, hash)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    # Hashing and writing both read the Arrow table and release the GIL for most of their work: hashing alongside
    # the write takes about the time of the slower of the two, not their sum.
    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(content_hash, table)
        pq.write_table(table, path)
        info = {"rows": table.num_rows, "columns": table.num_columns, "content_sha256": digest.result()}
    del table
    if not isinstance(data, pa.Table):
        pa.default_memory_pool().release_unused()  # the Arrow copy of the frame, kept by its allocator otherwise
    return info


def read_dataset(path: str | Path) -> pd.DataFrame:
    """The Parquet dataset at ``path`` as pandas, as every step reads a dataset."""
    frame = pq.read_table(path).to_pandas()
    # The Arrow table is gone, but its allocator keeps the freed pages for reuse; pandas allocates elsewhere, so
    # returning them keeps the next step's peak memory near the frame's own size.
    pa.default_memory_pool().release_unused()
    return frame
