"""validate_data over record batches: ``validate_file`` gives the Validation ``validate_dataset(read_dataset(path))``
gives, whatever the batch size, with problems, categories and missing values at batch boundaries, and past the
distinct-value cap (spilled keys, heavy-hitter categories)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components._common.datasets import read_dataset, write_dataset
from components.ingest_data.errors import IngestError
from components.ingest_data.logic import read_source
from components.validate_data import column_stats
from components.validate_data.column_stats import DistinctKeys, Spill, dataset_schema, gather
from components.validate_data.leakage import SAMPLE_ROWS, check_leakage, sample_ranks
from components.validate_data.logic import Validation, validate_dataset, validate_file
from model_bundle import schema as contract

SMALL_CAP = 60  # above MAX_DOMAIN (50): every domain stays exact, most other columns spill


def view(validation: Validation) -> dict:
    """Everything a Validation tells, comparable with ==."""
    leakage = validation.leakage
    return {
        "schema": validation.schema,
        "task": validation.task,
        "data": validation.data_findings,
        "schema_findings": validation.schema_findings,
        "coerced": validation.coerced_findings,
        "identifiers": validation.identifier_findings,
        "leakage_findings": validation.leakage_findings,
        "leakage": None if leakage is None else (leakage.rows, leakage.whole, leakage.features, leakage.not_run),
    }


def without_spilled_categories(view_: dict, cap: int) -> dict:
    """``view_`` without the categories of columns past ``cap`` (a heavy-hitters summary there, by design)."""
    columns = [
        {key: value for key, value in column.items() if key != "categories" or column["distinct"] <= cap}
        for column in view_["schema"]["columns"]
    ]
    return {**view_, "schema": {**view_["schema"], "columns": columns}}


def houses(rows: int, seed: int) -> pd.DataFrame:
    """Numbers, nullable integers, text with and without a domain, identifiers, booleans, dates and a target with
    missing values: every path of the statistics."""
    rng = np.random.default_rng(seed)
    size = rng.gamma(4.0, 20.0, rows).round(1)
    size[rng.random(rows) < 0.05] = np.nan
    size[:2] = [0.0, -0.0]  # one distinct value, as pandas counts them
    floors = rng.integers(0, 6, rows).astype("float64")
    floors[rng.random(rows) < 0.1] = np.nan
    region = rng.choice(np.array(["north", "south", "east", "harbour"], dtype=object), rows)
    region[rng.random(rows) < 0.03] = None
    # Five frequent labels and many rare ones: the frequent ones lead the categories whatever the summary keeps.
    frequent = rng.random(rows) < 0.8
    label = np.where(frequent, np.char.add("top", rng.integers(0, 5, rows).astype(str)), "")
    label = np.where(frequent, label, np.char.add("rare", rng.integers(0, 400, rows).astype(str))).astype(object)
    price = (size * 30 + rng.normal(0, 200, rows)).round(0)
    price[rng.random(rows) < 0.02] = np.nan
    return pd.DataFrame(
        {
            "id": rng.permutation(rows) + 1,
            "code": np.char.add("c", rng.permutation(rows).astype(str)).astype(object),
            "size_sqm": size,
            "rooms": rng.integers(1, 8, rows),
            "floors": floors,
            "region": region,
            "label": label,
            "garden": rng.random(rows) < 0.4,
            "sold": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 500, rows), unit="D"),
            "score": rng.normal(0, 1, rows),
            "price": price,
        }
    )


@pytest.fixture
def small_cap(monkeypatch):
    monkeypatch.setattr(column_stats, "DISTINCT_CAP", SMALL_CAP)
    return SMALL_CAP


@pytest.mark.parametrize("batch_rows", [7, 499, 10_000])
def test_validate_file_equals_validate_dataset_past_the_cap(tmp_path, monkeypatch, batch_rows):
    path = tmp_path / "houses.parquet"
    write_dataset(houses(3000, seed=1), path)
    older = houses(3000, seed=2).replace({"region": {"harbour": "north"}})  # harbour: a new category
    reference = validate_dataset(read_dataset(_written(older, tmp_path)), "price").schema
    frame = read_dataset(path)
    whole = validate_dataset(frame, "price", reference=reference, batch_rows=1_000_000)  # below the cap: exact
    assert whole.schema_findings == contract.compare(reference, whole.schema, frame)  # today's comparison

    monkeypatch.setattr(column_stats, "DISTINCT_CAP", SMALL_CAP)
    streamed = validate_file(path, "price", reference=reference, batch_rows=batch_rows)

    assert without_spilled_categories(view(streamed), SMALL_CAP) == without_spilled_categories(view(whole), SMALL_CAP)
    spilled = {column["name"] for column in streamed.schema["columns"] if column["distinct"] > SMALL_CAP}
    assert spilled >= {"id", "code", "size_sqm", "label", "sold", "score", "price"}
    label = contract.column_map(streamed.schema)["label"]
    assert label["categories"][:5] == contract.column_map(whole.schema)["label"]["categories"][:5]
    assert whole.leakage is not None and whole.leakage.rows > 0  # the leakage sample was compared too
    assert {finding.check for finding in whole.schema_findings} >= {"range", "domain"}


def _written(frame: pd.DataFrame, tmp_path) -> str:
    path = tmp_path / "reference.parquet"
    write_dataset(frame, path)
    return str(path)


def test_validate_file_equals_validate_dataset_row_by_row(tmp_path):
    """Batches of one row, below the cap: every field exact, categories included."""
    path = tmp_path / "houses.parquet"
    write_dataset(houses(120, seed=3), path)

    assert view(validate_file(path, "price", batch_rows=1)) == view(validate_dataset(read_dataset(path), "price"))


def test_schema_equals_infer_for_any_batch_size():
    """The statistics' schema is ``schema.infer``'s, also for object columns a Parquet file cannot hold."""
    frame = houses(400, seed=4).assign(
        ints_as_objects=pd.Series(np.arange(400), dtype=object),
        numbers_then_text=pd.Series([1, 1.0, True, "1", "a", None, 2.5, 3] * 50, dtype=object),
        bools_with_nulls=pd.Series([True, None, False, True] * 100, dtype=object),
        nothing=pd.Series([None] * 400, dtype=object),
        late_text=pd.Series([None] * 390 + ["x"] * 10, dtype=object),
    )
    expected = contract.infer(frame, "price")
    for batch_rows in (1, 3, 64, 399, 400, 1000):
        for cap in (SMALL_CAP, column_stats.DISTINCT_CAP):
            actual = _streamed_schema(frame, batch_rows, cap)
            assert without_spilled_categories({"schema": actual}, cap) == without_spilled_categories(
                {"schema": expected}, cap
            ), (batch_rows, cap)


def _streamed_schema(frame: pd.DataFrame, batch_rows: int, cap: int) -> dict:
    batches = (frame.iloc[start : start + batch_rows] for start in range(0, len(frame), batch_rows))
    nulls = frame.isna().sum().to_dict()
    with Spill(len(frame)) as spill:
        stats, _ = gather(batches, frame.dtypes.to_dict(), nulls, len(frame), "price", spill, cap=cap)
    return dataset_schema(stats, len(frame), "price", {})


def test_empty_frame_schema_equals_infer():
    frame = houses(10, seed=5).iloc[:0]

    assert _streamed_schema(frame, 4, SMALL_CAP) == contract.infer(frame, "price")


# --- problems at batch boundaries -----------------------------------------------------------------------------------


def clean(rows: int = 400, seed: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    size = rng.gamma(4.0, 20.0, rows).round(1)
    return pd.DataFrame(
        {
            "size_sqm": size,
            "rooms": rng.integers(1, 8, rows),
            "region": rng.choice(np.array(["north", "south", "east"], dtype=object), rows),
            "amount": pd.Series(rng.integers(1, 50, rows).astype(str), dtype=object),
            "ref": rng.permutation(rows) + 1000,
            "price": (size * 30 + rng.normal(0, 300, rows)).round(0),
        }
    )


def both(frame: pd.DataFrame, tmp_path, batch_rows: int = 64, **parameters) -> tuple[Validation, Validation]:
    """The frame's Validation by ``validate_file`` in batches of ``batch_rows``, and by ``validate_dataset``."""
    path = tmp_path / "data.parquet"
    write_dataset(frame, path)
    streamed = validate_file(path, "price", batch_rows=batch_rows, **parameters)
    whole = validate_dataset(read_dataset(path), "price", **parameters)
    assert view(streamed) == view(whole)
    return streamed, whole


def test_an_infinite_value_in_the_last_batch_is_found(tmp_path):
    frame = clean()
    frame.loc[len(frame) - 1, "size_sqm"] = np.inf

    streamed, _ = both(frame, tmp_path)

    assert [(f.check, f.column, f.count) for f in streamed.failures] == [("infinite", "size_sqm", 1)]


def test_text_in_the_last_batch_of_a_number_column_is_found(tmp_path):
    frame = clean()
    frame.loc[len(frame) - 2 :, "amount"] = ["n/a", " unknown "]

    streamed, _ = both(frame, tmp_path)

    [finding] = streamed.failures
    assert (finding.check, finding.column, finding.count, finding.examples) == (
        "mixed_types",
        "amount",
        2,
        ("n/a", " unknown "),
    )


def test_coerced_column_is_described_as_numbers(tmp_path):
    frame = clean()
    frame.loc[len(frame) - 2 :, "amount"] = ["n/a", "7"]

    streamed, _ = both(frame, tmp_path, coerce_mixed_types=True)

    amount = contract.column_map(streamed.schema)["amount"]
    assert (amount["type"], amount["kind"], amount["nulls"]) == ("numeric", "float", 1)
    assert [f.column for f in streamed.coerced_findings] == ["amount"]
    assert streamed.leakage is not None and not streamed.leakage.not_run


def test_an_identifier_repeating_a_value_in_the_last_batch_is_found(tmp_path):
    reference = validate_dataset(clean(), "price").schema
    assert contract.column_map(reference)["ref"]["unique"]
    frame = clean()
    frame.loc[len(frame) - 1, "ref"] = frame.loc[0, "ref"]

    streamed, _ = both(frame, tmp_path, reference=reference)

    assert [(f.check, f.column, f.count) for f in streamed.schema_findings] == [("uniqueness", "ref", 1)]
    assert contract.column_map(streamed.schema)["ref"]["unique"] is False


def test_a_category_first_seen_in_a_late_batch_is_outside_the_domain(tmp_path):
    reference = validate_dataset(clean(), "price").schema
    frame = clean()
    frame.loc[len(frame) - 3 :, "region"] = ["west", "west", "harbour"]

    streamed, _ = both(frame, tmp_path, reference=reference)

    region = contract.column_map(streamed.schema)["region"]
    assert region["domain"] == ["east", "harbour", "north", "south", "west"]
    [finding] = [f for f in streamed.schema_findings if f.check == "domain"]
    assert (finding.column, finding.count, finding.examples) == ("region", 3, ("west", "harbour"))


def test_a_value_outside_the_range_in_the_last_batch_is_found(tmp_path):
    reference = validate_dataset(clean(), "price").schema
    frame = clean()
    frame.loc[len(frame) - 3 :, "size_sqm"] = [1e6, -5.0, 2e6]

    streamed, _ = both(frame, tmp_path, reference=reference)

    [finding] = [f for f in streamed.schema_findings if f.check == "range"]
    assert (finding.column, finding.count, finding.examples) == ("size_sqm", 3, (-5.0, 2e6, 1e6))


def test_a_column_missing_in_the_first_batches_keeps_its_kind_and_dtype(tmp_path):
    frame = clean()
    frame["region"] = frame["region"].where(frame.index >= 200, None)
    rooms = frame["rooms"].astype("float64")
    frame["rooms"] = rooms.where(frame.index < 390, np.nan)  # an integer column with missing values only late

    streamed, _ = both(frame, tmp_path)

    region, rooms = (contract.column_map(streamed.schema)[name] for name in ("region", "rooms"))
    assert (region["dtype"], region["kind"], region["nulls"], region["domain"]) == (
        "object",
        "string",
        200,
        ["east", "north", "south"],
    )
    assert (rooms["dtype"], rooms["kind"], rooms["nulls"], rooms["min"], rooms["max"]) == ("float64", "float", 10, 1, 7)


def test_int_column_with_nulls_only_late_is_float_in_every_batch(tmp_path):
    frame = pd.DataFrame({"count": pd.array([*range(1, 300), None], dtype="Int64"), "price": np.arange(300.0)})
    path = tmp_path / "data.parquet"
    frame.to_parquet(path)

    streamed = validate_file(path, "price", batch_rows=64)

    assert view(streamed) == view(validate_dataset(read_dataset(path), "price"))
    count = contract.column_map(streamed.schema)["count"]
    assert (count["nulls"], count["distinct"], count["min"], count["max"]) == (1, 299, 1.0, 299.0)


# --- the pieces -----------------------------------------------------------------------------------------------------


def test_leakage_sample_ranks_pick_the_rows_check_leakage_picks():
    rng = np.random.default_rng(7)
    labelled = np.flatnonzero(rng.random(9000) < 0.7)

    ranks = sample_ranks(len(labelled), seed=0)

    assert (
        labelled[ranks].tolist()
        == np.sort(np.random.default_rng(0).choice(labelled, SAMPLE_ROWS, replace=False)).tolist()
    )
    assert sample_ranks(SAMPLE_ROWS, seed=0) is None


def test_leakage_on_the_streamed_sample_equals_check_leakage(tmp_path):
    frame = houses(5000, seed=8)
    path = tmp_path / "houses.parquet"
    write_dataset(frame, path)

    streamed = validate_file(path, "price", exclude_columns=["id", "code", "label", "sold", "score", "garden"])

    features = {"size_sqm": "numeric", "rooms": "numeric", "floors": "numeric", "region": "categorical"}

    expected = check_leakage(read_dataset(path), "price", streamed.task, features, seed=0)
    assert (streamed.leakage.rows, streamed.leakage.whole, streamed.leakage.features) == (
        expected.rows,
        expected.whole,
        expected.features,
    )
    assert expected.rows > 1900  # sampled from more than SAMPLE_ROWS labelled rows


@pytest.mark.parametrize("cap", [0, 10, 10_000])
def test_distinct_keys_are_counted_exactly_when_spilled(cap):
    rng = np.random.default_rng(9)
    numbers = np.concatenate([rng.integers(0, 5000, 20_000), np.arange(1, 100)])
    with Spill(len(numbers)) as spill:
        keys = DistinctKeys(spill, cap)
        for chunk in np.array_split(numbers, 13):
            keys.add(chunk.astype("int64").view(np.uint64))
        assert keys.count() == len(np.unique(numbers))
        assert keys.count() == len(np.unique(numbers))  # counted once, kept


def test_spill_directory_is_removed(small_cap, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    path = tmp_path / "houses.parquet"
    write_dataset(houses(500, seed=10), path)

    validate_file(path, "price", batch_rows=50)

    assert [entry.name for entry in tmp_path.iterdir()] == ["houses.parquet"]


def test_batch_rows_must_be_positive(tmp_path):
    path = tmp_path / "houses.parquet"
    write_dataset(houses(20, seed=11), path)

    with pytest.raises(ValueError, match="parameter batch_rows must be a positive integer, got 0"):
        validate_file(path, "price", batch_rows=0)


@pytest.mark.parametrize("task", ["auto", "regression"])
def test_text_target_read_as_arrow_equals_the_frame(tmp_path, task):
    path = tmp_path / "houses.parquet"
    write_dataset(houses(600, seed=12).drop(columns=["code", "id"]), path)

    streamed = validate_file(path, "region", task=task, batch_rows=64)

    assert view(streamed) == view(validate_dataset(read_dataset(path), "region", task=task))
    if task == "regression":
        [finding] = streamed.failures
        first = tuple(read_dataset(path)["region"].dropna().unique()[:3])
        assert (finding.check, finding.examples) == ("target", first) and len(first) == 3
    else:
        assert streamed.task == "classification" and streamed.leakage is not None


# --- the bad-data corpus, streamed ----------------------------------------------------------------------------------

CORPUS = Path(__file__).resolve().parents[3] / "tests" / "data" / "corpus"


def corpus_files() -> list[str]:
    """The corpus files ingest reads (the others stop there, as tests/unit/test_bad_data_corpus.py checks)."""
    readable = []
    for path in sorted(CORPUS.iterdir()):
        if path.name == "README.md":
            continue
        try:
            read_source(str(path))
        except IngestError:
            continue
        readable.append(path.name)
    return readable


def test_most_of_the_corpus_reaches_validation():
    assert len(corpus_files()) >= 20  # 27 files, 6 of which stop at ingest: a reader broken for all would show here


@pytest.fixture(scope="module")
def champion() -> dict:
    return validate_dataset(read_source(str(CORPUS / "good.csv")).frame, "price").schema


@pytest.mark.parametrize("name", corpus_files())
def test_every_corpus_file_validates_the_same_in_batches(name, champion, tmp_path):
    """Each ingestible file of tests/data/corpus, as ingest writes it: the same Validation in batches of 3 rows and
    in one batch, against the champion's schema, with and without coercing mixed columns."""
    frame = read_source(str(CORPUS / name)).frame
    path = tmp_path / "data.parquet"
    write_dataset(frame, path)
    whole = read_dataset(path)
    for coerce in (False, True):
        expected = view(validate_dataset(whole, "price", reference=champion, coerce_mixed_types=coerce))
        for batch_rows in (3, 1000):
            streamed = validate_file(
                path, "price", reference=champion, coerce_mixed_types=coerce, batch_rows=batch_rows
            )
            assert view(streamed) == expected, (name, coerce, batch_rows)


@pytest.mark.parametrize("batch_rows", [64, 250])
def test_row_groups_with_their_own_dictionaries_are_cut_to_the_batches(tmp_path, batch_rows):
    """Text read dictionary-encoded comes in batches that end at row groups; cut to the other columns' batches."""
    frame = houses(1000, seed=13)
    path = tmp_path / "groups.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=90)
    assert pq.ParquetFile(path).metadata.num_row_groups == 12

    assert view(validate_file(path, "price", batch_rows=batch_rows)) == view(
        validate_dataset(read_dataset(path), "price")
    )


def test_a_dataset_of_text_columns_only(tmp_path):
    frame = houses(300, seed=14)[["region", "label", "code"]]
    path = tmp_path / "text.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=70)

    streamed = validate_file(path, "region", batch_rows=50)

    assert view(streamed) == view(validate_dataset(read_dataset(path), "region"))
    assert streamed.task == "classification"
