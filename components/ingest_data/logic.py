"""Reads the dataset a source URI names into one Arrow table: owns which sources exist and how the files of one
source combine.

Sources: ``sample://house-prices?rows=N&seed=S`` (built-in generator, ``samples``); a local path, ``file://`` URI
or local glob (``data/*.csv``); ``gs://bucket/path/file.csv`` or ``gs://bucket/prefix/*.csv``; an ``https://`` or
``http://`` URL. Formats by extension: CSV (``.csv``, ``.tsv``, gzipped ``.csv.gz`` / ``.tsv.gz``), Parquet
(``.parquet``, ``.pq``), JSON Lines (``.jsonl``, ``.ndjson``, optionally gzipped). Several files (a glob) are read
in name order and concatenated only when they all have the same columns with compatible types.

sources.py fetches the files (credentials from the environment only), formats.py reads and checks each one.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pyarrow as pa

from components.ingest_data import samples
from components.ingest_data.csv_format import CsvOptions
from components.ingest_data.errors import IngestError
from components.ingest_data.formats import read_file
from components.ingest_data.sources import source_files

FILE_SCHEMES = ("", "file", "gs", "http", "https")
SUPPORTED_SOURCES = (
    "sample://house-prices?rows=N&seed=S, a local path, file:// URI or glob, gs://bucket/path (or a glob), "
    "or an http(s):// URL"
)
MAX_LISTED_FILES = 1000  # file names recorded in the dataset's metadata; file_count is always exact
KINDS = {  # pandas.api.types.infer_dtype -> what a column holds; anything else is text
    "boolean": "booleans",
    "integer": "numbers",
    "floating": "numbers",
    "mixed-integer-float": "numbers",
    "decimal": "numbers",
    "complex": "numbers",
    "datetime64": "timestamps",
    "datetime": "timestamps",
    "date": "dates",
    "timedelta64": "durations",
    "timedelta": "durations",
}
NO_VALUES = "no values"  # an all-missing column fits any kind


@dataclass(frozen=True)
class Ingested:
    """What was read: the data, the files it came from (in order) and how many bytes they hold."""

    table: pa.Table
    files: list[str] = field(default_factory=list)  # local paths, gs:// URIs or URLs; empty for sample://
    bytes: int = 0  # as stored: the compressed size of a .gz file, 0 for sample://

    def metadata(self) -> dict:
        """The lineage the component records next to rows, columns and the content hash."""
        return {"bytes": self.bytes, "file_count": len(self.files), "files": self.files[:MAX_LISTED_FILES]}

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The data as pandas, as every later step reads it from the Parquet dataset."""
        return self.table.to_pandas()


def read_source(source_uri: str, *, csv_delimiter: str = "", csv_encoding: str = "") -> Ingested:
    """Reads every file behind ``source_uri`` (one file, or a glob's matches in name order) into one table.

    ``csv_delimiter``: one character, or empty to detect it among ``, ; TAB |`` (a ``.tsv`` file is
    tab-separated); ``csv_encoding``: empty for UTF-8 (a byte-order mark is allowed), or a Python codec name.
    Both apply to CSV files only. Remote files are downloaded to a temporary directory, each deleted once read.
    """
    if not source_uri or not source_uri.strip():
        raise IngestError(f"source_uri is empty; expected {SUPPORTED_SOURCES}")
    source_uri = source_uri.strip()
    options = CsvOptions.parse(csv_delimiter, csv_encoding)
    parsed = urlparse(source_uri)
    scheme = parsed.scheme.lower()
    if scheme == samples.SCHEME:
        return Ingested(pa.Table.from_pandas(samples.read_sample(source_uri), preserve_index=False))
    if scheme not in FILE_SCHEMES:
        raise IngestError(
            f"unsupported source scheme {parsed.scheme!r} in {source_uri!r}; supported: {SUPPORTED_SOURCES}"
        )
    tables: list[pa.Table] = []
    names: list[str] = []
    size = 0
    with tempfile.TemporaryDirectory(prefix="ingest-") as workdir:
        for source_file in source_files(source_uri, Path(workdir)):
            tables.append(read_file(source_file.path, source_file.name, options))
            names.append(source_file.name)
            size += source_file.size
            if source_file.path.parent == Path(workdir):
                source_file.path.unlink()  # a download: free the disk before fetching the next one
    return Ingested(combine(tables, names, source_uri), names, size)


def combine(tables: list[pa.Table], names: list[str], source_uri: str) -> pa.Table:
    """Concatenates the files' frames in order; raises naming the first file whose columns differ from the first
    file's (missing or extra names) or whose column holds another kind of value (numbers, text, booleans, ...).

    Columns may come in another order (the first file's order is kept); integers and floats are both numbers, and
    a column without any value fits every kind.
    """
    if len(tables) == 1:
        return tables[0]
    frames = [table.to_pandas() for table in tables]
    first, first_name = frames[0], names[0]
    kinds = {column: (_kind(first[column]), first_name) for column in first.columns}
    for frame, name in zip(frames[1:], names[1:], strict=True):
        missing = [column for column in first.columns if column not in frame.columns]
        extra = [column for column in frame.columns if column not in kinds]
        if missing or extra:
            how = "; ".join(
                [f"missing column(s) {missing}"] * bool(missing) + [f"extra column(s) {extra}"] * bool(extra)
            )
            raise IngestError(
                f"{name!r} does not have the columns of {first_name!r}: {how}; every file of {source_uri!r} must have "
                "the same columns"
            )
        for column in first.columns:
            kind = _kind(frame[column])
            known, known_in = kinds[column]
            if known == NO_VALUES:
                kinds[column] = (kind, name)
            elif kind not in (known, NO_VALUES):
                raise IngestError(
                    f"column {column!r} holds {kind} in {name!r} but {known} in {known_in!r}; every file of "
                    f"{source_uri!r} must have the same column types"
                )
    combined = pd.concat([frame[list(first.columns)] for frame in frames], ignore_index=True)
    return pa.Table.from_pandas(combined, preserve_index=False)


def _kind(column: pd.Series) -> str:
    if column.isna().all():
        return NO_VALUES
    return KINDS.get(pd.api.types.infer_dtype(column, skipna=True), "text")
