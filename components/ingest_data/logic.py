"""Reads a dataset from a URI into an Arrow table.

Sources: ``sample://house-prices?rows=N&seed=S`` (built-in generator); a local path, ``file://`` URI or local glob
(``data/*.csv``); ``gs://bucket/path/file.csv`` or ``gs://bucket/prefix/*.csv``; an ``https://`` or ``http://``
URL. Formats by extension: CSV (``.csv``, ``.tsv``, gzipped ``.csv.gz`` / ``.tsv.gz``), Parquet (``.parquet``,
``.pq``), JSON Lines (``.jsonl``, ``.ndjson``, optionally gzipped). Several files (a glob) are read in name order
and concatenated only when they all have the same columns with compatible types.

sources.py fetches the files (credentials from the environment only), formats.py reads and checks each one.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import pyarrow as pa

from components.ingest_data.errors import IngestError
from components.ingest_data.formats import CsvOptions, read_file
from components.ingest_data.sources import source_files

__all__ = ["CsvOptions", "IngestError", "Ingested", "combine", "house_prices", "ingest", "read_file", "read_source"]

SAMPLE_DATASETS = ("house-prices",)
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


def ingest(source_uri: str, *, csv_delimiter: str = "", csv_encoding: str = "") -> pd.DataFrame:
    """Returns the dataset at ``source_uri``; raises IngestError naming the problem. See ``read_source``."""
    return read_source(source_uri, csv_delimiter=csv_delimiter, csv_encoding=csv_encoding).frame


def read_source(source_uri: str, *, csv_delimiter: str = "", csv_encoding: str = "") -> Ingested:
    """Reads every file behind ``source_uri`` (one file, or a glob's matches in name order) into one DataFrame.

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
    if scheme == "sample":
        return Ingested(pa.Table.from_pandas(_sample(parsed.netloc, parse_qs(parsed.query)), preserve_index=False))
    if scheme not in FILE_SCHEMES:
        raise IngestError(
            f"unsupported source scheme {parsed.scheme!r} in {source_uri!r}; supported: {SUPPORTED_SOURCES}"
        )
    tables: list[pa.Table] = []
    names: list[str] = []
    size = 0
    with tempfile.TemporaryDirectory(prefix="ingest-") as workdir:
        for source in source_files(source_uri, Path(workdir)):
            tables.append(read_file(source.path, source.name, options))
            names.append(source.name)
            size += source.size
            if source.path.parent == Path(workdir):
                source.path.unlink()  # a download: free the disk before fetching the next one
    return Ingested(combine(tables, names, source_uri), names, size)


def combine(tables: list[pa.Table], names: list[str], source: str) -> pa.Table:
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
                f"{name!r} does not have the columns of {first_name!r}: {how}; every file of {source!r} must have "
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
                    f"{source!r} must have the same column types"
                )
    combined = pd.concat([frame[list(first.columns)] for frame in frames], ignore_index=True)
    return pa.Table.from_pandas(combined, preserve_index=False)


def _kind(column: pd.Series) -> str:
    if column.isna().all():
        return NO_VALUES
    return KINDS.get(pd.api.types.infer_dtype(column, skipna=True), "text")


def _sample(name: str, query: dict[str, list[str]]) -> pd.DataFrame:
    if name not in SAMPLE_DATASETS:
        raise IngestError(f"unknown sample dataset {name!r}; available: {list(SAMPLE_DATASETS)}")
    unknown = sorted(set(query) - {"rows", "seed"})
    if unknown:
        raise IngestError(f"unknown sample option(s) {unknown}; supported: rows, seed")
    rows = _int_option(query, "rows", 2000)
    seed = _int_option(query, "seed", 7)
    if rows < 10:
        raise IngestError(f"sample option rows must be at least 10, got {rows}")
    if seed < 0:
        raise IngestError(f"sample option seed must be a non-negative integer, got {seed}")
    return house_prices(rows=rows, seed=seed)


def _int_option(query: dict[str, list[str]], name: str, default: int) -> int:
    if name not in query:
        return default
    value = query[name][-1]
    try:
        return int(value)
    except ValueError:
        raise IngestError(f"sample option {name} must be an integer, got {value!r}") from None


NEIGHBOURHOODS = {  # price per square metre, and how common the neighbourhood is
    "Old Town": (5200.0, 0.15),
    "Riverside": (4300.0, 0.25),
    "University": (3800.0, 0.2),
    "Harbour": (3300.0, 0.2),
    "Industrial Park": (2400.0, 0.2),
}
ENERGY_LABELS = np.array(list("ABCDEFG"))


def house_prices(rows: int, seed: int) -> pd.DataFrame:
    """A synthetic house-price table: numeric, categorical and missing values, a price with realistic noise.

    ``price`` is the regression target; ``energy_label`` (A-G, mostly driven by age and renovation) works as a
    classification target.
    """
    rng = np.random.default_rng(seed)
    names = list(NEIGHBOURHOODS)
    weights = np.array([share for _, share in NEIGHBOURHOODS.values()])
    neighbourhood = rng.choice(names, size=rows, p=weights / weights.sum())
    price_per_sqm = np.array([NEIGHBOURHOODS[name][0] for name in neighbourhood])

    size_sqm = np.round(np.clip(rng.lognormal(mean=np.log(95), sigma=0.35, size=rows), 25, 400), 1)
    rooms = np.clip(np.round(size_sqm / 28 + rng.normal(0, 0.8, rows)), 1, 10).astype(int)
    age_years = np.clip(rng.gamma(shape=2.0, scale=18.0, size=rows), 0, 150).round().astype(int)
    renovated = rng.random(rows) < np.clip(age_years / 80, 0.05, 0.8)
    distance_km = np.round(np.clip(rng.exponential(6.0, rows), 0.2, 45), 2)

    effective_age = np.where(renovated, age_years * 0.3, age_years)
    label_index = np.clip(np.round(effective_age / 14 + rng.normal(0, 0.7, rows)), 0, 6).astype(int)
    energy_label = ENERGY_LABELS[label_index]

    value = (
        size_sqm
        * price_per_sqm
        * (1 + 0.04 * (rooms - size_sqm / 28))
        * np.exp(-0.004 * effective_age)
        * np.exp(-0.015 * distance_km)
        * (1 - 0.03 * label_index)
    )
    price = np.round(value * rng.lognormal(0, 0.08, rows), -2)

    frame = pd.DataFrame(
        {
            "size_sqm": size_sqm,
            "rooms": rooms,
            "age_years": age_years.astype("float64"),
            "renovated": renovated,
            "distance_to_center_km": distance_km,
            "neighbourhood": neighbourhood.astype(object),
            "energy_label": energy_label.astype(object),
            "price": price,
        }
    )
    # Real listings have gaps: a few unknown ages, distances and neighbourhoods.
    for column, share in (("age_years", 0.03), ("distance_to_center_km", 0.02), ("neighbourhood", 0.02)):
        frame.loc[rng.random(rows) < share, column] = np.nan
    return frame
