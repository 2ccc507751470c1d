"""Datasets travel between steps as Parquet files; these helpers read and write them the same way everywhere."""

from __future__ import annotations

import hashlib
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
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return {
        "rows": len(frame),
        "columns": len(frame.columns),
        "content_sha256": content_hash(frame),
    }


def read_dataset(path: str | Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()
