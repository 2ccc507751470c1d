"""Reads the dataset a source URI names, straight into a Parquet dataset in bounded memory (``ingest_source``) or
into one Arrow table (``read_source``, for tests and small data): owns which sources exist and how the files of one
source combine.

Sources: ``sample://house-prices?rows=N&seed=S`` (built-in generator, ``samples``); a local path, ``file://`` URI
or local glob (``data/*.csv``); ``gs://bucket/path/file.csv`` or ``gs://bucket/prefix/*.csv``; an ``https://`` or
``http://`` URL. Formats by extension: CSV (``.csv``, ``.tsv``, gzipped ``.csv.gz`` / ``.tsv.gz``), Parquet
(``.parquet``, ``.pq``), JSON Lines (``.jsonl``, ``.ndjson``, optionally gzipped). Several files (a glob) are read
in name order and concatenated only when they all have the same columns with compatible types.

sources.py fetches the files (credentials from the environment only), formats.py reads and checks each one as
record batches of about one block (``csv_format.BLOCK_BYTES`` of input) each, and ``DatasetWriter`` writes and
hashes them as they come: memory depends on the block size, not on the number of rows.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pyarrow as pa

from components._common.datasets import DatasetWriter
from components._common.memory import BASE_BYTES, DATA_STEP_REMEDY, check_memory
from components.ingest_data import samples
from components.ingest_data.csv_format import BLOCK_BYTES, CsvOptions, Widened, unify_types
from components.ingest_data.errors import IngestError
from components.ingest_data.formats import stream_file
from components.ingest_data.sources import source_files

FILE_SCHEMES = ("", "file", "gs", "http", "https")
SUPPORTED_SOURCES = (
    "sample://house-prices?rows=N&seed=S, a local path, file:// URI or glob, gs://bucket/path (or a glob), "
    "or an http(s):// URL"
)
MAX_LISTED_FILES = 1000  # file names recorded in the dataset's metadata; file_count is always exact
NO_VALUES = "no values"  # an all-missing column fits any kind
# Peak memory of ingest_source over its block size: 185 / 302 / 602 MB peak RSS at 4 / 16 / 64 MB blocks on
# bench/data.py's CSV (15 columns, 2M rows; ~165 MB of it the imports), so 9.8 x the block between 4 and 16 MB and
# 6.3 x above (the block read, its parse, the batch, its copy in one chunk, up to three batches at the writer and the
# Parquet encoders' buffers); 60 columns at 16 MB peaked at 296 MB: the block's bytes count, not its columns. With
# memory.BASE_BYTES (which counts libraries ingest does not import) the estimate at 16 MB, 525 MB for 15 columns, is
# above every peak measured at 5M and 20M rows (307 MB; 412-430 MB before the writer's dictionary limit).
BLOCK_MEMORY_FACTOR = 10
# What each column adds (its reader, encoder and page buffers' fixed cost; their data is within the block's share):
# CSVs of 2,001 / 10,001 numeric columns peaked at 418 / 564 MB against 302 MB for 15 (58 / 26 KB a column). One data
# page per column (1 MiB), as counted before, refused any file of more than about 460 columns at the 1Gi default.
COLUMN_BYTES = 64 * 1024


@dataclass(frozen=True)
class Ingested:
    """What was read: the data, the files it came from (in order) and how many bytes they hold."""

    table: pa.Table
    files: list[str] = field(default_factory=list)  # local paths, gs:// URIs or URLs; empty for sample://
    bytes: int = 0  # as stored: the compressed size of a .gz file, 0 for sample://

    def metadata(self) -> dict:
        """The lineage the component records next to rows, columns and the content hash."""
        return lineage(self.files, self.bytes)

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The data as pandas, as every later step reads it from the Parquet dataset."""
        return self.table.to_pandas()


@dataclass(frozen=True)
class Written:
    """What ``ingest_source`` wrote: the dataset's rows, columns and content hash, and its lineage."""

    info: dict  # rows, columns, content_sha256, as write_dataset returns them
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    batches: int = 0  # record batches written (each one Parquet row group, or a few)
    peak_buffered_bytes: int = 0  # the most the writer held at once: what bounds memory besides the block read

    def metadata(self) -> dict:
        """The lineage the component records next to rows, columns and the content hash."""
        return lineage(self.files, self.bytes)


def lineage(files: list[str], size: int) -> dict:
    """Where a dataset came from, as its metadata records it: bytes read, how many files and (the first
    ``MAX_LISTED_FILES``) which."""
    return {"bytes": size, "file_count": len(files), "files": files[:MAX_LISTED_FILES]}


def ingest_source(
    source_uri: str,
    path: str | Path,
    *,
    csv_delimiter: str = "",
    csv_encoding: str = "",
    csv_decimal: str = "",
    block_bytes: int | None = None,
) -> Written:
    """Reads every file behind ``source_uri`` straight into the Parquet dataset at ``path``, one block at a time:
    memory depends on the block size (``block_bytes``, default ``csv_format.BLOCK_BYTES``) and the number of
    columns, not on the number of rows. Options and checks as ``read_source``.

    When a late block or file needs wider column types than those written so far, what was written is discarded and
    the source is read again with the wider types (remote files are downloaded again).
    """

    def writer() -> DatasetWriter:
        return DatasetWriter(path)

    def check(batch: pa.RecordBatch) -> None:  # a clear stop before the bulk is read rather than an OOM kill
        estimate = ingest_memory(block_bytes or BLOCK_BYTES, batch.num_columns)
        check_memory("ingest_data", estimate, DATA_STEP_REMEDY, workload=f"for {batch.num_columns:,} columns")

    options = CsvOptions.parse(csv_delimiter, csv_encoding, csv_decimal)
    sink, files, size = _run(source_uri, options, block_bytes, writer, check)
    return Written(sink.info, files, size, sink.batches, sink.peak_buffered_bytes)


def ingest_memory(block_bytes: int, columns: int) -> int:
    """ingest_source's estimated peak memory: the interpreter and libraries, ``BLOCK_MEMORY_FACTOR`` times the block
    size, and ``COLUMN_BYTES`` per column (see ``BLOCK_MEMORY_FACTOR``). It does not grow with the rows."""
    return BASE_BYTES + BLOCK_MEMORY_FACTOR * block_bytes + COLUMN_BYTES * columns


def read_source(
    source_uri: str,
    *,
    csv_delimiter: str = "",
    csv_encoding: str = "",
    csv_decimal: str = "",
    block_bytes: int | None = None,
) -> Ingested:
    """Reads every file behind ``source_uri`` (one file, or a glob's matches in name order) into one table.

    ``csv_delimiter``: one character, or empty to detect it among ``, ; TAB |`` (a ``.tsv`` file is
    tab-separated); ``csv_encoding``: empty for UTF-8 (a byte-order mark is allowed), or a Python codec name;
    ``csv_decimal``: ``.`` or ``,``, empty for ``.`` (a column of numbers with decimal commas is then refused).
    They apply to CSV files only. Remote files are downloaded to a temporary directory, each deleted once read.
    The same batches ``ingest_source`` writes, collected in memory: for tests and small data.
    """
    options = CsvOptions.parse(csv_delimiter, csv_encoding, csv_decimal)
    sink, files, size = _run(source_uri, options, block_bytes, _Collector)
    return Ingested(pa.Table.from_batches(sink.batches, sink.schema), files, size)


class _Collector:
    """A sink keeping the batches in memory (``read_source``), with the writer's interface."""

    def __init__(self):
        self.batches: list[pa.RecordBatch | pa.Table] = []
        self.schema: pa.Schema | None = None

    def __enter__(self) -> _Collector:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        self.schema = self.schema or data.schema
        self.batches.extend(data.to_batches() if isinstance(data, pa.Table) else [data])


def _run(
    source_uri: str,
    options: CsvOptions,
    block_bytes: int | None,
    sink_factory,
    check: Callable[[pa.RecordBatch], None] | None = None,
):
    if not source_uri or not source_uri.strip():
        raise IngestError(f"source_uri is empty; expected {SUPPORTED_SOURCES}")
    source_uri = source_uri.strip()
    parsed = urlparse(source_uri)
    scheme = parsed.scheme.lower()
    if scheme == samples.SCHEME:  # generated and small: one table
        with sink_factory() as sink:
            sink.write(pa.Table.from_pandas(samples.read_sample(source_uri), preserve_index=False))
        return sink, [], 0
    if scheme not in FILE_SCHEMES:
        raise IngestError(
            f"unsupported source scheme {parsed.scheme!r} in {source_uri!r}; supported: {SUPPORTED_SOURCES}"
        )
    plan = _Plan(source_uri)
    while True:
        files: list[str] = []
        size = 0
        try:
            with sink_factory() as sink, tempfile.TemporaryDirectory(prefix="ingest-") as workdir:
                for source_file in source_files(source_uri, Path(workdir)):
                    files.append(source_file.name)
                    size += source_file.size
                    batches = stream_file(
                        source_file.path, source_file.name, options, plan.file_types.get(source_file.name), block_bytes
                    )
                    for batch in batches:
                        if check is not None:
                            check(batch)
                            check = None
                        sink.write(plan.combine(batch, source_file.name))
                    if source_file.path.parent == Path(workdir):
                        source_file.path.unlink()  # a download: free the disk before fetching the next one
            return sink, files, size
        except Widened as widened:  # a late block of a CSV or JSON Lines file needs other types or columns
            plan.file_types[widened.name] = widened.types
        except _Restart:  # a file needs wider common types than those written
            pass
        plan.restart()


class _Restart(Exception):
    """The common column types widened after rows were written with the narrower ones."""


class _Plan:
    """How the files of one source combine into one dataset, and what is learnt about their types across restarts.

    The first file fixes the column order; every later file must have the same column names. A column holds one
    kind of value (numbers, text, booleans, ...) in every file that has values in it; integers and floats are both
    numbers (the column becomes float64), and a column without any value fits every kind.
    """

    def __init__(self, source_uri: str):
        self.source_uri = source_uri
        self.file_types: dict[str, dict] = {}  # a file's widened types (formats.stream_file), by file name
        self.common: dict[str, pa.DataType] = {}  # the column types of the output, kept across restarts
        self.restart()

    def restart(self) -> None:
        self.first_name: str | None = None
        self.order: list[str] = []
        self.kinds: dict[str, tuple[str, str]] = {}  # column -> (kind, the first file with values in it)
        self.schema: pa.Schema | None = None
        self.files = 0
        self.seen: str | None = None  # the file whose columns were last checked
        self.written = False

    def combine(self, batch: pa.RecordBatch, name: str) -> pa.RecordBatch:
        """``batch`` of file ``name`` in the output's column order and types; raises ``_Restart`` when it needs wider
        types than the rows already written."""
        if self.first_name is None:
            self.first_name, self.order = name, batch.schema.names
        if name != self.seen:
            self.seen = name
            self.files += 1
            self._check_columns(batch.schema.names, name)
        if batch.schema.names != self.order:
            batch = batch.select(self.order)
        had_values = {column for column, (kind, _) in self.kinds.items() if kind != NO_VALUES}
        with_values = [
            column for column, values in zip(self.order, batch.columns, strict=True) if values.null_count < len(values)
        ]
        for column in with_values:
            kind, (known, known_in) = (
                _arrow_kind(batch.schema.field(column).type),
                self.kinds.get(column, (NO_VALUES, "")),
            )
            if known == NO_VALUES:
                self.kinds[column] = (kind, name)
            elif kind != known:
                raise IngestError(
                    f"column {column!r} holds {kind} in {name!r} but {known} in {known_in!r}; every file of "
                    f"{self.source_uri!r} must have the same column types"
                )
        if self.schema is None:
            if not self.common:  # the first file's batches as they are, schema metadata included
                self.schema = batch.schema
                return batch
            self.schema = pa.schema([pa.field(column, self.common[column]) for column in self.order])
        target = dict(zip(self.order, self.schema.types, strict=True))
        for column in with_values:
            old, new = target[column], batch.schema.field(column).type
            if old == new:
                continue
            if column not in had_values and _arrow_kind(old) != _arrow_kind(new):
                target[column] = new  # only missing values so far: the column takes the type of the values
            else:
                target[column] = unify_types(old, new)
        if list(target.values()) != self.schema.types:
            self.common = target
            raise _Restart
        if not batch.schema.equals(self.schema):
            arrays = [values.cast(kind) for values, kind in zip(batch.columns, self.schema.types, strict=True)]
            batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        return batch

    def _check_columns(self, names: list[str], name: str) -> None:
        missing = [column for column in self.order if column not in names]
        extra = [column for column in names if column not in self.order]
        if missing or extra:
            how = "; ".join(
                [f"missing column(s) {missing}"] * bool(missing) + [f"extra column(s) {extra}"] * bool(extra)
            )
            raise IngestError(
                f"{name!r} does not have the columns of {self.first_name!r}: {how}; every file of "
                f"{self.source_uri!r} must have the same columns"
            )


def _arrow_kind(kind: pa.DataType) -> str:
    """What a column of this type holds, in the words of the error messages (as pandas' infer_dtype would say)."""
    if pa.types.is_null(kind):
        return NO_VALUES
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "numbers"
    if pa.types.is_boolean(kind):
        return "booleans"
    if pa.types.is_timestamp(kind):
        return "timestamps"
    if pa.types.is_date(kind):
        return "dates"
    if pa.types.is_duration(kind):
        return "durations"
    return "text"
