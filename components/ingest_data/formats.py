"""Reads one local file as Arrow record batches of bounded size: owns the table of supported extensions (the format
comes from the file name), the checks every format shares (exists, not empty, unique column names, rows; that each
column has a name is ``names``'), and the Parquet reader.
CSV is read by ``csv_format``, JSON Lines by ``json_lines``.

Gzip is recognised by its magic bytes, not only by a ``.gz`` extension: an HTTP server may already have
decompressed a ``.csv.gz``.

A Parquet file's columns are read as the data steps read every format (``_plain_parquet``): a pandas index saved in
the file is a column like the others when it is named and dropped when it is pandas' unnamed row labels; decimals
are float64 numbers; lists, structs and maps are their JSON text, as nested JSON Lines values are; dates, times and
timestamps are their ISO text, as CSV and JSON Lines dates are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from components.ingest_data import decoding
from components.ingest_data.csv_format import BLOCK_BYTES, CsvOptions, Widened, stream_csv, stream_header
from components.ingest_data.errors import IngestError
from components.ingest_data.json_lines import json_text, stream_json_lines
from components.ingest_data.names import check_named

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
    """Reads the local file ``path`` into one table (``stream_file`` collected); errors call it ``name`` (the path
    itself, a ``gs://`` URI or a URL)."""
    types = None
    while True:
        try:
            batches = list(stream_file(path, name, options, types))
        except Widened as widened:
            types = widened.types
            continue
        return pa.Table.from_batches(batches)


def stream_file(
    path: Path,
    name: str | None = None,
    options: CsvOptions | None = None,
    types: dict | None = None,
    block_bytes: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """The local file ``path`` as record batches of one schema, about ``block_bytes`` of input each; raises when the
    file is missing, empty, has repeated, blank or no column names, or no rows (after its last batch).

    CSV and JSON Lines: ``types`` are what an earlier read that raised ``Widened`` learnt of the columns (the file
    must be read again with them, as a later block held values the first block's types could not): Arrow types for
    CSV, ``json_lines.Column`` summaries for JSON Lines.
    """
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
        default_delimiter = "\t" if file_format == "tsv" else ""
        batches = stream_csv(path, name, options, default_delimiter, types, block_bytes)
    elif file_format == "parquet":
        batches = _stream_parquet(path, name, block_bytes or BLOCK_BYTES)
    else:
        batches = stream_json_lines(path, name, types, block_bytes)
    rows = 0
    checked = False
    for batch in batches:
        if not checked:
            _check_columns(batch.schema.names, name)
            checked = True
        rows += batch.num_rows
        yield batch
    if not checked and file_format in ("csv", "tsv"):
        _check_columns(stream_header(path, name, options, "\t" if file_format == "tsv" else "").names, name)
    if not checked and file_format == "jsonl":  # lines were read (blank lines only are refused), yet no key
        raise IngestError(f"input file {name!r} has no columns: each of its lines is an empty JSON object {{}}")
    if rows == 0:
        what = "a header" if file_format in ("csv", "tsv") else "columns"
        raise IngestError(f"input file {name!r} has {what} but no data rows")


def _check_columns(names: list[str], name: str) -> None:
    duplicated = sorted({column for column in names if names.count(column) > 1})
    if duplicated:
        raise IngestError(f"input file {name!r} has duplicate column names {duplicated}; names must be unique")
    if not names:
        raise IngestError(f"input file {name!r} has no columns")
    check_named(names, name)


# --- Parquet -----------------------------------------------------------------------------------------------------


def _stream_parquet(path: Path, name: str, block_bytes: int) -> Iterator[pa.RecordBatch]:
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
        parquet = pq.ParquetFile(path)
        _check_columns(parquet.schema_arrow.names, name)
        meta = parquet.metadata
        row_bytes = max(
            1, sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)) // max(1, meta.num_rows)
        )
        schema, columns = _plain_parquet(parquet.schema_arrow)
        batches = parquet.iter_batches(batch_size=max(1024, block_bytes // row_bytes), columns=columns)
        if meta.num_rows == 0:  # the schema, so the caller sees the columns and counts no rows
            batches = iter(schema.empty_table().to_batches() or [])
        for batch in batches:
            yield batch if batch.schema.equals(schema, check_metadata=True) else _as_plain(batch, schema)
    except IngestError:
        raise  # already names the file and what to do
    except (pa.ArrowException, OSError, ValueError) as error:
        raise IngestError(f"cannot read {name!r} as parquet: {decoding.one_line(error)}") from error


UNNAMED_INDEX = re.compile(r"__index_level_\d+__")  # pyarrow's name of an unnamed pandas index level


def _plain_parquet(schema: pa.Schema) -> tuple[pa.Schema, list[str]]:
    """The schema ingest writes for a Parquet file's ``schema``, and the columns to read.

    A frame saved by pandas with its index (``to_parquet`` after a filter, or ``set_index("id")``) stores the index
    as columns and marks them as the index in the schema's pandas metadata, so a reader would take them out of the
    columns: a named level stays a column (it is data, e.g. an identifier), and pandas' unnamed row labels are
    dropped (they number the rows of another frame and are no feature a request sends). Decimals become float64,
    the numbers every estimator takes; lists, structs and maps become their JSON text; dates, times and timestamps
    their ISO text, as CSV and JSON Lines keep them (one fixed text a value: pandas would write a datetime column
    with or without its times by the batch's values, so a model's input would depend on the rows beside it)."""
    pandas_meta = json.loads((schema.metadata or {}).get(b"pandas", b"{}"))
    index = {level for level in pandas_meta.get("index_columns", []) if isinstance(level, str)}
    fields = [field for field in schema if not (field.name in index and UNNAMED_INDEX.fullmatch(field.name))]
    metadata = dict(schema.metadata or {})
    if pandas_meta:
        kept = {field.name for field in fields}
        pandas_meta["index_columns"] = []
        pandas_meta["columns"] = [entry for entry in pandas_meta.get("columns", []) if entry.get("field_name") in kept]
        metadata[b"pandas"] = json.dumps(pandas_meta).encode()
    plain = pa.schema([field.with_type(_plain_type(field.type)) for field in fields], metadata=metadata or None)
    return plain, [field.name for field in fields]


def _plain_type(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_decimal(kind):
        return pa.float64()
    if pa.types.is_nested(kind) or pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_time(kind):
        return pa.string()
    return kind


def _as_plain(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    arrays = []
    for values, field in zip(batch.columns, schema, strict=True):
        if pa.types.is_nested(values.type):
            texts = [None if value is None else json_text(value) for value in values.to_pylist()]
            values = pa.array(texts, pa.string())
        arrays.append(values if values.type == field.type else values.cast(field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _preview(head: bytes) -> str:
    text = head.decode("utf-8", errors="replace")
    if all(char.isprintable() or char in "\r\n\t" for char in text):
        return f"text {text!r}"
    return f"bytes {head[:8].hex(' ')}"
