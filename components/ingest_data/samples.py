"""The built-in sample data behind ``sample://`` sources: a synthetic house-price table, generated from a seed.

Owns the generator (``house_prices``, also used by the demos, benchmarks and tests) and the ``sample://`` URI's
options (``rows``, at least 10, default 2000; ``seed``, a non-negative integer, default 7).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd

from components.ingest_data.errors import IngestError

SCHEME = "sample"
SAMPLE_DATASETS = ("house-prices",)


def read_sample(source_uri: str) -> pd.DataFrame:
    """The sample dataset ``source_uri`` names (``sample://house-prices?rows=N&seed=S``); raises IngestError naming
    an unknown dataset or option, or an option's bad value."""
    parsed = urlparse(source_uri)
    name, query = parsed.netloc, parse_qs(parsed.query)
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
