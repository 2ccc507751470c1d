"""The leakage check of validate_data: features that give the target away are named, with the exclude_columns to
rerun with; legitimately strong predictors, a realistic good model and a nearly separable table are not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris, load_wine

from components.ingest_data.logic import read_source
from components.validate_data import leakage
from components.validate_data.logic import DataValidationError, validate_dataset
from components.validate_data.policy import ValidationPolicy
from components.validate_data.report import render_report

SAMPLE_URI = "sample://house-prices?rows=2000&seed=7"  # the training pipeline's default data


@pytest.fixture(scope="module")
def houses() -> pd.DataFrame:
    return read_source(SAMPLE_URI).frame


def suspects(validation) -> dict[str, tuple[str, ...]]:
    return {feature.name: feature.suspected_by for feature in validation.leakage.suspects}


def costs(rows: int = 1500, seed: int = 4) -> pd.DataFrame:
    """Building jobs: two comparable cost columns and three unrelated ones."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "materials": rng.gamma(4, 500, rows).round(2),
            "labour": rng.gamma(4, 500, rows).round(2),
            "floor_area": rng.normal(100, 20, rows),
            "region": rng.choice(["north", "east", "south", "west"], rows),
            "weeks": rng.integers(1, 30, rows),
        }
    )


def test_a_noisy_copy_of_the_target_is_named_alone_and_stops_the_run(houses):
    noise = np.random.default_rng(1).normal(0, 0.1 * houses["price"].std(), len(houses))
    frame = houses.assign(price_eur=houses["price"] * 0.92 + noise)

    validation = validate_dataset(frame, "price")

    assert leakage.BY_ALONE in suspects(validation)["price_eur"]
    assert set(suspects(validation)) == {"price_eur"}
    with pytest.raises(DataValidationError) as raised:
        validation.raise_for_failures()
    message = str(raised.value)
    assert "[leakage] column 'price_eur' is suspected target leakage of 'price': alone it predicts" in message
    assert "rerun with exclude_columns=['price_eur']" in message


def test_the_log_of_the_target_is_named_alone(houses):
    validation = validate_dataset(houses.assign(log_price=np.log(houses["price"])), "price")

    assert leakage.BY_ALONE in suspects(validation)["log_price"]
    assert set(suspects(validation)) == {"log_price"}
    [alone] = [feature.alone for feature in validation.leakage.features if feature.name == "log_price"]
    assert alone >= leakage.ALONE["regression"]


def test_a_target_summing_two_comparable_columns_names_both_by_the_too_good_fit():
    frame = costs()
    frame["total"] = frame["materials"] + frame["labour"]

    validation = validate_dataset(frame, "total")

    # Neither part predicts the total alone; together they fit it perfectly, and without either the fit collapses.
    assert suspects(validation) == {"materials": (leakage.BY_FIT,), "labour": (leakage.BY_FIT,)}
    assert validation.leakage.whole >= leakage.NEAR_PERFECT["regression"]
    messages = [finding.message for finding in validation.failures]
    assert all("rerun with exclude_columns=['materials', 'labour']" in message for message in messages)
    assert len(messages) == 2


def test_a_label_hidden_in_a_coded_column_is_named(houses):
    rng = np.random.default_rng(2)
    code = houses["energy_label"].map({label: i for i, label in enumerate("ABCDEFG")}).astype("float64")
    wrong = rng.random(len(houses)) < 0.01  # a copy with a few clerical errors is still a copy
    code[wrong] = rng.integers(0, 7, int(wrong.sum()))

    validation = validate_dataset(houses.assign(label_code=code), "energy_label")

    assert suspects(validation) == {"label_code": (leakage.BY_ALONE,)}
    assert validation.leakage.metric == "balanced_accuracy"


def test_a_strong_but_legitimate_predictor_is_not_named():
    rng = np.random.default_rng(3)
    x = rng.normal(size=2000)
    frame = pd.DataFrame({"x": x, "z": rng.normal(size=2000), "y": 2 * x + rng.normal(0, 0.85, 2000)})

    validation = validate_dataset(frame, "y")

    assert validation.passed, validation.failures
    [alone] = [feature.alone for feature in validation.leakage.features if feature.name == "x"]
    assert 0.75 < alone < leakage.ALONE["regression"]  # strong, yet far from a copy


@pytest.mark.parametrize("target", ["price", "energy_label"])
def test_the_sample_data_a_realistic_good_model_is_not_named(houses, target):
    validation = validate_dataset(houses, target)

    assert validation.passed, validation.failures
    assert validation.leakage.suspects == []
    assert [feature.name for feature in validation.leakage.features] == [c for c in houses.columns if c != target]


@pytest.mark.parametrize("loader", [load_iris, load_wine], ids=["iris", "wine"])
def test_nearly_separable_legitimate_tables_are_not_named(loader):
    bundle = loader(as_frame=True)
    frame = bundle.frame.assign(target=bundle.target.map(dict(enumerate(bundle.target_names))))

    validation = validate_dataset(frame, "target")

    assert validation.passed, validation.failures
    assert validation.leakage.suspects == []
    best = max(feature.alone for feature in validation.leakage.features)
    if loader is load_iris:
        assert best > 0.9  # a near-perfect single feature, and still no leakage


def test_the_report_scores_every_feature(houses):
    report = render_report(validate_dataset(houses.assign(log_price=np.log(houses["price"])), "price"), "price")

    assert "| leakage | fail | **failed**: log_price |" in report
    assert "| feature | alone (r2) | whole table without it | suspected |" in report
    for column in houses.columns.drop("price"):
        assert f"\n| {column} | " in report.split("## Leakage")[1].split("## Schema")[0]
    assert "| log_price | 0.9" in report
    assert "**alone" in report


def test_warn_reports_and_ignore_skips(houses):
    frame = houses.assign(log_price=np.log(houses["price"]))

    warned = validate_dataset(frame, "price", validation_policy=ValidationPolicy(leakage="warn"))
    ignored = validate_dataset(frame, "price", validation_policy=ValidationPolicy(leakage="ignore"))

    assert warned.passed and [(w.check, w.column) for w in warned.warnings] == [("leakage", "log_price")]
    assert ignored.passed and ignored.leakage is None and not ignored.warnings
    report = render_report(ignored, "price")
    assert "| leakage | ignore | not run |" in report
    assert "Not run (validation_policy leakage=ignore)." in report


def test_excluded_columns_are_not_checked_and_the_rerun_advice_keeps_them(houses):
    frame = houses.assign(log_price=np.log(houses["price"]), price_eur=houses["price"] * 0.92)

    rerun = validate_dataset(frame, "price", exclude_columns=["log_price", "price_eur"])
    partly = validate_dataset(frame, "price", exclude_columns=["log_price"])

    assert rerun.passed, rerun.failures
    assert "log_price" not in {feature.name for feature in rerun.leakage.features}
    assert [finding.column for finding in partly.failures] == ["price_eur"]
    assert "rerun with exclude_columns=['log_price', 'price_eur']" in partly.failures[0].message


def test_a_kept_identifier_is_checked_like_any_feature():
    # Rows sorted by the target: their row number gives it away.
    frame = costs().assign(total=np.random.default_rng(5).gamma(4, 1000, 1500)).sort_values("total")
    frame.insert(0, "row", np.arange(1, len(frame) + 1))

    excluded = validate_dataset(frame, "total")
    kept = validate_dataset(frame, "total", validation_policy=ValidationPolicy(identifiers="keep"))

    assert "row" not in {feature.name for feature in excluded.leakage.features}
    assert excluded.passed, excluded.failures
    assert leakage.BY_ALONE in suspects(kept)["row"]
    assert [finding.column for finding in kept.failures] == ["row"]


def test_too_few_rows_are_not_scored():
    frame = costs(rows=leakage.MIN_ROWS - 1)
    frame["total"] = frame["materials"] + frame["labour"]

    validation = validate_dataset(frame, "total")

    assert validation.passed
    assert validation.leakage.not_run.startswith(f"{leakage.MIN_ROWS - 1} labelled distinct rows, fewer than")
    assert "| leakage | fail | not run |" in render_report(validation, "total")


def test_the_sample_is_bounded_and_the_verdict_repeatable():
    frame = costs(rows=3 * leakage.SAMPLE_ROWS)
    frame["total"] = frame["materials"] + frame["labour"] + np.random.default_rng(0).normal(0, 50, len(frame))

    first, second = validate_dataset(frame, "total"), validate_dataset(frame, "total")

    assert first.leakage.rows == leakage.SAMPLE_ROWS
    assert first.leakage == second.leakage


def test_a_two_class_target_with_a_class_of_one_row_is_not_checked_but_validated(houses):
    """A fold would learn from one class alone: the check says why it did not run instead of crashing the step
    (prepare_data then stops naming the class, which cannot be split into train and test)."""
    frame = houses.assign(sold=np.where(np.arange(len(houses)) == 7, "no", "yes"))

    validation = validate_dataset(frame.drop(columns="price"), "sold", task="classification")

    assert validation.passed, validation.failures
    assert (
        validation.leakage.not_run == "class(es) ['no'] have fewer labelled distinct rows than the 3 folds of the check"
    )
    assert f"Not run: {validation.leakage.not_run}." in render_report(validation, "sold")
