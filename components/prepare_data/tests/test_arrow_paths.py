"""prepare_file takes what it can straight from Arrow: text read as dictionaries (several per batch where the file's
row groups end inside a batch), row hashes of numbers and text from Arrow's buffers. The rows, duplicates, files and
messages are those of ``prepare`` on the whole frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components._common import counting
from components._common.datasets import dataset_layout, read_dataset, write_dataset
from components.prepare_data import logic
from components.prepare_data.logic import prepare, prepare_file


def text_frame(n: int = 900, seed: int = 0) -> pd.DataFrame:
    """Text of few distinct values (with missing ones), numbers, a class label and a target, then copies of earlier
    rows, near and far."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "city": rng.choice(["north", "south", "east", "west", "centre"], n).astype(object),
            "size": rng.normal(100, 20, n).round(1),
            "rooms": rng.integers(1, 6, n),
            "kind": rng.choice(["flat", "house", "villa"], n).astype(object),
            "price": rng.normal(1000, 100, n).round(0),
        }
    )
    frame.loc[rng.choice(n, 40, replace=False), "city"] = None
    frame.loc[rng.choice(n, 30, replace=False), "size"] = np.nan
    frame.loc[rng.choice(n, 10, replace=False), "price"] = np.nan
    # Late rows repeat rows of other batches and other row groups.
    return pd.concat([frame, frame.iloc[[3, 63, 64, 130, 499, 777, 3]]], ignore_index=True)


def write_in_row_groups(frame: pd.DataFrame, path, rows: int) -> pd.DataFrame:
    """Writes ``frame`` as write_dataset writes it, but in row groups of ``rows`` rows, each row group's rows
    shuffled within it first so each text dictionary lists its values in another order; returns the rows written."""
    rng = np.random.default_rng(1)
    order = np.concatenate(
        [rng.permutation(np.arange(start, min(start + rows, len(frame)))) for start in range(0, len(frame), rows)]
    )
    shuffled = frame.iloc[order].reset_index(drop=True)
    pq.write_table(pa.Table.from_pandas(shuffled, preserve_index=False), path, row_group_size=rows)
    return shuffled


@pytest.mark.parametrize(("target", "task"), [("price", "regression"), ("kind", "classification")])
@pytest.mark.parametrize("batch_rows", [64, 1000])
def test_text_read_as_dictionaries_across_row_groups_gives_the_frame_split(tmp_path, target, task, batch_rows):
    source = tmp_path / "data.parquet"
    frame = write_in_row_groups(text_frame(), source, rows=50)  # row groups end inside the batches
    assert counting.dictionary_columns(source, ["city", "kind"], batch_rows) == ["city", "kind"]
    expected = prepare(read_dataset(source), target=target, task=task, seed=4)

    train, test = tmp_path / "train.parquet", tmp_path / "test.parquet"
    prepared = prepare_file(source, train, test, target=target, task=task, seed=4, batch_rows=batch_rows)

    assert expected.dropped_duplicates == int(frame.dropna(subset=[target]).duplicated().sum()) > 0
    assert prepared.cleaning == expected.cleaning
    assert (prepared.train_rows, prepared.test_rows) == (len(expected.train), len(expected.test))
    pd.testing.assert_frame_equal(read_dataset(train), expected.train)
    pd.testing.assert_frame_equal(read_dataset(test), expected.test)
    assert prepared.train_info == write_dataset(expected.train, tmp_path / "check.parquet")
    assert prepared.test_info == write_dataset(expected.test, tmp_path / "check.parquet")
    # One row group written per batch of the file read, as when the text was read as plain strings.
    batches = -(-len(frame) // batch_rows)
    assert pq.ParquetFile(train).metadata.num_row_groups == batches


def numbers_table(n: int = 240) -> pa.Table:
    """Integers of each width, unsigned ones, floats of two widths, integers with missing values (floats in
    pandas), text with missing values; rows 200.. repeat rows 0.. with -0.0 for 0.0 and a stored NaN (negative)
    for a null."""
    rng = np.random.default_rng(2)
    half = rng.random(n) < 0.5
    f64 = rng.normal(size=n).round(2)
    f64[::9] = 0.0
    columns = {
        "i8": pa.array(rng.integers(-100, 100, n), pa.int8()),
        "i16": pa.array(rng.integers(-3, 3, n), pa.int16()),
        "i32": pa.array(rng.integers(-(2**31), 2**31 - 1, n), pa.int32()),
        "u64": pa.array(rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2), pa.uint64()),
        "f32": pa.array(rng.normal(size=n).astype(np.float32), pa.float32()),
        "f64": pa.array(f64, pa.float64(), mask=rng.random(n) < 0.1),
        "gappy": pa.array(rng.integers(0, 4, n), pa.int64(), mask=half & (rng.random(n) < 0.3)),
        "t": pa.array(rng.choice(["x", "y", "z"], n), pa.string(), mask=rng.random(n) < 0.2),
        "y": pa.array(rng.integers(0, 3, n).astype(float)),
    }
    table = pa.table(columns)
    copies = table.slice(0, 40)
    f64_copy = copies["f64"].to_numpy(zero_copy_only=False).copy()  # nulls as NaN: stored as values now
    f64_copy[f64_copy == 0.0] = -0.0
    f64_copy[np.isnan(f64_copy)] = -np.nan  # another NaN's bits than numpy's
    copies = copies.set_column(5, "f64", pa.array(f64_copy, pa.float64(), from_pandas=False))
    return pa.concat_tables([table.slice(0, 200), copies])


def test_row_hashes_from_arrow_are_the_hashes_of_the_frame(tmp_path):
    source = tmp_path / "numbers.parquet"
    pq.write_table(numbers_table(), source)
    names = pq.read_schema(source).names
    dtypes = dataset_layout(source).dtypes
    frame = read_dataset(source)
    assert frame["gappy"].dtype == np.float64 and frame["i8"].dtype == np.int8 and frame["f32"].dtype == np.float32

    from_frame = logic._row_hashes(frame, None, names)
    for dictionary in ([], ["t"]):  # the text plain and as a dictionary
        batch = pq.ParquetFile(source, read_dictionary=dictionary).read().combine_chunks().to_batches()[0]
        from_rows = {name: dtypes[name] for name in names}
        from_arrow = logic._row_hashes(None, batch, names, from_rows)

        np.testing.assert_array_equal(from_arrow[0], from_frame[0])
        np.testing.assert_array_equal(from_arrow[1], from_frame[1])


@pytest.mark.parametrize("batch_rows", [7, 64, 1000])
def test_duplicates_of_numbers_from_arrow_follow_pandas_equality(tmp_path, batch_rows):
    source = tmp_path / "numbers.parquet"
    pq.write_table(numbers_table(), source, row_group_size=90)
    frame = read_dataset(source)
    expected = prepare(frame, target="y", task="regression", seed=3)

    train, test = tmp_path / "train.parquet", tmp_path / "test.parquet"
    prepared = prepare_file(source, train, test, target="y", task="regression", seed=3, batch_rows=batch_rows)

    # -0.0 and 0.0 are equal, and so are a stored NaN and a null: each copy is a duplicate.
    assert expected.dropped_duplicates == int(frame.duplicated().sum()) == 40
    assert prepared.dropped_duplicates == expected.dropped_duplicates
    pd.testing.assert_frame_equal(read_dataset(train), expected.train)
    pd.testing.assert_frame_equal(read_dataset(test), expected.test)
