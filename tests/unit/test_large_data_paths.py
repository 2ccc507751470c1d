"""The faster paths for large data give exactly what the plain pandas calls give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components._common.datasets import content_hash, write_dataset
from components.ingest_data.formats import read_file
from components.prepare_data.logic import _duplicated
from components.validate_data.logic import _mixed_type_finding
from model_bundle.schema import infer as infer_schema


@pytest.mark.parametrize(
    "text",
    [
        "a,b,c\n1,x,1.5\n2,y,\n3,,2.5\n4,z,3.5\n5,w,4.5\n",
        "a,b\n1,x\n2,y\n3,z\nfour,w\n5,v\n",  # ints, then text: the whole column is text
        "a,b\n1,x\n2,y\n,z\n4,w\n",  # ints, then a gap: floats
        "a,b\n,x\n,y\n1,z\n",  # empty, then numbers
        "a,b\nTrue,1\nFalse,2\nTRUE,x\n",  # booleans; numbers then text
        "a,b\n1,0\n0,1\n",  # ones and zeros are numbers, not booleans
        "d,t,n\n2024-01-05,2024-01-05T10:00:00,1\n2024-02-29,2024-02-29 23:59,2\n",  # dates stay text
        "a,b,c\nNA,None,null\nn/a,<NA>,NaN\n7,x,1.5\n",  # pandas' missing-value tokens
        "a,b\n,\n,\n",  # columns without values
        'a,b\n"1","x, y"\n"2","line\nbreak"\n',  # quoted numbers, delimiters and line breaks
        "a,b\n 12 ,x\n13,y\n",  # spaces around a number
        "a,b\ninf,-inf\n1.5,2\n",  # infinities
    ],
)
def test_csv_reads_as_pandas_read_csv_does(tmp_path, text):
    path = tmp_path / "data.csv"
    path.write_text(text)
    expected = pd.read_csv(path, index_col=False)
    # pyarrow marks a missing boolean None where pandas puts NaN: both are missing.
    actual = read_file(path).to_pandas().fillna(np.nan).infer_objects()
    pd.testing.assert_frame_equal(actual, expected.fillna(np.nan).infer_objects(), check_dtype=True)


def test_content_hash_depends_on_values_not_on_chunks_or_format(tmp_path):
    frame = pd.DataFrame({"x": [1.5, None, 3.0], "s": ["a", None, "ccc"], "b": [True, False, None], "i": [1, 2, 3]})
    table = pa.Table.from_pandas(frame, preserve_index=False)
    rechunked = pa.concat_tables([table.slice(0, 1), table.slice(1, 2)])
    assert rechunked.column("s").num_chunks == 2
    assert content_hash(rechunked) == content_hash(table)
    write_dataset(frame, tmp_path / "a.parquet")
    assert content_hash(pq.read_table(tmp_path / "a.parquet")) == content_hash(table)
    for changed in (
        frame.assign(s=["a", None, "ccd"]),
        frame.assign(x=[1.5, 0.0, 3.0]),
        frame.rename(columns={"i": "j"}),
    ):
        assert content_hash(pa.Table.from_pandas(changed, preserve_index=False)) != content_hash(table)
    # Text split differently between values is other data, though the characters are the same.
    moved = frame.assign(s=["ac", None, "cc"])
    assert content_hash(pa.Table.from_pandas(moved, preserve_index=False)) != content_hash(table)


def test_duplicated_matches_pandas_for_zeros_nans_and_mixed_objects():
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(2, 80))
        frame = pd.DataFrame(
            {
                "f": rng.choice([0.0, -0.0, np.nan, 1.5], n),
                "o": pd.Series(rng.choice([1, 1.0, "1", None, "x"], n), dtype=object),
                "i": pd.array(rng.choice([1, 2, None], n), dtype="Int64"),
                "b": rng.choice([True, False], n),
            }
        )
        rows = np.flatnonzero(rng.random(n) < 0.8)
        expected = frame.iloc[rows].duplicated().to_numpy()
        np.testing.assert_array_equal(_duplicated(frame, rows), expected)


def test_schema_and_mixed_types_of_text_and_non_text_objects():
    frame = pd.DataFrame(
        {
            "s": ["1", " 2", "x", "1", None],
            "m": pd.Series([1, "1", True, 1.0, None], dtype=object),
        }
    )
    schema = {column["name"]: column for column in infer_schema(frame)["columns"]}
    assert schema["s"]["distinct"] == 3 and schema["s"]["categories"][0] == "1"
    assert schema["m"]["distinct"] == int(frame["m"].dropna().nunique())
    assert _mixed_type_finding(frame["s"].dropna(), "s").message == (
        "column 's' mixes numbers and text: 1 of 4 values are not numbers, e.g. ['x']"
    )
