"""ingest_data: the built-in sample generator (samples) and reading CSV / Parquet / JSON Lines from paths and file://
URIs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.ingest_data.errors import IngestError
from components.ingest_data.formats import read_file
from components.ingest_data.logic import read_source
from components.ingest_data.samples import house_prices

COLUMNS = [
    "size_sqm",
    "rooms",
    "age_years",
    "renovated",
    "distance_to_center_km",
    "neighbourhood",
    "energy_label",
    "price",
]


def ingest(source_uri: str, **options) -> pd.DataFrame:
    """The dataset at ``source_uri`` as pandas, as the later steps read it."""
    return read_source(source_uri, **options).frame


@pytest.fixture(scope="module")
def small_houses() -> pd.DataFrame:
    return house_prices(rows=40, seed=11)


def assert_same_data(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal frames, where a missing text value may come back as None (Parquet) or NaN (CSV)."""
    normalised = actual.copy()
    for column in normalised.select_dtypes(include="object").columns:
        normalised[column] = normalised[column].where(normalised[column].notna(), np.nan)
    pd.testing.assert_frame_equal(normalised, expected)


# --- sample://house-prices -------------------------------------------------------------------------------------


def test_sample_is_deterministic_for_a_seed():
    first = ingest("sample://house-prices?rows=50&seed=3")
    second = ingest("sample://house-prices?rows=50&seed=3")
    pd.testing.assert_frame_equal(first, second)


def test_sample_differs_between_seeds():
    first = ingest("sample://house-prices?rows=50&seed=3")
    other = ingest("sample://house-prices?rows=50&seed=4")
    assert not first.equals(other)


def test_sample_uri_gives_the_generator_output():
    pd.testing.assert_frame_equal(ingest("sample://house-prices?rows=30&seed=5"), house_prices(rows=30, seed=5))


def test_sample_has_the_documented_shape_columns_and_values():
    frame = ingest("sample://house-prices?rows=400&seed=1")

    assert frame.shape == (400, len(COLUMNS))
    assert list(frame.columns) == COLUMNS
    for column in ("size_sqm", "rooms", "age_years", "distance_to_center_km", "price"):
        assert pd.api.types.is_numeric_dtype(frame[column]), column
    assert frame["renovated"].dtype == bool
    assert set(frame["energy_label"]) <= set("ABCDEFG")
    assert (frame["price"] > 0).all()
    assert frame["rooms"].between(1, 10).all()


def test_sample_has_missing_values_only_where_documented():
    frame = ingest("sample://house-prices?rows=400&seed=1")

    with_gaps = {column for column in frame.columns if frame[column].isna().any()}
    assert with_gaps == {"age_years", "distance_to_center_km", "neighbourhood"}
    # A few percent, not most of the column.
    assert frame[sorted(with_gaps)].isna().mean().max() < 0.1


def test_sample_defaults_to_2000_rows():
    assert len(ingest("sample://house-prices")) == 2000


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("sample://house-prices?rows=abc", r"sample option rows must be an integer, got 'abc'"),
        ("sample://house-prices?seed=1.5", r"sample option seed must be an integer, got '1\.5'"),
        ("sample://house-prices?rows=9", r"sample option rows must be at least 10, got 9"),
        ("sample://house-prices?rows=20&colour=red", r"unknown sample option\(s\) \['colour'\]"),
        ("sample://titanic?rows=20", r"unknown sample dataset 'titanic'.*house-prices"),
    ],
)
def test_bad_sample_options_are_named(uri, message):
    with pytest.raises(IngestError, match=message):
        ingest(uri)


def test_negative_sample_seed_is_reported_as_a_bad_seed_option():
    with pytest.raises(IngestError, match=r"seed"):
        ingest("sample://house-prices?rows=20&seed=-1")


# --- files -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".CSV"])
def test_reads_csv(tmp_path, small_houses, suffix):
    path = tmp_path / f"houses{suffix}"
    small_houses.to_csv(path, index=False)

    assert_same_data(read_file(path).to_pandas(), small_houses)


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_reads_parquet(tmp_path, small_houses, suffix):
    path = tmp_path / f"houses{suffix}"
    small_houses.to_parquet(path, index=False)

    assert_same_data(ingest(str(path)), small_houses)


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson"])
def test_reads_json_lines(tmp_path, suffix):
    path = tmp_path / f"houses{suffix}"
    path.write_text('{"size_sqm": 80.5, "label": "A"}\n{"size_sqm": 120.0, "label": null}\n')

    frame = ingest(str(path))

    assert list(frame.columns) == ["size_sqm", "label"]
    assert frame["size_sqm"].tolist() == [80.5, 120.0]
    assert frame["label"].iloc[0] == "A"
    assert pd.isna(frame["label"].iloc[1])


def test_reads_a_file_uri(tmp_path, small_houses):
    path = tmp_path / "my data" / "houses.csv"  # the space is percent-encoded in the URI
    path.parent.mkdir()
    small_houses.to_csv(path, index=False)
    uri = path.as_uri()
    assert "%20" in uri

    assert_same_data(ingest(uri), small_houses)


def test_file_uri_to_a_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nothing.csv"
    with pytest.raises(IngestError, match=rf"input file '{missing}' does not exist"):
        ingest(missing.as_uri())


def test_missing_path_is_named(tmp_path):
    missing = tmp_path / "absent.parquet"
    with pytest.raises(IngestError, match=rf"input file '{missing}' does not exist"):
        ingest(str(missing))


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(IngestError, match=rf"input path '{tmp_path}' is not a file"):
        ingest(str(tmp_path))


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_empty_file_is_reported(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    path.touch()
    with pytest.raises(IngestError, match=rf"input file '{path}' is empty \(0 bytes\)"):
        ingest(str(path))


def test_header_only_csv_is_reported(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("size_sqm,price\n")
    with pytest.raises(IngestError, match=rf"input file '{path}' has a header but no data rows"):
        ingest(str(path))


def test_blank_csv_cannot_be_read(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("\n\n")
    with pytest.raises(IngestError, match=rf"cannot read '{path}' as csv"):
        ingest(str(path))


def test_corrupt_parquet_names_the_file(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_text("this is not parquet")
    with pytest.raises(IngestError, match=rf"cannot read '{path}' as parquet"):
        ingest(str(path))


@pytest.mark.parametrize("name", ["houses.xlsx", "houses.txt", "houses"])
def test_unsupported_extension_lists_the_supported_ones(tmp_path, name):
    path = tmp_path / name
    path.write_text("a,b\n1,2\n")
    with pytest.raises(IngestError, match=r"has unsupported extension; supported: .*'\.csv'.*'\.parquet'"):
        ingest(str(path))


@pytest.mark.parametrize(
    ("uri", "scheme"),
    [("s3://bucket/houses.csv", "s3"), ("ftp://example.com/houses.csv", "ftp"), ("hdfs://namenode/h.parquet", "hdfs")],
)
def test_unsupported_scheme_is_named(uri, scheme):
    with pytest.raises(IngestError, match=rf"unsupported source scheme '{scheme}' in '{uri}'"):
        ingest(uri)


@pytest.mark.parametrize("uri", ["", "   "])
def test_empty_source_uri_is_rejected(uri):
    with pytest.raises(IngestError, match=r"source_uri is empty"):
        ingest(uri)


def test_generator_values_are_plausible():
    frame = house_prices(rows=300, seed=2)
    # Price grows with size: the generator must keep a learnable signal.
    assert np.corrcoef(frame["size_sqm"], frame["price"])[0, 1] > 0.5
