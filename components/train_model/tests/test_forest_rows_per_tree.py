"""A random forest on many rows fits each tree on a bootstrap sample of ``FOREST_ROWS_PER_TREE`` rows (its trees
grow with the rows they see), recorded in the model card; a candidate's own ``max_samples`` or ``bootstrap=False``
wins, and small data trains as before."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from components.train_model import candidate
from components.train_model.candidate import FOREST_ROWS_PER_TREE, fitted_hyperparameters
from components.train_model.logic import train


def test_a_forest_past_the_cap_samples_that_many_rows_per_tree():
    rows = 4 * FOREST_ROWS_PER_TREE
    fitted = fitted_hyperparameters("random_forest", {"n_estimators": 100}, rows)
    assert fitted == {"n_estimators": 100, "max_samples": 0.25}


@pytest.mark.parametrize(
    ("model_type", "hyperparameters", "rows"),
    [
        ("random_forest", {}, FOREST_ROWS_PER_TREE),  # at the cap: every row, as scikit-learn's default
        ("random_forest", {"max_samples": 0.5}, 10 * FOREST_ROWS_PER_TREE),  # the candidate's own choice
        ("random_forest", {"bootstrap": False}, 10 * FOREST_ROWS_PER_TREE),  # no bootstrap: max_samples is invalid
        ("hist_gradient_boosting", {}, 10 * FOREST_ROWS_PER_TREE),
        ("linear", {}, 10 * FOREST_ROWS_PER_TREE),
    ],
)
def test_otherwise_the_candidate_fits_as_configured(model_type, hyperparameters, rows):
    assert fitted_hyperparameters(model_type, hyperparameters, rows) == hyperparameters


def test_the_fitted_forest_and_its_card_use_the_cap(houses, monkeypatch):
    monkeypatch.setattr(candidate, "FOREST_ROWS_PER_TREE", 100)
    frame = houses.head(400).reset_index(drop=True)
    labelled = int(frame["price"].notna().sum())
    model, card = train(
        frame, "price", "regression", model_type="random_forest", hyperparameters={"n_estimators": 4}, seed=3
    )

    forest = model.named_steps["estimator"]
    assert forest.max_samples == pytest.approx(100 / labelled)
    assert card.hyperparameters == {"n_estimators": 4, "max_samples": forest.max_samples}
    # Each tree's root holds the weight of its bootstrap draws: 100 rows, not the ~400 of the data.
    assert [tree.tree_.weighted_n_node_samples[0] for tree in forest.estimators_] == [100.0] * 4
    assert card.training_rows == labelled  # the forest as a whole still saw every row


def test_hyperparameters_are_not_changed_in_place():
    given = {"n_estimators": 10}
    fitted_hyperparameters("random_forest", given, 10 * FOREST_ROWS_PER_TREE)
    assert given == {"n_estimators": 10}


def test_small_data_fits_every_row_per_tree(houses):
    frame = pd.DataFrame(houses.head(200))
    model, card = train(frame, "price", "regression", model_type="random_forest", hyperparameters={"n_estimators": 2})
    assert model.named_steps["estimator"].max_samples is None
    assert "max_samples" not in card.hyperparameters


def test_the_component_documents_the_cap():
    documented = (Path(candidate.__file__).parent / "component.py").read_text()
    assert f"more than {FOREST_ROWS_PER_TREE:,} rows" in " ".join(documented.split())
    assert f"bootstrap sample of {FOREST_ROWS_PER_TREE:,}" in " ".join(documented.split())
