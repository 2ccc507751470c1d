"""Infers a dataset's schema, resolves the task, checks that a model can be trained on the data, and compares
the data with a reference schema (the champion's) under a per-check policy.

Every problem names its column and its check; the step fails when a data check fails or a schema check whose
policy is ``fail`` finds a difference. Schema checks whose policy is ``warn`` are reported and let the run go on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from components._common.scoring import CLASSIFICATION, REGRESSION, TASKS
from model_bundle import NUMERIC
from model_bundle import schema as schema_contract
from model_bundle.schema import FAIL, IGNORE, WARN, Finding

AUTO = "auto"
# An integer target with at most this many distinct values is taken for class labels when task=auto.
MAX_AUTO_CLASSES = 20
MAX_CLASSES = 100

# Data checks: whatever the policy, data failing them cannot be trained on.
ROWS = "rows"
TARGET = "target"
FEATURES = "features"
VALUES = "values"  # a column without any value
MIXED_TYPES = "mixed_types"  # a text column that is mostly numbers
INFINITE = "infinite"
TEXT_LENGTH = "text_length"  # a category longer than MAX_TEXT_LENGTH: a broken quote or a document, not a label
DATA_CHECKS = (ROWS, TARGET, FEATURES, VALUES, MIXED_TYPES, INFINITE, TEXT_LENGTH)
MAX_TEXT_LENGTH = 10_000


class DataValidationError(ValueError):
    """The data cannot be trained on; the message lists every problem with its column and check."""


@dataclass
class Validation:
    schema: dict
    task: str
    issues: list[Finding] = field(default_factory=list)  # data checks that failed: always stop the run
    findings: list[Finding] = field(default_factory=list)  # differences from the reference schema
    policy: dict[str, str] = field(default_factory=lambda: dict(schema_contract.DEFAULT_POLICY))
    reference: str = ""  # what the data was compared with; empty when there was no reference schema
    coerced: list[Finding] = field(default_factory=list)  # mixed columns prepare_data will coerce

    @property
    def failures(self) -> list[Finding]:
        return self.issues + [finding for finding in self.findings if self.policy[finding.check] == FAIL]

    @property
    def warnings(self) -> list[Finding]:
        return self.coerced + [finding for finding in self.findings if self.policy[finding.check] == WARN]

    @property
    def problems(self) -> list[str]:
        return [finding.message for finding in self.failures]

    @property
    def passed(self) -> bool:
        return not self.failures

    def raise_for_problems(self) -> None:
        if self.failures:
            lines = [f"[{finding.check}] {finding.message}" for finding in self.failures]
            raise DataValidationError("data validation failed:\n- " + "\n- ".join(lines))


def infer_schema(frame: pd.DataFrame, target: str | None = None) -> dict:
    """The data contract of ``frame`` (``model_bundle.schema``): per column its type, missing values, range or
    categories, and uniqueness."""
    return schema_contract.infer(frame, target)


def resolve_task(target: pd.Series, task: str) -> str:
    """``task`` itself, or for ``auto``: classification for text, booleans and small integer label sets."""
    if task != AUTO:
        if task not in TASKS:
            raise DataValidationError(f"parameter task must be one of {(AUTO, *TASKS)}, got {task!r}")
        return task
    values = target.dropna()
    if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return CLASSIFICATION
    is_integral = bool((values == values.round()).all())
    return CLASSIFICATION if is_integral and values.nunique() <= MAX_AUTO_CLASSES else REGRESSION


def validate(
    frame: pd.DataFrame,
    target: str,
    task: str = AUTO,
    reference: Mapping | None = None,
    reference_name: str = "the reference schema",
    policy: Mapping[str, str] | None = None,
    coerce_mixed_types: bool = False,
) -> Validation:
    """Checks ``frame`` for training on ``target`` and, given a ``reference`` schema, compares it with that.

    ``policy`` maps schema checks to ``fail``, ``warn`` or ``ignore`` (``model_bundle.schema.DEFAULT_POLICY`` for
    the others). With ``coerce_mixed_types``, a text column that is mostly numbers is a warning (prepare_data sets
    its other values missing) instead of a failure.
    """
    resolved_policy = schema_contract.check_policy(policy or {})
    schema, present = schema_contract.infer_with_values(frame, target)
    validation = Validation(schema=schema, task=task, policy=resolved_policy)
    issues = validation.issues
    if frame.empty:
        issues.append(Finding(ROWS, "", "the dataset has no rows"))
    if target not in frame.columns:
        columns = [str(c) for c in frame.columns]
        issues.append(Finding(TARGET, target, f"target column {target!r} not found; columns are {columns}"))
        return validation
    if frame.columns.size < 2:
        issues.append(
            Finding(FEATURES, target, f"no feature columns: the dataset has only the target column {target!r}")
        )

    validation.task = resolve_task(frame[target], task)
    issues += _target_problems(frame[target], target, validation.task)
    for column in schema["columns"]:
        name = column["name"]
        if len(frame) and column["nulls"] == len(frame) and name != target:
            issues.append(Finding(VALUES, name, f"column {name!r} has no values (all {len(frame)} are missing)"))
        elif column["type"] != NUMERIC and name != target:
            if column["max_length"] > MAX_TEXT_LENGTH:
                message = (
                    f"column {name!r} holds a value of {column['max_length']} characters, more than "
                    f"{MAX_TEXT_LENGTH}: a category is a short label (a broken quote can swallow many lines)"
                )
                issues.append(Finding(TEXT_LENGTH, name, message, column["max_length"]))
            mixed = _mixed_type_problem(present[name], name)
            if mixed and coerce_mixed_types:
                message = f"{mixed.message}; prepare_data sets them missing (coerce_mixed_types)"
                validation.coerced.append(Finding(MIXED_TYPES, name, message, mixed.count, mixed.examples))
            elif mixed:
                issues.append(mixed)
        elif math.isinf(column.get("min", 0.0)) or math.isinf(column.get("max", 0.0)):
            # The schema's range shows it at no cost; scikit-learn would only fail later, inside training.
            infinite = int(np.isinf(frame[name].to_numpy(dtype="float64", na_value=np.nan)).sum())
            message = f"column {name!r} has {infinite} infinite value(s); leave a value empty when it is unknown"
            issues.append(Finding(INFINITE, name, message, infinite))
    if validation.coerced:
        # The schema describes the data as prepare_data delivers it to training: these columns as numbers.
        frame = coerce_mixed_columns(frame, [finding.column for finding in validation.coerced])
        validation.schema = schema = schema_contract.infer(frame, target)
    if reference is not None:
        validation.reference = reference_name
        findings = schema_contract.compare(reference, schema, frame)
        validation.findings = [finding for finding in findings if resolved_policy[finding.check] != IGNORE]
    return validation


def _target_problems(values: pd.Series, target: str, task: str) -> list[Finding]:
    labelled = values.dropna()
    if labelled.empty:
        return [Finding(TARGET, target, f"target column {target!r} has no values")]
    distinct = schema_contract.distinct_count(labelled, labelled.isna())
    if distinct == 1:
        message = (
            f"target column {target!r} has a single value ({labelled.iloc[0]!r}) in {len(labelled)} rows: "
            "there is nothing to learn"
        )
        return [Finding(TARGET, target, message)]
    is_numeric = pd.api.types.is_numeric_dtype(labelled.dtype) and not pd.api.types.is_bool_dtype(labelled.dtype)
    if task == REGRESSION and not is_numeric:
        examples = labelled.astype(str).unique()[:3].tolist()
        message = f"task=regression needs a numeric target, but column {target!r} holds text such as {examples}"
        return [Finding(TARGET, target, message, examples=tuple(examples))]
    if task == CLASSIFICATION and distinct > MAX_CLASSES:
        message = (
            f"target column {target!r} has {distinct} distinct values, more than {MAX_CLASSES} classes; "
            "use task=regression for a continuous target"
        )
        return [Finding(TARGET, target, message, distinct)]
    return []


def _mixed_type_problem(present: pd.Series, name: str) -> Finding | None:
    """A text column in which most values are numbers is a numeric column with typos, not a category.

    ``present``: the column's values without the missing ones.
    """
    if not is_mostly_numbers(present):
        return None
    bad = present[~parses_as_number(present)]
    examples = bad.astype(str).unique()[:3].tolist()
    message = (
        f"column {name!r} mixes numbers and text: {len(bad)} of {len(present)} values are not numbers, e.g. {examples}"
    )
    return Finding(MIXED_TYPES, name, message, len(bad), tuple(examples))


def coerce_mixed_columns(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame`` with ``columns`` converted to numbers; values that are not finite numbers become missing."""
    converted = {name: pd.to_numeric(frame[name].astype("string").str.strip(), errors="coerce") for name in columns}
    return frame.assign(
        **{name: values.astype("float64").replace([np.inf, -np.inf], np.nan) for name, values in converted.items()}
    )


def is_mostly_numbers(present: pd.Series) -> bool:
    """At least half, but not all, of a text column's present values are numbers: numbers with typos."""
    if present.empty or pd.api.types.is_bool_dtype(present.dtype):
        return False
    return 0.5 <= float(parses_as_number(present).mean()) < 1.0


def parses_as_number(present: pd.Series) -> np.ndarray:
    """Per value (none missing): its text, stripped, parses as a number.

    A column of strings holds few distinct values, each parsed once; anything else is parsed value by value.
    """
    if present.dtype == object and pd.api.types.infer_dtype(present, skipna=False) == "string":
        codes, uniques = pd.factorize(present)
        parsed = pd.to_numeric(pd.Series(uniques, dtype=object).str.strip(), errors="coerce")
        return parsed.notna().to_numpy()[codes]
    return pd.to_numeric(present.astype(str).str.strip(), errors="coerce").notna().to_numpy()


def render_report(validation: Validation, target: str) -> str:
    """A Markdown report for the KFP UI: the verdict, every check with its result, each failure and warning with
    counts and examples, and the inferred schema."""
    schema = validation.schema
    failures, warnings = validation.failures, validation.warnings
    verdict = "passed" if validation.passed else f"failed with {len(failures)} problem(s)"
    if warnings:
        verdict += f", {len(warnings)} warning(s)"
    reference = (
        f"Compared with {validation.reference}."
        if validation.reference
        else "No reference schema (no champion yet): the schema checks did not run; this schema becomes the "
        "reference when this model is champion."
    )
    lines = [
        f"# Data validation {verdict}",
        "",
        f"{schema['rows']} rows, {len(schema['columns'])} columns; target `{target}`, task `{validation.task}`. "
        + reference,
        "",
        "## Checks",
        "",
        "| check | policy | result |",
        "|---|---|---|",
    ]
    for check in DATA_CHECKS:
        policy = "warn (coerce_mixed_types)" if check == MIXED_TYPES and validation.coerced else "fail"
        lines.append(f"| {check} | {policy} | {_result(check, failures, warnings)} |")
    for check in schema_contract.CHECKS:
        policy = validation.policy[check]
        result = _result(check, failures, warnings) if validation.reference and policy != IGNORE else "not run"
        lines.append(f"| {check} | {policy} | {result} |")
    lines.append("")
    for title, group in (("Problems", failures), ("Warnings", warnings)):
        if group:
            lines += [f"## {title}", ""] + [f"- **{finding.check}**: {finding.message}" for finding in group] + [""]
    lines += [
        "## Schema",
        "",
        "| column | type | kind | dtype | missing | distinct | unique | range / categories |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for column in schema["columns"]:
        if "min" in column:
            domain = f"{column['min']:g} .. {column['max']:g}"
        else:
            shown = column.get("categories", [])[:8]
            domain = ", ".join(shown) + (" ..." if column["distinct"] > len(shown) else "")
        lines.append(
            f"| {column['name']} | {column['type']} | {column['kind']} | {column['dtype']} | {column['nulls']} "
            f"({column['null_fraction']:.1%}) | {column['distinct']} | {'yes' if column['unique'] else ''} | {domain} |"
        )
    return "\n".join(lines) + "\n"


def _result(check: str, failures: list[Finding], warnings: list[Finding]) -> str:
    failed = [finding.column or "the dataset" for finding in failures if finding.check == check]
    warned = [finding.column for finding in warnings if finding.check == check]
    if failed:
        return f"**failed**: {', '.join(failed)}"
    if warned:
        return f"warning: {', '.join(warned)}"
    return "passed"
