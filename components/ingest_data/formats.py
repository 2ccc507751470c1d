"""Reads one local file into an Arrow table: owns the table of supported extensions (the format comes from the
file name), the checks every format shares (exists, not empty, unique column names, rows), and the Parquet reader.
CSV is read by ``csv_format``, JSON Lines by ``json_lines``.

Gzip is recognised by its magic bytes, not only by a ``.gz`` extension: an HTTP server may already have
decompressed a ``.csv.gz``.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from components.ingest_data import decoding
from components.ingest_data.csv_format import CsvOptions, read_csv
from components.ingest_data.errors import IngestError
from components.ingest_data.json_lines import read_json_lines

EXTENSIONS = {  # lower-case file name ending -> format
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": "tsv",
    ".tsv.gz": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".ndjson": "jsonl",
    ".ndjson.gz": "jsonl",
}
PARQUET_MAGIC = b"PAR1"


def suffix_of(filename: str) -> str | None:
    """The supported extension ``filename`` ends with (``.csv.gz`` before ``.gz``), or None."""
    lower = filename.lower()
    return next((ext for ext in sorted(EXTENSIONS, key=len, reverse=True) if lower.endswith(ext)), None)


def unsupported_extension(name: str) -> IngestError:
    return IngestError(f"input file {name!r} has unsupported extension; supported: {sorted(EXTENSIONS)}")


def read_file(path: Path, name: str | None = None, options: CsvOptions | None = None) -> pa.Table:
    """Reads the local file ``path``; errors call it ``name`` (the path itself, a ``gs://`` URI or a URL)."""
    name = str(path) if name is None else name
    options = options or CsvOptions()
    if not path.exists():
        raise IngestError(f"input file {name!r} does not exist")
    if not path.is_file():
        raise IngestError(f"input path {name!r} is not a file")
    if path.stat().st_size == 0:
        raise IngestError(f"input file {name!r} is empty (0 bytes)")
    suffix = suffix_of(path.name)
    if suffix is None:
        raise unsupported_extension(name)
    file_format = EXTENSIONS[suffix]
    if file_format in ("csv", "tsv"):
        table = read_csv(path, name, options, default_delimiter="\t" if file_format == "tsv" else "")
    elif file_format == "parquet":
        table = _read_parquet(path, name)
    else:
        table = read_json_lines(path, name)
    names = table.column_names
    duplicated = sorted({column for column in names if names.count(column) > 1})
    if duplicated:
        raise IngestError(f"input file {name!r} has duplicate column names {duplicated}; names must be unique")
    if table.num_columns == 0:
        raise IngestError(f"input file {name!r} has no columns")
    if table.num_rows == 0:
        what = "a header" if file_format in ("csv", "tsv") else "columns"
        raise IngestError(f"input file {name!r} has {what} but no data rows")
    return table


# --- Parquet -----------------------------------------------------------------------------------------------------


def _read_parquet(path: Path, name: str) -> pa.Table:
    head = decoding.head(path, 32)
    if not head.startswith(PARQUET_MAGIC):
        raise IngestError(
            f"cannot read {name!r} as parquet: it is not a Parquet file (it starts with {_preview(head)}, "
            f"not the magic bytes {PARQUET_MAGIC.decode()!r})"
        )
    with open(path, "rb") as stream:
        stream.seek(max(0, path.stat().st_size - len(PARQUET_MAGIC)))
        tail = stream.read()
    if path.stat().st_size < 3 * len(PARQUET_MAGIC) or tail != PARQUET_MAGIC:
        raise IngestError(
            f"cannot read {name!r} as parquet: it is not a complete Parquet file "
            f"(it does not end with {PARQUET_MAGIC.decode()!r}, so it looks truncated)"
        )
    try:  # the file alone, not a dataset reader (which fails on repeated column names)
        return pq.ParquetFile(path).read()
    except (pa.ArrowException, OSError, ValueError) as error:
        raise IngestError(f"cannot read {name!r} as parquet: {decoding.one_line(error)}") from error


def _preview(head: bytes) -> str:
    text = head.decode("utf-8", errors="replace")
    if all(char.isprintable() or char in "\r\n\t" for char in text):
        return f"text {text!r}"
    return f"bytes {head[:8].hex(' ')}"
