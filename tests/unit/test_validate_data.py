"""validate_data: schema inference, task resolution, every problem named with its column, and the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.validate_data.logic import (
    DataValidationError,
    infer_schema,
    render_report,
    resolve_task,
    validate,
)


def frame_with(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_sample_data_passes_for_both_targets(houses):
    for target, task in (("price", "regression"), ("energy_label", "classification")):
        validation = validate(houses, target)
        assert validation.passed, validation.problems
        assert validation.task == task
        validation.raise_for_problems()  # no problems: does not raise


def test_missing_target_names_the_target_and_lists_the_columns():
    frame = frame_with(size=[1.0, 2.0, 3.0], rooms=[1, 2, 3])

    validation = validate(frame, "price")

    assert not validation.passed
    with pytest.raises(DataValidationError, match=r"target column 'price' not found; columns are \['size', 'rooms'\]"):
        validation.raise_for_problems()


def test_empty_frame_is_reported():
    frame = pd.DataFrame({"size": pd.Series(dtype="float64"), "price": pd.Series(dtype="float64")})

    validation = validate(frame, "price")

    assert "the dataset has no rows" in validation.problems
    with pytest.raises(DataValidationError, match=r"the dataset has no rows"):
        validation.raise_for_problems()


def test_single_valued_target_names_the_target_and_the_value():
    frame = frame_with(size=[1.0, 2.0, 3.0, 4.0], label=["A", "A", None, "A"])

    validation = validate(frame, "label")

    assert validation.problems == [
        "target column 'label' has a single value ('A') in 3 rows: there is nothing to learn"
    ]


def test_target_without_any_value_is_reported():
    frame = frame_with(size=[1.0, 2.0], price=[np.nan, np.nan])

    problems = validate(frame, "price", task="regression").problems

    assert "target column 'price' has no values" in problems


@pytest.mark.parametrize("empty", [[np.nan] * 4, [None] * 4])
def test_all_null_feature_column_is_named(empty):
    frame = frame_with(size=[1.0, 2.0, 3.0, 4.0], garden=empty, price=[1.0, 2.5, 3.5, 4.5])

    validation = validate(frame, "price")

    assert validation.problems == ["column 'garden' has no values (all 4 are missing)"]


def test_column_mixing_numbers_and_text_is_named_with_examples():
    frame = frame_with(
        size=["80", "95.5", "120", "eighty", "101", None],
        price=[1.0, 2.5, 3.5, 4.5, 5.5, 6.5],
    )

    validation = validate(frame, "price")

    assert len(validation.problems) == 1
    problem = validation.problems[0]
    assert "column 'size' mixes numbers and text" in problem
    assert "1 of 5 values are not numbers" in problem
    assert "'eighty'" in problem


def test_text_categories_are_not_mistaken_for_mixed_columns():
    frame = frame_with(
        neighbourhood=["Old Town", "Harbour", "Riverside", "Harbour"],
        street_no=["12a", "7", "Main", "3b"],  # mostly text: a category, not a broken number
        renovated=[True, False, None, True],
        price=[1.0, 2.5, 3.5, 4.5],
    )

    assert validate(frame, "price").passed


def test_regression_on_a_text_target_names_the_target():
    frame = frame_with(size=[1.0, 2.0, 3.0], label=["A", "B", "C"])

    validation = validate(frame, "label", task="regression")

    assert validation.task == "regression"
    assert validation.problems == [
        "task=regression needs a numeric target, but column 'label' holds text such as ['A', 'B', 'C']"
    ]


def test_classification_with_too_many_classes_suggests_regression():
    frame = frame_with(size=np.arange(150.0), price=np.arange(150.0) * 1000)

    problems = validate(frame, "price", task="classification").problems

    assert len(problems) == 1
    assert "target column 'price' has 150 distinct values, more than 100 classes" in problems[0]
    assert "task=regression" in problems[0]


def test_dataset_with_only_the_target_has_no_features():
    frame = frame_with(price=[1.0, 2.0, 3.0])

    problems = validate(frame, "price").problems

    assert "no feature columns: the dataset has only the target column 'price'" in problems


def test_every_problem_is_listed_in_the_error():
    frame = frame_with(empty=[None] * 4, size=["1", "2", "3", "x"], label=["A"] * 4)

    with pytest.raises(DataValidationError) as raised:
        validate(frame, "label").raise_for_problems()

    message = str(raised.value)
    assert message.startswith("data validation failed:\n- ")
    assert "'empty'" in message
    assert "'size'" in message
    assert "'label'" in message


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param([1.5, 2.25, 3.0, 4.75], "regression", id="float-continuous"),
        pytest.param([1.0, 2.0, 1.0, 2.0, np.nan], "classification", id="float-whole-few-values"),
        pytest.param(np.arange(50.0), "regression", id="float-whole-many-values"),
        pytest.param([0, 1, 2, 1, 0], "classification", id="int-few-values"),
        pytest.param(list(range(21)), "regression", id="int-21-values"),
        pytest.param(list(range(20)), "classification", id="int-20-values"),
        pytest.param(["cheap", "dear", "cheap"], "classification", id="str"),
        pytest.param([True, False, True], "classification", id="bool"),
        pytest.param([True, None, False], "classification", id="bool-with-missing"),
    ],
)
def test_auto_task_resolution(values, expected):
    assert resolve_task(pd.Series(values), "auto") == expected


def test_explicit_task_wins_over_auto():
    assert resolve_task(pd.Series([0, 1, 2, 1]), "regression") == "regression"
    assert resolve_task(pd.Series([1.5, 2.5, 3.5]), "classification") == "classification"


def test_unknown_task_is_named():
    with pytest.raises(DataValidationError, match=r"parameter task must be one of .*'auto'.*got 'clustering'"):
        validate(frame_with(size=[1.0, 2.0], price=[1.0, 2.0]), "price", task="clustering")


def test_validation_reports_the_resolved_task():
    frame = frame_with(size=[1.0, 2.0, 3.0, 4.0], label=[0, 1, 0, 1])

    assert validate(frame, "label").task == "classification"
    assert validate(frame, "label", task="regression").task == "regression"


def test_schema_describes_each_column():
    frame = frame_with(
        size=[50.0, np.nan, 150.0, 100.0],
        rooms=[1, 2, 3, 2],
        area=["north", "south", None, "north"],
        renovated=[True, False, True, True],
    )

    schema = infer_schema(frame)

    assert schema["rows"] == 4
    columns = {column["name"]: column for column in schema["columns"]}
    assert [column["name"] for column in schema["columns"]] == ["size", "rooms", "area", "renovated"]
    assert columns["size"] == {
        "name": "size",
        "type": "numeric",
        "dtype": "float64",
        "kind": "float",
        "nullable": True,
        "unique": False,
        "nulls": 1,
        "null_fraction": 0.25,
        "distinct": 3,
        "min": 50.0,
        "max": 150.0,
    }
    assert columns["rooms"]["type"] == "numeric"
    assert columns["area"]["type"] == "categorical"
    assert columns["area"]["categories"] == ["north", "south"]  # most frequent first
    assert columns["area"]["nulls"] == 1
    assert columns["renovated"]["type"] == "categorical"
    assert set(columns["renovated"]["categories"]) == {"True", "False"}


def test_report_lists_the_problems_and_the_schema():
    frame = frame_with(
        size=[50.0, np.nan, 150.0, 100.0],
        garden=[None] * 4,
        label=["A"] * 4,
    )
    validation = validate(frame, "label")

    report = render_report(validation, "label")

    assert report.startswith(f"# Data validation failed with {len(validation.problems)} problem(s)\n")
    assert "4 rows, 3 columns; target `label`, task `classification`." in report
    assert "## Problems" in report
    for finding in validation.failures:
        assert f"- **{finding.check}**: {finding.message}" in report
    assert "| values | fail | **failed**: garden |" in report
    assert "| target | fail | **failed**: label |" in report
    assert "| range | warn | not run |" in report  # no reference schema
    assert "## Schema" in report
    assert "| size | numeric | float | float64 | 1 (25.0%) | 3 |  | 50 .. 150 |" in report
    assert "| garden | categorical | empty | object | 4 (100.0%) | 0 |  |  |" in report
    assert "| label | categorical | string | object | 0 (0.0%) | 1 |  | A |" in report


def test_report_of_passing_data_has_no_problem_section(houses):
    validation = validate(houses, "price")

    report = render_report(validation, "price")

    assert report.startswith("# Data validation passed\n")
    assert "## Problems" not in report
    for column in houses.columns:
        assert f"| {column} |" in report


@pytest.mark.parametrize("column", ["size", "price"])
def test_infinite_numbers_stop_the_run_naming_the_column(column):
    frame = pd.DataFrame({"size": [50.0, 60.0, 70.0, 80.0], "price": [1.0, 2.0, 3.0, 4.5]})
    frame.loc[1, column] = np.inf
    frame.loc[2, column] = -np.inf

    problems = validate(frame, "price").problems

    assert problems == [f"column {column!r} has 2 infinite value(s); leave a value empty when it is unknown"]


def test_inf_written_in_a_csv_is_caught(tmp_path):
    # pandas reads the text "inf" as a float infinity; training would only fail inside scikit-learn.
    path = tmp_path / "houses.csv"
    path.write_text("size,price\n50,100\ninf,200\n70,300\n")

    problems = validate(pd.read_csv(path), "price").problems

    assert problems == ["column 'size' has 1 infinite value(s); leave a value empty when it is unknown"]
