"""model_bundle.profile: the reference profile prepare_data records, drift detection and the server's feature
signals read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model_bundle.profile import (
    REFERENCE_SAMPLE_ROWS,
    build_profile,
    category_shares,
    numeric_bins,
    reference_sample,
)


def test_profile_describes_each_column_as_numpy_and_pandas_do(houses):
    profiled = build_profile(houses, "price")

    assert profiled["rows"] == len(houses) and profiled["target"] == "price"
    size = profiled["columns"]["size_sqm"]
    values = houses["size_sqm"].dropna().to_numpy()
    assert size["count"] == len(values)
    assert size["quantiles"]["p25"] == pytest.approx(np.quantile(values, 0.25))
    assert size["quantiles"]["max"] == values.max()
    counts, edges = np.histogram(values, bins=np.unique(np.quantile(values, np.linspace(0, 1, 11))))
    assert size["bin_edges"] == pytest.approx(edges.tolist())
    assert size["bin_fractions"] == pytest.approx((counts / len(values)).tolist())
    labels = profiled["columns"]["energy_label"]["category_fractions"]
    assert labels == pytest.approx(houses["energy_label"].value_counts(normalize=True).to_dict())
    assert profiled["columns"]["renovated"]["category_fractions"].keys() == {"True", "False"}  # as the model sees them


def test_profile_of_many_rows_samples_quantiles_deterministically():
    frame = pd.DataFrame({"x": np.random.default_rng(4).normal(size=300_000), "y": np.arange(300_000.0)})
    first, second = build_profile(frame, "y"), build_profile(frame, "y")

    assert first == second
    x = first["columns"]["x"]
    assert x["sampled"] == 200_000 and x["count"] == 300_000
    assert x["quantiles"]["p50"] == pytest.approx(0.0, abs=0.01)
    assert sum(x["bin_fractions"]) == pytest.approx(1.0)
    # The drift tests' reference: a seeded sample of whole rows, as JSON.
    assert first["sample"]["columns"] == ["x", "y"]
    assert len(first["sample"]["data"]) == REFERENCE_SAMPLE_ROWS
    rows = pd.DataFrame(first["sample"]["data"], columns=first["sample"]["columns"])
    assert rows["y"].isin(frame["y"]).all() and rows["y"].is_unique


def test_profile_keeps_every_row_of_a_small_training_set_with_missing_values_as_null():
    frame = pd.DataFrame({"city": ["Lyon", None, "Graz"], "area": [50.5, 61.0, np.nan], "y": [1.0, 2.0, 3.0]})

    sample = build_profile(frame, "y", seed=3)["sample"]

    assert sample["columns"] == ["city", "area", "y"]
    assert sorted(map(tuple, sample["data"]), key=lambda row: row[2]) == [
        ("Lyon", 50.5, 1.0),
        (None, 61.0, 2.0),
        ("Graz", None, 3.0),
    ]


def test_readers_give_what_the_builder_recorded(houses):
    profiled = build_profile(houses, "price")

    edges, fractions = numeric_bins(profiled, "size_sqm")
    assert edges[0] == houses["size_sqm"].min() and edges[-1] == houses["size_sqm"].max()
    assert sum(fractions) == pytest.approx(1.0)
    shares, other = category_shares(profiled, "neighbourhood")
    assert shares == houses["neighbourhood"].value_counts(normalize=True).to_dict() and other == 0.0
    assert numeric_bins(profiled, "neighbourhood") is None and category_shares(profiled, "size_sqm") is None
    assert numeric_bins(profiled, "no_such_column") is None
    sample = reference_sample(profiled)
    assert list(sample.columns) == list(houses.columns) and len(sample) == len(houses)


def test_a_profile_without_a_sample_has_no_reference_sample():
    assert reference_sample({"rows": 10, "columns": {}}) is None
