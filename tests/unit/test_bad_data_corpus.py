"""The bad-data corpus (tests/data/corpus): each file stops the run, naming the column and the check, or is cleaned
by a documented policy whose effect is recorded. None reaches training silently.

Each file goes through the code the pipeline's steps run, in their order: ingest (``read_source``), validate
(against the schema of ``good.csv``, standing for the champion's, where the case says so), prepare.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from components._common.cleaning import CleaningPolicy
from components.ingest_data.errors import IngestError
from components.ingest_data.logic import read_source
from components.prepare_data.logic import Preparation, PreparationError, prepare
from components.validate_data.logic import DataValidationError, Validation, validate_dataset
from components.validate_data.policy import read_validation_policy
from model_bundle import schema as contract

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
# Every corpus file numbers its rows in column `id`: unique, it is excluded as an identifier (a warning).
IDENTIFIER_EXCLUDED = ("identifiers", "id")


@dataclass(frozen=True)
class Case:
    file: str
    stops_at: str = ""  # "ingest", "validate" or "prepare"; empty: the data reaches training, cleaned
    message: str = ""  # a regular expression the error must contain
    checks: tuple[tuple[str, str], ...] = ()  # (check, column) pairs that must fail validation
    warnings: tuple[tuple[str, str], ...] = ()  # (check, column) pairs reported as warnings
    cleaned: tuple[tuple[str, str, int], ...] = ()  # (policy, column, rows dropped or values changed)
    target: str = "price"
    against_champion: bool = True
    options: dict = field(default_factory=dict)  # ingest, validate and prepare parameters


CASES = [
    Case("empty.csv", "ingest", r"'.*empty\.csv' is empty \(0 bytes\)"),
    Case("header_only.csv", "ingest", r"has a header but no data rows"),
    Case("truncated_last_line.csv", "ingest", r"line 31 has 2 field\(s\) but the header has 6; .* truncated"),
    Case("non_utf8.csv", "ingest", r"is not UTF-8: byte 0xfc at offset 91 \(line 3\)"),
    Case("duplicate_column_names.csv", "ingest", r"repeats column name\(s\) in its header: 'size' \(2 times\)"),
    Case("csv_named.parquet", "ingest", r"it is not a Parquet file \(it starts with text 'id,size"),
    Case("missing_target.csv", "validate", r"target column 'price' not found", (("target", "price"),)),
    Case(
        "wrong_delimiter.csv",
        "validate",
        r"target column 'price' not found; columns are \['id;size;rooms;neighbourhood;renovated;price'\]",
        (("target", "price"),),
        options={"csv_delimiter": ","},
    ),
    Case("all_null_column.csv", "validate", r"column 'garden' has no values", (("values", "garden"),)),
    Case(
        "single_class_target.csv",
        "validate",
        r"target column 'label' has a single value \('A'\) in 30 rows",
        (("target", "label"),),
        target="label",
        against_champion=False,
    ),
    Case(
        "mixed_types.csv",
        "validate",
        r"column 'size' mixes numbers and text: 1 of 29 values are not numbers, e.g. \['eighty'\]",
        (("mixed_types", "size"), ("types", "size")),
    ),
    Case(
        "mixed_types.csv",
        options={"coerce_mixed_types": True},
        # Coerced, the column is numeric again (no "types" finding), with values missing that the champion had.
        warnings=(("mixed_types", "size"), ("nulls", "size"), IDENTIFIER_EXCLUDED),
        cleaned=(("coerce_mixed_types", "size", 1),),
    ),
    Case(
        "mixed_json_types.jsonl",
        "validate",
        r"column 'rooms' mixes numbers and text: 1 of 30 values are not numbers, e.g. \['three'\]",
        (("mixed_types", "rooms"), ("types", "rooms")),
    ),
    Case("inf_and_nan.csv", "validate", r"column 'size' has 2 infinite value\(s\)", (("infinite", "size"),)),
    Case(
        "huge_string_field.csv",
        "validate",
        r"column 'neighbourhood' holds a value of 20000 characters",
        (("text_length", "neighbourhood"),),
    ),
    Case(
        "numeric_column_full_of_text.csv",
        "validate",
        r"column 'size' was numeric \(float\) in the reference schema, now categorical \(string\)",
        (("types", "size"),),
    ),
    Case(
        "text_in_numeric_target.csv",
        "validate",
        r"column 'price' was numeric \(integer\) in the reference schema, now categorical \(string\)",
        (("types", "price"),),
    ),
    Case(
        "text_in_numeric_target.csv",
        "validate",
        r"task=regression needs a numeric target, but column 'price' holds text",
        (("target", "price"),),
        against_champion=False,
        options={"task": "regression"},
    ),
    Case(
        "renamed_column.csv",
        "validate",
        r"column 'size' of the reference schema is missing",
        (("columns", "size"), ("columns", "area")),
    ),
    Case("unseen_category.csv", warnings=(("domain", "neighbourhood"), IDENTIFIER_EXCLUDED)),
    Case(
        "unseen_category.csv",
        "validate",
        r"column 'neighbourhood' has 2 value\(s\) in 1 categor\(ies\) outside the reference domain of 3, "
        r"e.g. \['Atlantis'\]",
        (("domain", "neighbourhood"),),
        options={"policy": {"domain": "fail"}},
    ),
    Case(
        "range_shift.csv",
        "validate",
        r"column 'size' has 28 value\(s\) outside the reference range \[42.4, 159.5\]",
        (("range", "size"),),
        options={"policy": {"range": "fail"}},
    ),
    Case(
        "nulls_where_none_were.csv",
        "validate",
        r"column 'rooms' has 10 missing value\(s\) \(33.3%\); the reference had 0.0%",
        (("nulls", "rooms"),),
        options={"policy": {"nulls": "fail"}},
    ),
    # Repeating, `id` is no identifier here, but the champion's identifier is still held to its uniqueness.
    Case("repeated_identifier.csv", warnings=(("uniqueness", "id"),)),
    Case(
        "missing_target_values.csv",
        warnings=(("nulls", "price"), IDENTIFIER_EXCLUDED),
        cleaned=(("missing_target", "price", 3),),
    ),
    Case(
        "duplicate_rows.csv",
        warnings=(("uniqueness", "id"),),
        cleaned=(("duplicates", "", 4),),
    ),
    Case(
        "outlier.csv",
        warnings=(("range", "size"), IDENTIFIER_EXCLUDED),
        cleaned=(("outliers", "size", 1),),
        options={"outliers": "drop"},
    ),
    Case(
        "outlier.csv",
        warnings=(("range", "size"), IDENTIFIER_EXCLUDED),
        cleaned=(("outliers", "size", 1),),
        options={"outliers": "clip"},
    ),
    # Read as UTF-8 without the mark in the first column's name, which is then known as the identifier `id`.
    Case("utf8_bom.csv", warnings=(IDENTIFIER_EXCLUDED,)),
    Case(
        "single_row_class.csv",
        "prepare",
        r"class\(es\) \['C'\] of target 'label' have a single row",
        target="label",
        against_champion=False,
    ),
    Case(
        "too_few_rows_after_duplicates.csv",
        "prepare",
        r"only 6 usable rows of 12 remain after cleaning \(6 by duplicates\)",
    ),
]


@pytest.fixture(scope="module")
def champion_schema() -> dict:
    """The schema a champion trained on good.csv carries."""
    good = read_source(str(CORPUS / "good.csv")).frame
    validation = validate_dataset(good, "price")
    assert validation.passed, validation.failures
    assert [(w.check, w.column) for w in validation.warnings] == [IDENTIFIER_EXCLUDED]  # the only warning
    return validation.schema


def run_until_training(case: Case, reference: dict | None) -> tuple[Validation, Preparation]:
    """ingest -> validate -> prepare, as the training pipeline runs them; returns what training would get."""
    options = case.options
    frame = read_source(str(CORPUS / case.file), csv_delimiter=options.get("csv_delimiter", "")).frame
    cleaning = CleaningPolicy(
        coerce_mixed_types=options.get("coerce_mixed_types", False), outliers=options.get("outliers", "keep")
    )
    validation = validate_dataset(
        frame,
        case.target,
        task=options.get("task", "auto"),
        reference=reference,
        reference_name="the champion's schema",
        validation_policy=read_validation_policy(options.get("policy")),
        coerce_mixed_types=cleaning.coerce_mixed_types,
    )
    validation.raise_for_failures()
    prepared = prepare(frame, case.target, validation.task, cleaning_policy=cleaning)
    return validation, prepared


def test_the_corpus_has_at_least_twenty_malformed_files_each_covered():
    files = {path.name for path in CORPUS.iterdir() if path.name not in ("README.md", "good.csv")}
    covered = {case.file for case in CASES}
    assert files == covered
    assert len(files) >= 20
    readme = (CORPUS / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in files), "every corpus file is documented in its README"


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.file}-{case.stops_at or 'cleaned'}")
def test_bad_data_stops_with_column_and_check_or_is_cleaned_by_policy(case, champion_schema):
    reference = champion_schema if case.against_champion else None
    if case.stops_at:
        error_type = {"ingest": IngestError, "validate": DataValidationError, "prepare": PreparationError}
        with pytest.raises(error_type[case.stops_at], match=case.message) as raised:
            run_until_training(case, reference)
        for check, column in case.checks:  # each failing check is named with its column: "- [check] ... 'column'"
            assert re.search(rf"- \[{check}\] [^\n]*'{column}'", str(raised.value)), (check, column, raised.value)
        return

    validation, prepared = run_until_training(case, reference)

    assert {(w.check, w.column) for w in validation.warnings} == set(case.warnings)
    changed = {(s.policy, s.column, s.rows or s.values) for s in prepared.cleaning if s.rows or s.values}
    assert set(case.cleaned) <= changed
    if not case.cleaned:
        assert not changed, "nothing is cleaned that the case does not expect"
    training = prepared.train
    assert training[case.target].notna().all()
    assert not training.duplicated().any()
    assert list(training.columns) == [column["name"] for column in validation.schema["columns"]]


def test_cleaned_values_are_what_the_policy_says(champion_schema):
    clipped = run_until_training(Case("outlier.csv", options={"outliers": "clip"}), champion_schema)[1]
    both = [clipped.train, clipped.test]
    assert max(frame["size"].max() for frame in both) < 1000  # 95000 clipped to the upper fence
    coerced = run_until_training(Case("mixed_types.csv", options={"coerce_mixed_types": True}), None)[1]
    assert all(frame["size"].dtype == "float64" for frame in (coerced.train, coerced.test))
    bom = read_source(str(CORPUS / "utf8_bom.csv")).frame
    assert bom.columns[0] == "id"


def test_the_champion_schema_is_the_contract_of_good_data(champion_schema):
    columns = contract.column_map(champion_schema)
    assert columns["neighbourhood"]["domain"] == ["Harbour", "Old Town", "Riverside"]
    assert columns["id"]["unique"] and not columns["price"]["unique"]  # the target is no identifier
    assert (columns["id"]["role"], columns["id"]["excluded_because"]) == (
        "excluded",
        "identifier: unique integers in sequence",
    )
    assert {columns[name]["role"] for name in ("size", "rooms", "neighbourhood", "renovated")} == {"feature"}
    assert columns["price"]["role"] == "target"
    assert columns["size"]["type"] == "numeric" and not columns["size"]["nullable"]
