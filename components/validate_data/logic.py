"""Infers a dataset's schema, resolves the task and checks that a model can be trained on the data.

Every problem is reported with the column it concerns; the step fails when any is found.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from components._common.scoring import CLASSIFICATION, REGRESSION, TASKS
from model_bundle import NUMERIC, infer_feature_types

AUTO = "auto"
# An integer target with at most this many distinct values is taken for class labels when task=auto.
MAX_AUTO_CLASSES = 20
MAX_CLASSES = 100
MAX_LISTED_CATEGORIES = 50


class DataValidationError(ValueError):
    """The data cannot be trained on; the message lists every problem with its column."""


@dataclass
class Validation:
    schema: dict
    task: str
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> None:
        if self.problems:
            raise DataValidationError("data validation failed:\n- " + "\n- ".join(self.problems))


def infer_schema(frame: pd.DataFrame) -> dict:
    """Per column: feature type, pandas dtype, null count and fraction, and range or category domain."""
    types = {feature["name"]: feature["type"] for feature in infer_feature_types(frame)}
    columns = []
    for name in frame.columns:
        values = frame[name]
        non_null = values.dropna()
        column = {
            "name": str(name),
            "type": types[str(name)],
            "dtype": str(values.dtype),
            "nulls": int(values.isna().sum()),
            "null_fraction": float(values.isna().mean()) if len(values) else 0.0,
            "distinct": int(non_null.nunique()),
        }
        if column["type"] == NUMERIC and len(non_null):
            column["min"] = float(non_null.min())
            column["max"] = float(non_null.max())
        elif column["type"] != NUMERIC:
            counts = non_null.astype(str).value_counts()
            column["categories"] = counts.index[:MAX_LISTED_CATEGORIES].tolist()
        columns.append(column)
    return {"rows": len(frame), "columns": columns}


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


def validate(frame: pd.DataFrame, target: str, task: str = AUTO) -> Validation:
    """Checks ``frame`` for training on ``target``; returns the schema, the resolved task and any problems."""
    schema = infer_schema(frame)
    problems: list[str] = []
    if frame.empty:
        problems.append("the dataset has no rows")
    if target not in frame.columns:
        problems.append(f"target column {target!r} not found; columns are {[str(c) for c in frame.columns]}")
        return Validation(schema=schema, task=task, problems=problems)
    if frame.columns.size < 2:
        problems.append(f"no feature columns: the dataset has only the target column {target!r}")

    resolved = resolve_task(frame[target], task)
    problems += _target_problems(frame[target], target, resolved)
    for column in schema["columns"]:
        name = column["name"]
        if len(frame) and column["nulls"] == len(frame) and name != target:
            problems.append(f"column {name!r} has no values (all {len(frame)} are missing)")
        elif column["type"] != NUMERIC and name != target:
            problems += _mixed_type_problems(frame[name], name)
    return Validation(schema=schema, task=resolved, problems=problems)


def _target_problems(values: pd.Series, target: str, task: str) -> list[str]:
    labelled = values.dropna()
    if labelled.empty:
        return [f"target column {target!r} has no values"]
    distinct = labelled.nunique()
    if distinct == 1:
        return [
            f"target column {target!r} has a single value ({labelled.iloc[0]!r}) in {len(labelled)} rows: "
            "there is nothing to learn"
        ]
    is_numeric = pd.api.types.is_numeric_dtype(labelled.dtype) and not pd.api.types.is_bool_dtype(labelled.dtype)
    if task == REGRESSION and not is_numeric:
        examples = labelled.astype(str).unique()[:3].tolist()
        return [f"task=regression needs a numeric target, but column {target!r} holds text such as {examples}"]
    if task == CLASSIFICATION and distinct > MAX_CLASSES:
        return [
            f"target column {target!r} has {distinct} distinct values, more than {MAX_CLASSES} classes; "
            "use task=regression for a continuous target"
        ]
    return []


def _mixed_type_problems(values: pd.Series, name: str) -> list[str]:
    """A text column in which most values are numbers is a numeric column with typos, not a category."""
    present = values.dropna()
    if present.empty or pd.api.types.is_bool_dtype(present.dtype):
        return []
    as_numbers = pd.to_numeric(present.astype(str).str.strip(), errors="coerce")
    numeric_share = float(as_numbers.notna().mean())
    if 0.5 <= numeric_share < 1.0:
        bad = present[as_numbers.isna()]
        return [
            f"column {name!r} mixes numbers and text: {len(bad)} of {len(present)} values are not numbers, "
            f"e.g. {bad.astype(str).unique()[:3].tolist()}"
        ]
    return []


def render_report(validation: Validation, target: str) -> str:
    """A Markdown report for the KFP UI: the verdict, each problem, and the inferred schema."""
    schema = validation.schema
    verdict = "passed" if validation.passed else f"failed with {len(validation.problems)} problem(s)"
    lines = [
        f"# Data validation {verdict}",
        "",
        f"{schema['rows']} rows, {len(schema['columns'])} columns; target `{target}`, task `{validation.task}`.",
        "",
    ]
    if validation.problems:
        lines += ["## Problems", ""] + [f"- {problem}" for problem in validation.problems] + [""]
    lines += [
        "## Schema",
        "",
        "| column | type | dtype | missing | distinct | range / categories |",
        "|---|---|---|---|---|---|",
    ]
    for column in schema["columns"]:
        if "min" in column:
            domain = f"{column['min']:g} .. {column['max']:g}"
        else:
            shown = column.get("categories", [])[:8]
            domain = ", ".join(shown) + (" ..." if column["distinct"] > len(shown) else "")
        lines.append(
            f"| {column['name']} | {column['type']} | {column['dtype']} | {column['nulls']} "
            f"({column['null_fraction']:.1%}) | {column['distinct']} | {domain} |"
        )
    return "\n".join(lines) + "\n"
