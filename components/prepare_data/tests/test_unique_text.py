"""prepare_data with a column of distinct texts (an identifier): the reference profile counts categories exactly up
to a cap of distinct values and keeps a bounded summary of the most frequent past it, and the file split reads
such a column as plain text (a dictionary would grow with the rows) with the same result as the frame split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components._common import counting
from components._common.datasets import read_dataset, write_dataset
from components.prepare_data.logic import prepare, prepare_file
from components.prepare_data.profiling import build_profile_file
from model_bundle.profile import PROFILE_CATEGORIES, build_profile

CAP = 200


def skewed_frame(seed: int = 0) -> pd.DataFrame:
    """``label``: 60 frequent categories (400, 395, ... rows) among 3000 that occur once, shuffled; a number and a
    target."""
    rng = np.random.default_rng(seed)
    frequent = np.repeat([f"cat-{i:02d}" for i in range(60)], [400 - 5 * i for i in range(60)])
    once = np.array([f"once-{i:05d}" for i in range(3000)])
    labels = rng.permutation(np.concatenate([frequent, once])).astype(object)
    n = len(labels)
    return pd.DataFrame({"label": labels, "size": rng.normal(100, 20, n).round(1), "price": rng.normal(1000, 50, n)})


def test_profile_past_the_cap_lists_the_most_frequent_categories(tmp_path, monkeypatch):
    frame = skewed_frame()
    path = tmp_path / "train.parquet"
    write_dataset(frame, path)
    monkeypatch.setattr(counting, "DISTINCT_CAP", CAP)

    entry = build_profile_file(path, "price", batch_rows=500)["columns"]["label"]

    exact = frame["label"].value_counts(normalize=True)
    listed = entry["category_fractions"]
    assert list(listed) == [f"cat-{i:02d}" for i in range(PROFILE_CATEGORIES)]
    assert list(listed.values()) == pytest.approx(exact.iloc[:PROFILE_CATEGORIES].tolist())
    assert entry["other_fraction"] == pytest.approx(1 - sum(listed.values()))
    assert entry["count"] == len(frame)


def test_profile_below_the_cap_equals_the_frame_profile(tmp_path, monkeypatch):
    frame = skewed_frame().iloc[:2500].copy()
    frame.loc[frame.index[::7], "label"] = None
    path = tmp_path / "train.parquet"
    write_dataset(frame, path)
    whole = build_profile(read_dataset(path), "price")
    assert pd.Series(frame["label"]).nunique() < counting.DISTINCT_CAP

    streamed = build_profile_file(path, "price", batch_rows=37)

    assert streamed["columns"]["label"] == whole["columns"]["label"]  # the same categories, shares and ties
    assert streamed["sample"] == whole["sample"]


def test_profile_of_a_column_of_distinct_texts_keeps_a_bounded_summary(tmp_path, monkeypatch):
    n = 5000
    frame = pd.DataFrame({"listing": [f"listing-{i:09d}" for i in range(n)], "price": np.arange(n, dtype=float)})
    path = tmp_path / "train.parquet"
    write_dataset(frame, path)
    monkeypatch.setattr(counting, "DISTINCT_CAP", CAP)

    entry = build_profile_file(path, "price", batch_rows=300)["columns"]["listing"]

    assert len(entry["category_fractions"]) == PROFILE_CATEGORIES
    assert set(entry["category_fractions"].values()) == {1 / n}
    assert entry["other_fraction"] == pytest.approx(1 - PROFILE_CATEGORIES / n)


def test_file_split_with_an_identifier_column_is_the_frame_split(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    n = 3000
    frame = pd.DataFrame(
        {
            "listing": [f"listing-{i:09d}" for i in range(n)],
            "region": rng.choice(["north", "south", "east"], n).astype(object),
            "size": rng.normal(100, 20, n).round(1),
            "price": rng.normal(1000, 100, n).round(0),
        }
    )
    frame = pd.concat([frame, frame.iloc[[10, 2000, 2999]]], ignore_index=True)  # duplicate rows, id included
    source = tmp_path / "data.parquet"
    write_dataset(frame, source)
    monkeypatch.setattr(counting, "DICTIONARY_CAP", 100)
    assert counting.dictionary_columns(source, ["listing", "region"], 500) == ["region"]
    expected = prepare(read_dataset(source), target="price", task="regression", seed=5)

    train, test = tmp_path / "train.parquet", tmp_path / "test.parquet"
    prepared = prepare_file(source, train, test, target="price", task="regression", seed=5, batch_rows=500)

    assert prepared.dropped_duplicates == expected.dropped_duplicates == 3
    assert prepared.cleaning == expected.cleaning
    pd.testing.assert_frame_equal(read_dataset(train), expected.train)
    pd.testing.assert_frame_equal(read_dataset(test), expected.test)
