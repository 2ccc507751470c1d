"""``read_batches``: a dataset read in bounded pieces is the dataset read whole, dtypes and row positions included,
whatever the batch size; ``dataset_layout`` knows rows, missing values and dtypes from the footer alone."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components._common.datasets import check_batch_rows, dataset_layout, read_batches, read_dataset, write_dataset

ROWS = 1000


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> str:
    """A dataset as a step writes it, with a missing integer and a missing boolean only in the last rows."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "number": np.arange(ROWS),
            "nullable_number": pd.array([None if k > 990 else k for k in range(ROWS)], dtype="Int64"),
            "flag": rng.random(ROWS) > 0.5,
            "flag_missing_last": [None if k == ROWS - 1 else bool(k % 2) for k in range(ROWS)],
            "label": [f"v{k % 7}" for k in range(ROWS)],
            "measure": rng.random(ROWS),
            "when": pd.date_range("2020-01-01", periods=ROWS, freq="h"),
            "band": pd.Categorical([("low", "mid", "high")[k % 3] for k in range(ROWS)]),
        }
    )
    path = tmp_path_factory.mktemp("batches") / "dataset.parquet"
    write_dataset(frame, path)
    return str(path)


@pytest.fixture(scope="module")
def arrow_written(tmp_path_factory) -> str:
    """A Parquet file without pandas metadata (another tool's), small row groups, missing values in every column."""
    table = pa.table(
        {
            "integer": pa.array([1, None, 3] * 400),
            "boolean": pa.array([True, None, False] * 400),
            "text": pa.array(["a", None, "b"] * 400),
            "empty": pa.array([None] * 1200, pa.float64()),
        }
    )
    path = tmp_path_factory.mktemp("batches") / "arrow.parquet"
    pq.write_table(table, path, row_group_size=100)
    return str(path)


@pytest.mark.parametrize("batch_rows", [1, 7, 100, ROWS, 5 * ROWS])
def test_the_batches_together_are_the_dataset_read_whole(written, batch_rows):
    batches = list(read_batches(written, batch_rows=batch_rows))
    assert max(len(batch) for batch in batches) <= batch_rows
    pd.testing.assert_frame_equal(pd.concat(batches), read_dataset(written))


@pytest.mark.parametrize("batch_rows", [1, 2, 50, 5000])
def test_a_batch_without_missing_values_has_the_whole_files_dtypes(arrow_written, batch_rows):
    # The first batch of 1-2 rows has no missing value, yet its integers are floats and its booleans objects: as in
    # the whole file, so a value means the same in every batch.
    batches = list(read_batches(arrow_written, batch_rows=batch_rows))
    whole = read_dataset(arrow_written)
    assert whole.dtypes.to_dict() == {
        "integer": np.dtype("float64"),
        "boolean": np.dtype("object"),
        "text": np.dtype("object"),
        "empty": np.dtype("float64"),
    }
    assert all(batch.dtypes.equals(whole.dtypes) for batch in batches)
    pd.testing.assert_frame_equal(pd.concat(batches), whole)


def test_each_batch_is_indexed_by_its_rows_positions_in_the_file(written):
    batches = list(read_batches(written, batch_rows=300))
    assert [(batch.index[0], batch.index[-1]) for batch in batches] == [(0, 299), (300, 599), (600, 899), (900, 999)]


def test_a_subset_of_columns_is_read_in_the_order_asked(written):
    batch = next(read_batches(written, columns=["label", "number"], batch_rows=10))
    assert list(batch.columns) == ["label", "number"]
    assert batch["number"].tolist() == list(range(10))


def test_the_layout_comes_from_the_footer(written, arrow_written):
    layout = dataset_layout(written)
    assert layout.rows == ROWS
    assert layout.nulls == {
        "number": 0,
        "nullable_number": 9,
        "flag": 0,
        "flag_missing_last": 1,
        "label": 0,
        "measure": 0,
        "when": 0,
        "band": 0,
    }
    whole = read_dataset(written).dtypes.to_dict()
    assert {name: str(dtype) for name, dtype in layout.dtypes.items()} == {k: str(v) for k, v in whole.items()}
    assert dataset_layout(arrow_written).nulls == {"integer": 400, "boolean": 400, "text": 400, "empty": 1200}


def test_a_file_without_statistics_has_its_missing_values_counted(tmp_path):
    path = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"x": pa.array([1, None, None, 4])}), path, write_statistics=False)
    layout = dataset_layout(path)
    assert layout.nulls == {"x": 2}
    assert layout.dtypes == {"x": np.dtype("float64")}


def test_read_dataset_reads_only_the_columns_asked(written):
    frame = read_dataset(written, columns=["measure"])
    assert list(frame.columns) == ["measure"]
    pd.testing.assert_series_equal(frame["measure"], read_dataset(written)["measure"])


@pytest.mark.parametrize("batch_rows", [0, -1, 2.5, True, "100"])
def test_a_batch_size_that_is_not_a_positive_integer_is_named(written, batch_rows):
    with pytest.raises(ValueError, match=f"parameter batch_rows must be a positive integer, got {batch_rows!r}"):
        next(read_batches(written, batch_rows=batch_rows))


def test_a_step_raises_its_own_error_for_a_bad_batch_size():
    class StepError(ValueError):
        pass

    with pytest.raises(StepError, match="got 0"):
        check_batch_rows(0, StepError)
    check_batch_rows(np.int64(3), StepError)  # numpy integers are integers
