"""Reads a dataset from a URI into a DataFrame.

Supported sources: ``sample://house-prices?rows=N&seed=S`` (built-in generator), local paths and ``file://``
URIs to CSV, Parquet or JSON Lines files (chosen by extension).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np
import pandas as pd

READERS = {
    ".csv": lambda path: pd.read_csv(path),
    ".parquet": lambda path: pd.read_parquet(path),
    ".pq": lambda path: pd.read_parquet(path),
    ".jsonl": lambda path: pd.read_json(path, lines=True),
    ".ndjson": lambda path: pd.read_json(path, lines=True),
}
SAMPLE_DATASETS = ("house-prices",)
SUPPORTED_SOURCES = "sample://house-prices?rows=N&seed=S, a local path or file:// URI"


class IngestError(ValueError):
    """The source cannot be read; the message names the URI or file."""


def ingest(source_uri: str) -> pd.DataFrame:
    """Returns the dataset at ``source_uri``; raises IngestError naming the problem."""
    if not source_uri or not source_uri.strip():
        raise IngestError(f"source_uri is empty; expected {SUPPORTED_SOURCES}")
    parsed = urlparse(source_uri)
    if parsed.scheme == "sample":
        return _sample(parsed.netloc, parse_qs(parsed.query))
    if parsed.scheme == "file":
        return read_file(Path(unquote(parsed.path)))
    if parsed.scheme == "":
        return read_file(Path(source_uri))
    raise IngestError(f"unsupported source scheme {parsed.scheme!r} in {source_uri!r}; supported: {SUPPORTED_SOURCES}")


def read_file(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise IngestError(f"input file {str(path)!r} does not exist")
    if not path.is_file():
        raise IngestError(f"input path {str(path)!r} is not a file")
    if path.stat().st_size == 0:
        raise IngestError(f"input file {str(path)!r} is empty (0 bytes)")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise IngestError(f"input file {str(path)!r} has unsupported extension; supported: {sorted(READERS)}")
    try:
        frame = reader(path)
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise IngestError(f"cannot read {str(path)!r} as {path.suffix.lower()[1:]}: {error}") from error
    if frame.columns.size == 0:
        raise IngestError(f"input file {str(path)!r} has no columns")
    if frame.empty:
        raise IngestError(f"input file {str(path)!r} has a header but no data rows")
    return frame


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
