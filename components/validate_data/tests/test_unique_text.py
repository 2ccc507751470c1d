"""validate_data with a column of distinct texts (an identifier): such a column is read as plain text, not as an
Arrow dictionary (which grows over a whole row group), with the same Validation as the frame gives; and the shared
``CappedCounts`` keeps at most 2 x cap values, exact below the cap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components._common import counting
from components._common.counting import CappedCounts, dictionary_columns
from components._common.datasets import read_dataset, write_dataset
from components.validate_data.logic import validate_dataset, validate_file
from model_bundle import schema as contract


def listings(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "listing": [f"listing-{i:09d}" for i in range(n)],
            "region": rng.choice(["north", "south", "east"], n).astype(object),
            "size": rng.normal(100, 20, n).round(1),
            "price": rng.normal(1000, 100, n).round(0),
        }
    )


def test_a_column_of_distinct_texts_is_not_read_as_a_dictionary(tmp_path, monkeypatch):
    path = tmp_path / "data.parquet"
    write_dataset(listings(), path)
    monkeypatch.setattr(counting, "DICTIONARY_CAP", 100)

    assert dictionary_columns(path, ["listing", "region"], 500) == ["region"]
    assert dictionary_columns(path, [], 500) == []


def test_validate_file_with_an_identifier_equals_validate_dataset(tmp_path, monkeypatch):
    path = tmp_path / "data.parquet"
    write_dataset(listings(), path)
    frame = read_dataset(path)
    whole = validate_dataset(frame, "price", reference=validate_dataset(frame, "price").schema)
    monkeypatch.setattr(counting, "DICTIONARY_CAP", 100)

    streamed = validate_file(path, "price", reference=whole.schema, batch_rows=700)

    assert streamed.schema == whole.schema
    assert streamed.identifier_findings == whole.identifier_findings
    assert streamed.schema_findings == whole.schema_findings
    listing = contract.column_map(streamed.schema)["listing"]
    assert listing["distinct"] == 3000 and listing["unique"]


def test_capped_counts_are_exact_below_the_cap():
    values = pd.Series(
        np.random.default_rng(1).choice(list("abcdefgh"), 500, p=[0.3, 0.2, 0.2, 0.1, 0.1, 0.05, 0.03, 0.02])
    )
    counts = CappedCounts(cap=8)
    for start in range(0, len(values), 37):
        found = values.iloc[start : start + 37].value_counts(sort=False)
        counts.add(found.index.to_numpy(), found.to_numpy())

    keys, ordered = counts.ordered()
    expected = values.value_counts()
    assert counts.exact
    assert keys.tolist() == expected.index.tolist() and ordered.tolist() == expected.tolist()


def test_capped_counts_keep_the_heavy_hitters_in_bounded_memory():
    rng = np.random.default_rng(2)
    frequent = np.repeat([f"top-{i}" for i in range(10)], [300 - 20 * i for i in range(10)])
    values = rng.permutation(np.concatenate([frequent, [f"once-{i}" for i in range(5000)]]))
    counts = CappedCounts(cap=50)
    largest = 0
    for start in range(0, len(values), 200):
        uniques, occurrences = np.unique(values[start : start + 200], return_counts=True)
        counts.add(uniques.astype(object), occurrences)
        largest = max(largest, len(counts.keys))

    keys, ordered = counts.ordered()
    assert not counts.exact
    assert largest <= 2 * 50
    assert keys[:10].tolist() == [f"top-{i}" for i in range(10)]
    # Lower bounds: a value dropped at a pruning (seen once then) is counted afresh when it comes again.
    true = np.array([300 - 20 * i for i in range(10)])
    assert (ordered[:10] <= true).all() and (ordered[:10] >= 0.9 * true).all()


@pytest.mark.parametrize("cap", [0, -1, True, 1.5])
def test_capped_counts_reject_a_bad_cap(cap):
    with pytest.raises(ValueError, match="parameter cap must be a positive integer"):
        CappedCounts(cap=cap)
