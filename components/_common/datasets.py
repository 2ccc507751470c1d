"""Datasets travel between steps as Parquet files; these helpers read and write them the same way everywhere."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def content_hash(frame: pd.DataFrame) -> str:
    """sha256 of the data itself (names, dtypes, values), independent of file format and row index."""
    digest = hashlib.sha256()
    digest.update(repr([(str(name), str(dtype)) for name, dtype in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def write_dataset(frame: pd.DataFrame, path: str | Path) -> dict:
    """Writes ``frame`` as Parquet at ``path``; returns the metadata every step records (rows, columns, hash)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    # The hash reads only the frame and the Parquet writer only the Arrow table, and both release the GIL for most
    # of their work: hashing alongside the write takes about the time of the slower of the two, not their sum.
    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(content_hash, frame)
        pq.write_table(table, path)
        del table
        pa.default_memory_pool().release_unused()  # the Arrow copy of the frame, kept by its allocator otherwise
        return {
            "rows": len(frame),
            "columns": len(frame.columns),
            "content_sha256": digest.result(),
        }


def read_dataset(path: str | Path) -> pd.DataFrame:
    frame = pq.read_table(path).to_pandas()
    # The Arrow table is gone, but its allocator keeps the freed pages for reuse; pandas allocates elsewhere, so
    # returning them keeps the next step's peak memory near the frame's own size.
    pa.default_memory_pool().release_unused()
    return frame
