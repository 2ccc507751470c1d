"""train_model's max_training_rows: a seeded, stratified sample drawn while the train set is read in batches."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from components._common.datasets import read_dataset, write_dataset
from components.ingest_data.samples import house_prices
from components.train_model import component
from components.train_model.logic import (
    DEFAULT_MAX_TRAINING_ROWS,
    TrainingError,
    read_training_rows,
    train_model_directory,
)
from components.train_model.tests.test_logic import _step_inputs


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    """2,000 listings numbered in `listing`, so a sample's rows can be told apart; a few without a label."""
    frame = house_prices(rows=2000, seed=11).assign(listing=np.arange(2000))
    frame.loc[[5, 700, 1999], "energy_label"] = None
    return frame


@pytest.fixture(scope="module")
def train_path(rows, tmp_path_factory):
    path = tmp_path_factory.mktemp("train") / "train.parquet"
    write_dataset(rows, path)
    return path


def test_a_train_set_within_the_limit_is_read_whole(rows, train_path):
    frame, available = read_training_rows(train_path, "price", "regression", max_training_rows=2000)
    pd.testing.assert_frame_equal(frame, read_dataset(train_path))
    assert available is None  # train() counts the labelled rows itself
    frame, _ = read_training_rows(train_path, "price", "regression", max_training_rows=0)  # 0: every row
    assert len(frame) == len(rows)


def test_a_classification_sample_keeps_every_class_in_proportion_with_exact_counts(rows, train_path):
    frame, available = read_training_rows(train_path, "energy_label", "classification", 500, seed=3)

    labelled = rows["energy_label"].dropna()
    assert available == len(labelled) == 1997
    assert len(frame) == 500 and frame["energy_label"].notna().all()
    sizes = labelled.value_counts()
    sampled = frame["energy_label"].value_counts()
    assert set(sampled.index) == set(sizes.index)  # every class kept, the rare ones included
    for label, size in sizes.items():
        assert abs(sampled[label] - 500 * size / len(labelled)) < 1 or sampled[label] == 1, label
    assert frame["listing"].is_monotonic_increasing  # file order
    whole = read_dataset(train_path)  # the rows themselves, unchanged
    pd.testing.assert_frame_equal(frame, whole.iloc[frame["listing"]].reset_index(drop=True))


def test_the_sample_is_the_same_for_any_batch_size_and_changes_with_the_seed(train_path):
    def listings(seed, batch_rows):
        frame, _ = read_training_rows(train_path, "energy_label", "classification", 300, seed, batch_rows=batch_rows)
        return frame["listing"].tolist()

    first = listings(3, 131_072)
    assert listings(3, 7) == listings(3, 1000) == first
    assert listings(4, 131_072) != first


def test_a_regression_sample_is_a_uniform_draw(rows, train_path):
    frame, available = read_training_rows(train_path, "price", "regression", 400, seed=1)
    assert available == 2000 and len(frame) == 400
    # Uniform over the file: each half holds about half of the sample (binomial sd 10; 5 sd apart fails).
    early = int((frame["listing"] < 1000).sum())
    assert abs(early - 200) < 50


def test_the_card_records_the_sample_and_the_whole_train_set(rows, tmp_path):
    train_path, paths, _ = _step_inputs(tmp_path / "inputs", rows.drop(columns=["listing"]))

    card = train_model_directory(
        train_path,
        paths,
        tmp_path / "model",
        target="price",
        task="regression",
        candidate={"model_type": "linear"},
        max_training_rows=600,
    )

    assert (card.training_rows, card.training_rows_available) == (600, 2000)
    assert card.validation_rows == 120  # validation holds out a share of the sample


@pytest.mark.parametrize("value", [-1, 1.5, "100", True])
def test_a_bad_max_training_rows_is_named(train_path, value):
    with pytest.raises(TrainingError, match=r"parameter max_training_rows must be a whole number >= 0"):
        read_training_rows(train_path, "price", "regression", value)


def test_a_limit_below_the_class_count_is_named(train_path):
    with pytest.raises(TrainingError, match=r"max_training_rows=3 cannot hold one row of each of the 7 classes"):
        read_training_rows(train_path, "energy_label", "classification", 3)


def test_the_components_default_is_the_measured_one():
    default = inspect.signature(component.train_model.python_func).parameters["max_training_rows"].default
    assert default == DEFAULT_MAX_TRAINING_ROWS
