"""model_bundle.profile: the reference profile prepare_data records, drift detection and the server's feature
signals read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model_bundle import profile as profile_module
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


def test_booleans_and_times_are_counted_by_the_text_the_model_sees():
    """numpy booleans and times are counted before they are made text (formatting every row is the cost): the same
    texts, the same shares, ties in order of first appearance; a time's text follows the batch's values (seconds
    shown when one has them). Objects are made text first: values pandas finds equal may have different texts."""
    days = pd.to_datetime(["2024-01-02", "2024-01-01", "2024-01-02", "2024-01-01", "2024-01-03", None])
    frame = pd.DataFrame(
        {
            "day": days,
            "at": days.where(np.arange(6) != 4, pd.Timestamp("2024-01-03 00:00:05")),
            "local": days.tz_localize("Europe/Paris"),
            "flag": [True, False, False, True, True, True],
            "mixed": pd.Series([True, 1, "1", 1.0, None, "x"], dtype=object),  # equal to pandas, not as text
            "y": np.arange(6.0),
        }
    )

    columns = build_profile(frame, "y")["columns"]

    assert list(columns["day"]["category_fractions"].items()) == [
        ("2024-01-02", 0.4),
        ("2024-01-01", 0.4),
        ("2024-01-03", 0.2),
    ]
    assert list(columns["at"]["category_fractions"]) == [
        "2024-01-02 00:00:00",
        "2024-01-01 00:00:00",
        "2024-01-03 00:00:05",
    ]
    assert list(columns["local"]["category_fractions"])[:2] == [
        "2024-01-02 00:00:00+01:00",
        "2024-01-01 00:00:00+01:00",
    ]
    assert list(columns["flag"]["category_fractions"].items()) == [("True", 4 / 6), ("False", 2 / 6)]
    assert columns["mixed"]["category_fractions"] == {"1": 0.4, "True": 0.2, "1.0": 0.2, "x": 0.2}
    for name in ("day", "at", "local", "flag", "mixed"):
        present = frame[name].dropna()
        expected = present.astype(str).value_counts(normalize=True).to_dict()
        assert columns[name]["category_fractions"] == pytest.approx(expected)
        assert columns[name]["count"] == len(present)


def _without_moments(columns: dict) -> dict:
    return {name: {k: v for k, v in column.items() if k not in ("mean", "std")} for name, column in columns.items()}


def _assert_same_profile(built: dict, expected: dict) -> None:
    """The file's profile is the frame's (mean and standard deviation merged from batches: but for the last bits)."""
    for name, column in expected["columns"].items():
        for statistic in ("mean", "std"):
            if statistic in column:
                assert built["columns"][name][statistic] == pytest.approx(column[statistic], rel=1e-12)
    assert _without_moments(built["columns"]) == _without_moments(expected["columns"])
    assert built["sample"] == expected["sample"]
    assert built["rows"] == expected["rows"]


def test_profile_of_a_file_whose_batches_span_row_groups_is_the_profile_of_its_frame(tmp_path, monkeypatch):
    """Text is read dictionary-encoded by a second reader, whose batches end where the row groups (dictionaries)
    do: its rows are cut to the other columns' batches, a batch's rows may come from two dictionaries, and a
    category first seen late in a batch keeps its place in the order of first appearance."""
    from components._common.datasets import read_dataset
    from components.prepare_data.profiling import build_profile_file

    monkeypatch.setattr(profile_module, "PROFILE_SAMPLE_ROWS", 500)
    rng = np.random.default_rng(5)
    n = 3_000
    table = pa.table(
        {
            "city": pa.array([None if c == "-" else c for c in rng.choice(["Lyon", "Graz", "Oslo", "-"], n)]),
            "late": ["a"] * (n - 1) + ["z"],
            "x": rng.normal(size=n),
            "k": pa.array([None if i % 9 == 0 else int(v) for i, v in enumerate(rng.integers(0, 50, n))], pa.int64()),
            "small": pa.array(rng.integers(0, 5, n), pa.int32()),
            "f32": pa.array(rng.normal(size=n).astype("float32")),
            "flag": pa.array(rng.choice([True, False], n)),
            "y": rng.normal(size=n),
        }
    )
    path = tmp_path / "rows.parquet"
    pq.write_table(table, path, row_group_size=700)
    expected = build_profile(read_dataset(path), "y", seed=2)

    for batch_rows in (64, 1_000, 2_048, 5_000):
        _assert_same_profile(build_profile_file(path, "y", seed=2, batch_rows=batch_rows), expected)


def test_nan_stored_as_a_value_late_in_the_file_is_missing_as_pandas_reads_it(tmp_path, monkeypatch):
    """A float column with NaN as a value (not a Parquet null) only in a late batch: the first pass stops there,
    the NaN values are counted, and the profile is the frame's."""
    from components._common.datasets import read_dataset
    from components.prepare_data.profiling import build_profile_file

    monkeypatch.setattr(profile_module, "PROFILE_SAMPLE_ROWS", 100)
    x = np.arange(1_000.0)
    x[[900, 950]] = np.nan
    with_nulls = pa.array([None if i % 10 == 0 else float(i) for i in range(1_000)])
    path = tmp_path / "nan.parquet"
    pq.write_table(pa.table({"x": x, "z": with_nulls, "t": ["p", "q"] * 500, "y": np.arange(1_000.0)}), path)

    built = build_profile_file(path, "y", batch_rows=64)

    assert built["columns"]["x"]["count"] == 998 and built["columns"]["z"]["count"] == 900
    _assert_same_profile(built, build_profile(read_dataset(path), "y"))


def test_text_is_counted_by_dictionary_index_as_by_its_values():
    from components._common.counting import text_value_counts

    def counted(values):
        uniques, counts = text_value_counts(values)
        return int(counts.sum()), uniques.tolist(), counts.tolist()

    # First appearance, not dictionary order; a value first seen past the first thousand rows; an unused entry.
    indices = pa.array([1, None, 1, 0] + [1] * 3_000 + [2], pa.int32())
    encoded = pa.DictionaryArray.from_arrays(indices, pa.array(["x", "y", "z", "unused"]))
    assert counted(encoded) == (3_004, ["y", "x", "z"], [3_002, 1, 1])
    assert counted(encoded) == counted(encoded.cast(pa.string()))
    # A dictionary that repeats a value: counted by the values.
    repeated = pa.DictionaryArray.from_arrays(pa.array([0, 1, 2, 1], pa.int32()), pa.array(["a", "b", "a"]))
    assert counted(repeated) == (4, ["a", "b"], [2, 2])
    # Rows from two dictionaries (two row groups).
    two = pa.chunked_array([pa.array(["b", None, "a"]).dictionary_encode(), pa.array(["c", "a"]).dictionary_encode()])
    assert counted(two) == (4, ["b", "a", "c"], [1, 2, 1])
    assert counted(pa.array([], pa.string()).dictionary_encode()) == (0, [], [])


@pytest.mark.parametrize(
    ("rows", "seed"), [(1, 0), (2, 5), (4_999, 1), (5_000, 2), (5_001, 3), (65_537, 0), (200_003, 2**31)]
)
def test_sampled_rows_are_those_dataframe_sample_draws(rows, seed):
    """The draws of ``DataFrame.sample`` (its permutation's first rows), followed without shuffling every row."""
    taken = min(rows, REFERENCE_SAMPLE_ROWS)
    frame = pd.DataFrame({"row": np.arange(rows)})

    drawn = profile_module._sample_positions(rows, taken, seed)

    assert drawn.tolist() == frame.sample(n=taken, random_state=seed)["row"].tolist()
    assert drawn.tolist() == np.random.RandomState(seed).permutation(rows)[:taken].tolist()


def test_profile_of_a_file_of_text_columns_only_is_the_profile_of_its_frame(tmp_path):
    """No column but text: the batches' rows are counted from the file, not from a frame without columns."""
    from components._common.datasets import read_dataset
    from components.prepare_data.profiling import build_profile_file

    rng = np.random.default_rng(8)
    path = tmp_path / "text.parquet"
    table = pa.table({"city": rng.choice(["Lyon", "Graz"], 2_000).tolist(), "kind": rng.choice(["a", "b", "c"], 2_000)})
    pq.write_table(table, path, row_group_size=700)
    expected = build_profile(read_dataset(path), "kind")

    for batch_rows in (64, 1_000, 5_000):
        assert build_profile_file(path, "kind", batch_rows=batch_rows) == expected
