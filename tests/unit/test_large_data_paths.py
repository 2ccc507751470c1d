"""The faster paths for large data give exactly what the plain pandas calls give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.ingest_data import formats
from components.ingest_data.formats import read_file
from components.prepare_data.logic import _duplicated
from components.validate_data.logic import _mixed_type_problem, infer_schema


@pytest.mark.parametrize(
    "text",
    [
        "a,b,c\n1,x,1.5\n2,y,\n3,,2.5\n4,z,3.5\n5,w,4.5\n",  # the same dtypes in every chunk
        "a,b\n1,x\n2,y\n3,z\nfour,w\n5,v\n",  # ints, then text: the whole column is text
        "a,b\n1,x\n2,y\n,z\n4,w\n",  # ints, then a gap: floats
        "a,b\n,x\n,y\n1,z\n",  # empty, then numbers
        "a,b\nTrue,1\nFalse,2\nTrue,x\n",  # booleans; numbers then text
    ],
)
def test_chunked_csv_read_matches_whole_file_read(tmp_path, monkeypatch, text):
    path = tmp_path / "data.csv"
    path.write_text(text)
    monkeypatch.setattr(formats, "CSV_CHUNK_ROWS", 2)
    expected = pd.read_csv(path, index_col=False, low_memory=False)
    pd.testing.assert_frame_equal(read_file(path), expected)


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
    assert _mixed_type_problem(frame["s"].dropna(), "s").message == (
        "column 's' mixes numbers and text: 1 of 4 values are not numbers, e.g. ['x']"
    )
