"""validate_data: schema inference, task resolution, every failure named with its column, the validation policy
(and the parameters it replaces), and the report."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from components.validate_data.logic import DataValidationError, Validation, resolve_task, validate_dataset
from components.validate_data.policy import ValidationPolicy, read_validation_policy
from components.validate_data.report import render_report
from model_bundle.schema import infer as infer_schema


def frame_with(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns)


def failure_messages(validation: Validation) -> list[str]:
    return [finding.message for finding in validation.failures]


def test_sample_data_passes_for_both_targets(houses):
    for target, task in (("price", "regression"), ("energy_label", "classification")):
        validation = validate_dataset(houses, target)
        assert validation.passed, validation.failures
        assert validation.task == task
        validation.raise_for_failures()  # no failures: does not raise


def test_missing_target_names_the_target_and_lists_the_columns():
    frame = frame_with(size=[1.0, 2.0, 3.0], rooms=[1, 2, 3])

    validation = validate_dataset(frame, "price")

    assert not validation.passed
    with pytest.raises(DataValidationError, match=r"target column 'price' not found; columns are \['size', 'rooms'\]"):
        validation.raise_for_failures()


def test_a_target_differing_only_by_case_or_spaces_is_pointed_out():
    # A header written "size, price" reads as the column ' price', as pandas reads it; the list alone hides the space.
    frame = frame_with(size=[1.0, 2.0, 3.0], **{" Price": [1.0, 2.0, 3.0]})

    validation = validate_dataset(frame, "price")

    with pytest.raises(
        DataValidationError,
        match=r"target column 'price' not found; columns are \['size', ' Price'\]; the data has ' Price' for 'price', "
        r"differing only by case or surrounding spaces: write the data's name exactly in target, or rename the column",
    ):
        validation.raise_for_failures()


def test_empty_frame_is_reported():
    frame = pd.DataFrame({"size": pd.Series(dtype="float64"), "price": pd.Series(dtype="float64")})

    validation = validate_dataset(frame, "price")

    assert "the dataset has no rows" in failure_messages(validation)
    with pytest.raises(DataValidationError, match=r"the dataset has no rows"):
        validation.raise_for_failures()


def test_single_valued_target_names_the_target_and_the_value():
    frame = frame_with(size=[1.0, 2.0, 3.0, 4.0], label=["A", "A", None, "A"])

    validation = validate_dataset(frame, "label")

    assert failure_messages(validation) == [
        "target column 'label' has a single value ('A') in 3 rows: there is nothing to learn"
    ]


def test_a_single_numeric_target_value_is_shown_as_the_number_it_is():
    validation = validate_dataset(frame_with(size=[1.0, 2.0, 3.0], price=[1, 1, 1]), "price")

    assert failure_messages(validation) == [
        "target column 'price' has a single value (1) in 3 rows: there is nothing to learn"
    ]


def test_target_without_any_value_is_reported():
    frame = frame_with(size=[1.0, 2.0], price=[np.nan, np.nan])

    failures = failure_messages(validate_dataset(frame, "price", task="regression"))

    assert "target column 'price' has no values" in failures


@pytest.mark.parametrize("empty", [[np.nan] * 4, [None] * 4])
def test_all_null_feature_column_is_named(empty):
    frame = frame_with(size=[1.0, 2.0, 3.0, 4.0], garden=empty, price=[1.0, 2.5, 3.5, 4.5])

    validation = validate_dataset(frame, "price")

    assert failure_messages(validation) == ["column 'garden' has no values (all 4 are missing)"]


def test_column_mixing_numbers_and_text_is_named_with_examples():
    frame = frame_with(
        size=["80", "95.5", "120", "eighty", "101", None],
        price=[1.0, 2.5, 3.5, 4.5, 5.5, 6.5],
    )

    validation = validate_dataset(frame, "price")

    assert len(failure_messages(validation)) == 1
    problem = failure_messages(validation)[0]
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

    assert validate_dataset(frame, "price").passed


def test_regression_on_a_text_target_names_the_target():
    frame = frame_with(size=[1.0, 2.0, 3.0], label=["A", "B", "C"])

    validation = validate_dataset(frame, "label", task="regression")

    assert validation.task == "regression"
    assert failure_messages(validation) == [
        "task=regression needs a numeric target, but column 'label' holds text such as ['A', 'B', 'C']"
    ]


def test_classification_with_too_many_classes_suggests_regression():
    frame = frame_with(size=np.arange(150.0), price=np.arange(150.0) * 1000)

    failures = failure_messages(validate_dataset(frame, "price", task="classification"))

    assert len(failures) == 1
    assert "target column 'price' has 150 distinct values, more than 100 classes" in failures[0]
    assert "task=regression" in failures[0]


def test_dataset_with_only_the_target_has_no_features():
    frame = frame_with(price=[1.0, 2.0, 3.0])

    failures = failure_messages(validate_dataset(frame, "price"))

    assert "no feature columns: the dataset has only the target column 'price'" in failures


def test_every_failure_is_listed_in_the_error():
    frame = frame_with(empty=[None] * 4, size=["1", "2", "3", "x"], label=["A"] * 4)

    with pytest.raises(DataValidationError) as raised:
        validate_dataset(frame, "label").raise_for_failures()

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
        validate_dataset(frame_with(size=[1.0, 2.0], price=[1.0, 2.0]), "price", task="clustering")


def test_validation_reports_the_resolved_task():
    frame = frame_with(size=[1.0, 2.0, 3.0, 4.0], label=[0, 1, 0, 1])

    assert validate_dataset(frame, "label").task == "classification"
    assert validate_dataset(frame, "label", task="regression").task == "regression"


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
        "role": "feature",
    }
    assert columns["rooms"]["type"] == "numeric"
    assert columns["area"]["type"] == "categorical"
    assert columns["area"]["categories"] == ["north", "south"]  # most frequent first
    assert columns["area"]["nulls"] == 1
    assert columns["renovated"]["type"] == "categorical"
    assert set(columns["renovated"]["categories"]) == {"True", "False"}


def test_report_lists_the_failures_and_the_schema():
    frame = frame_with(
        size=[50.0, np.nan, 150.0, 100.0],
        garden=[None] * 4,
        label=["A"] * 4,
    )
    validation = validate_dataset(frame, "label")

    report = render_report(validation, "label")

    assert report.startswith(f"# Data validation failed with {len(validation.failures)} failure(s)\n")
    assert "4 rows, 3 columns; target `label`, task `classification`." in report
    assert "## Failures" in report
    for finding in validation.failures:
        assert f"- **{finding.check}**: {finding.message}" in report
    assert "| values | fail | **failed**: garden |" in report
    assert "| target | fail | **failed**: label |" in report
    assert "| range | warn | not run |" in report  # no reference schema
    assert "## Schema" in report
    assert "| size | feature | numeric | float | float64 | 1 (25.0%) | 3 |  | 50 .. 150 |" in report
    assert "| garden | feature | categorical | empty | object | 4 (100.0%) | 0 |  |  |" in report
    assert "| label | target | categorical | string | object | 0 (0.0%) | 1 |  | A |" in report
    assert "| leakage | fail | not run |" in report  # scores of failed data would mislead
    assert "## Leakage\n\nNot run (the data failed)." in report


def test_report_of_passing_data_has_no_failure_section(houses):
    validation = validate_dataset(houses, "price")

    report = render_report(validation, "price")

    assert report.startswith("# Data validation passed\n")
    assert "## Failures" not in report
    for column in houses.columns:
        assert f"| {column} |" in report


@pytest.mark.parametrize("column", ["size", "price"])
def test_infinite_numbers_stop_the_run_naming_the_column(column):
    frame = pd.DataFrame({"size": [50.0, 60.0, 70.0, 80.0], "price": [1.0, 2.0, 3.0, 4.5]})
    frame.loc[1, column] = np.inf
    frame.loc[2, column] = -np.inf

    failures = failure_messages(validate_dataset(frame, "price"))

    assert failures == [f"column {column!r} has 2 infinite value(s); leave a value empty when it is unknown"]


def test_inf_written_in_a_csv_is_caught(tmp_path):
    # pandas reads the text "inf" as a float infinity; training would only fail inside scikit-learn.
    path = tmp_path / "houses.csv"
    path.write_text("size,price\n50,100\ninf,200\n70,300\n")

    failures = failure_messages(validate_dataset(pd.read_csv(path), "price"))

    assert failures == ["column 'size' has 1 infinite value(s); leave a value empty when it is unknown"]


# --- column roles: exclude_columns, identifiers, validation_policy -----------------------------------------------


def listings(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    """Listings with a numeric, an integer and a categorical feature, and a price."""
    rng = np.random.default_rng(seed)
    size = rng.lognormal(np.log(90), 0.3, rows).round(1)
    return pd.DataFrame(
        {
            "size": size,
            "rooms": rng.integers(1, 7, rows),
            "area": rng.choice(["north", "south", "east"], rows),
            "price": (size * 3000 * rng.lognormal(0, 0.3, rows)).round(-2),
        }
    )


def roles(validation) -> dict[str, str]:
    return {column["name"]: column["role"] for column in validation.schema["columns"]}


def test_excluded_columns_get_their_role_and_reason_in_the_schema():
    frame = listings().assign(notes=["call the agent"] * 200)

    validation = validate_dataset(frame, "price", exclude_columns=["notes", "rooms"])

    assert validation.passed, validation.failures
    assert roles(validation) == {
        "size": "feature",
        "rooms": "excluded",
        "area": "feature",
        "price": "target",
        "notes": "excluded",
    }
    assert validation.excluded == {"rooms": "exclude_columns", "notes": "exclude_columns"}  # in column order
    assert validation.leakage.features and "rooms" not in {f.name for f in validation.leakage.features}
    report = render_report(validation, "price")
    assert "## Excluded columns" in report
    assert "- `rooms`: exclude_columns\n- `notes`: exclude_columns\n" in report
    assert "| rooms | excluded | numeric |" in report


@pytest.mark.parametrize(
    ("exclude", "message"),
    [
        (["garden", "size"], r"exclude_columns names unknown column\(s\) \['garden'\]; columns are \['size', "),
        (["price"], r"exclude_columns names the target column 'price'; it cannot be excluded"),
        ("size", r"exclude_columns must be a list of column names, got 'size'"),
    ],
)
def test_a_bad_exclude_columns_stops_the_run_naming_it(exclude, message):
    with pytest.raises(DataValidationError, match=message):
        validate_dataset(listings(), "price", exclude_columns=exclude)


@pytest.mark.parametrize("parameter", ["exclude_columns", "sensitive_columns"])
def test_a_column_parameter_differing_only_by_case_or_spaces_is_pointed_out(parameter):
    frame = listings().rename(columns={"area": " Area"})

    with pytest.raises(
        DataValidationError,
        match=rf"the data has ' Area' for 'area', differing only by case or surrounding spaces: write the data's "
        rf"name exactly in {parameter}, or rename the column in the file",
    ):
        validate_dataset(frame, "price", **{parameter: ["area"]})


def test_sensitive_columns_may_be_features_or_excluded_columns():
    frame = listings().assign(sex=["f", "m"] * 100)

    validation = validate_dataset(frame, "price", exclude_columns=["sex"], sensitive_columns=["sex", "area"])

    assert validation.passed, validation.failures
    assert roles(validation)["sex"] == "excluded"  # audited, never a feature


@pytest.mark.parametrize(
    ("sensitive", "message"),
    [
        (["area", "sex", "race"], r"sensitive_columns: unknown column\(s\) \['sex', 'race'\]; the data's columns are"),
        (["price"], r"sensitive_columns: 'price' is the target"),
        ("area", r"sensitive_columns must be a list of column names, got 'area'"),
    ],
)
def test_a_bad_sensitive_columns_stops_the_run_naming_it(sensitive, message):
    with pytest.raises(DataValidationError, match=message):
        validate_dataset(listings(), "price", sensitive_columns=sensitive)


def test_an_excluded_column_skips_the_data_checks():
    # A free-text column is a common reason to exclude one: its overlong values stop the run only as a feature.
    frame = listings().assign(description=["x" * 20_000] + ["short"] * 199, empty=[None] * 200)

    assert {f.check for f in validate_dataset(frame, "price").failures} == {"text_length", "values"}
    assert validate_dataset(frame, "price", exclude_columns=["description", "empty"]).passed


def test_excluding_every_feature_leaves_nothing_to_train_on():
    failures = failure_messages(validate_dataset(listings(), "price", exclude_columns=["size", "rooms", "area"]))

    assert len(failures) == 1
    assert failures[0].startswith("no feature columns: every column but the target 'price' is excluded")


def shuffled_sequence(rows: int, seed: int = 0) -> np.ndarray:
    """Row numbers 1..1.5*rows with gaps, shuffled: a key, in no order."""
    return np.random.default_rng(seed).permutation(np.arange(1, int(rows * 1.5) + 1))[:rows]


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        pytest.param(shuffled_sequence(200), "identifier: unique integers in sequence", id="sequence"),
        pytest.param(
            [str(uuid.UUID(int=int(n))) for n in np.random.default_rng(1).integers(0, 2**62, 200)],
            "identifier: unique UUID-like text",
            id="uuid",
        ),
        pytest.param([f"{n} Elm Street" for n in range(200)], "identifier: unique text", id="text"),
    ],
)
def test_identifiers_are_excluded_with_a_warning_by_default(values, reason):
    validation = validate_dataset(listings().assign(key=values), "price")

    assert validation.passed, validation.failures
    assert validation.excluded == {"key": reason}
    [warning] = validation.warnings
    assert warning.check == "identifiers" and warning.column == "key"
    assert "excluded from the features" in warning.message
    assert f"- `key`: {reason}" in render_report(validation, "price")


def test_identifiers_fail_the_run_under_policy_fail():
    frame = listings().assign(listing_id=shuffled_sequence(200))

    validation = validate_dataset(frame, "price", validation_policy=ValidationPolicy(identifiers="fail"))

    assert roles(validation)["listing_id"] == "feature"
    with pytest.raises(DataValidationError, match=r"\[identifiers\] column 'listing_id' is an identifier"):
        validation.raise_for_failures()
    assert "rerun with exclude_columns=['listing_id']" in failure_messages(validation)[0]
    assert "| identifiers | fail | **failed**: listing_id |" in render_report(validation, "price")


def test_identifiers_stay_features_under_policy_keep():
    validation = validate_dataset(
        listings().assign(listing_id=shuffled_sequence(200)),
        "price",
        validation_policy=ValidationPolicy(identifiers="keep"),
    )

    assert validation.passed and not validation.warnings
    assert roles(validation)["listing_id"] == "feature"
    report = render_report(validation, "price")
    assert "| identifiers | keep | kept: listing_id |" in report
    assert "## Identifiers kept" in report


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(np.random.default_rng(2).normal(100, 15, 200), id="unique-float-measurement"),
        pytest.param(np.random.default_rng(3).choice(np.arange(20_000, 200_000), 200, replace=False), id="incomes"),
        pytest.param(np.random.default_rng(4).integers(1, 7, 200), id="repeating-integers"),
        pytest.param(np.random.default_rng(5).choice(["a", "b", "c"], 200), id="categories"),
    ],
)
def test_unique_measurements_and_repeating_values_are_no_identifiers(values):
    validation = validate_dataset(listings().assign(reading=values), "price")

    assert not validation.identifier_findings
    assert roles(validation)["reading"] == "feature"


def test_uniqueness_by_chance_in_a_tiny_table_is_no_identifier():
    frame = listings(rows=12).assign(street=[f"{n} Elm Street" for n in range(12)], number=range(12))

    assert validate_dataset(frame, "price").identifier_findings == []


def test_unique_text_that_is_mostly_numbers_is_a_mixed_column_not_an_identifier():
    sizes = [f"{value:.2f}" for value in np.random.default_rng(6).uniform(40, 200, 200)]
    sizes[7] = "n/a"

    validation = validate_dataset(listings().assign(size=sizes), "price")

    assert not validation.identifier_findings
    assert [finding.check for finding in validation.failures] == ["mixed_types"]


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"identifier": "exclude"}, r"validation_policy has unknown key\(s\) \['identifier'\]; known keys: "),
        (
            {"identifiers": "drop"},
            r"validation_policy\['identifiers'\] must be one of \['exclude', 'fail', 'keep'\], got 'drop'",
        ),
        (
            {"leakage": "exclude"},
            r"validation_policy\['leakage'\] must be one of \['fail', 'warn', 'ignore'\], got 'exclude'",
        ),
    ],
)
def test_a_bad_validation_policy_for_the_columns_stops_the_run_naming_the_key(policy, message):
    with pytest.raises(ValueError, match=message):
        read_validation_policy(policy)


# --- the validation policy, and the parameters it replaces -------------------------------------------------------


def test_the_policy_defaults_fail_on_columns_and_types_and_warn_on_the_rest():
    policy = read_validation_policy({})

    assert policy == ValidationPolicy()
    assert {
        check: policy.action(check) for check in ("columns", "types", "nulls", "domain", "range", "uniqueness")
    } == {
        "columns": "fail",
        "types": "fail",
        "nulls": "warn",
        "domain": "warn",
        "range": "warn",
        "uniqueness": "warn",
    }
    assert (policy.identifiers, policy.leakage) == ("exclude", "fail")
    assert read_validation_policy({"domain": "fail"}).domain == "fail"


def test_the_policy_has_a_key_per_schema_check_and_per_column_check():
    from dataclasses import fields

    from model_bundle.schema import CHECKS

    assert [item.name for item in fields(ValidationPolicy)] == [*CHECKS, "identifiers", "leakage"]


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"colour": "fail"}, r"validation_policy has unknown key\(s\) \['colour'\]"),
        ({"range": "stop"}, r"validation_policy\['range'\] must be one of \['fail', 'warn', 'ignore'\], got 'stop'"),
        ({"range": 1}, r"validation_policy\['range'\] must be a str, got 1"),
    ],
)
def test_a_bad_schema_check_policy_is_refused_naming_the_key(policy, message):
    with pytest.raises(ValueError, match=message):
        read_validation_policy(policy)


def test_the_deprecated_schema_and_column_policies_still_work_and_name_the_new_keys(capsys):
    policy = read_validation_policy(
        {"nulls": "fail"}, schema_policy={"domain": "fail"}, column_policy={"identifiers": "keep", "leakage": "warn"}
    )

    assert policy == ValidationPolicy(nulls="fail", domain="fail", identifiers="keep", leakage="warn")
    err = capsys.readouterr().err
    for old, key in (("schema_policy", "domain"), ("column_policy", "identifiers"), ("column_policy", "leakage")):
        assert f"parameter {old} will be removed in the next release; set validation_policy[{key!r}] instead" in err


def test_unset_deprecated_policies_say_nothing(capsys):
    assert read_validation_policy({}, schema_policy=None, column_policy=None) == ValidationPolicy()
    assert read_validation_policy({}, schema_policy={}, column_policy={}) == ValidationPolicy()  # the old defaults
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("deprecated", "message"),
    [
        (
            {"column_policy": {"identifier": "exclude"}},
            r"parameter column_policy has unknown key\(s\) \['identifier'\]; known keys: ",
        ),
        ({"column_policy": {"domain": "fail"}}, r"column_policy has unknown key\(s\) \['domain'\]"),
        ({"schema_policy": {"leakage": "warn"}}, r"schema_policy has unknown key\(s\) \['leakage'\]"),
        ({"schema_policy": {"colour": "fail"}}, r"schema_policy has unknown key\(s\) \['colour'\]"),
        (
            {"column_policy": {"leakage": "maybe"}},
            r"validation_policy\['leakage'\] must be one of \['fail', 'warn', 'ignore'\], got 'maybe'",
        ),
    ],
)
def test_a_deprecated_policy_is_held_to_the_keys_it_had(deprecated, message):
    with pytest.raises(ValueError, match=message):
        read_validation_policy({}, **deprecated)


def test_a_deprecated_policy_contradicting_the_validation_policy_is_refused():
    with pytest.raises(ValueError, match=r"parameter schema_policy \(deprecated\) sets 'domain' to 'warn' but"):
        read_validation_policy({"domain": "fail"}, schema_policy={"domain": "warn"})


def test_a_champion_s_excluded_columns_are_never_missing_new_or_changed():
    champion = validate_dataset(
        listings().assign(listing_id=shuffled_sequence(200), notes="x"), "price", exclude_columns=["notes"]
    )
    # The new data has neither the champion's identifier nor its excluded notes, but a new excluded column.
    batch = listings().assign(batch_ref=[f"b-{n}" for n in range(200)])

    validation = validate_dataset(batch, "price", reference=champion.schema, reference_name="the champion's schema")

    assert validation.schema_findings == []
    assert validation.passed and validation.excluded == {"batch_ref": "identifier: unique text"}
