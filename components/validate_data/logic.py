"""Infers a dataset's schema, resolves the task and checks that a model can be trained on the data.

Every problem is reported with the column it concerns; the step fails when any is found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
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
    return _infer_schema(frame)[0]


def _infer_schema(frame: pd.DataFrame) -> tuple[dict, dict[str, pd.Series]]:
    """The schema, and the present values of each categorical column (for the mixed-type check)."""
    types = {feature["name"]: feature["type"] for feature in infer_feature_types(frame)}
    columns = []
    present: dict[str, pd.Series] = {}
    for name in frame.columns:
        values = frame[name]
        missing = values.isna()
        nulls = int(missing.sum())
        column = {
            "name": str(name),
            "type": types[str(name)],
            "dtype": str(values.dtype),
            "nulls": nulls,
            "null_fraction": nulls / len(values) if len(values) else 0.0,
        }
        if column["type"] == NUMERIC:  # nunique, min and max skip missing values themselves
            column["distinct"] = _distinct_numbers(values, missing)
            if nulls < len(values):
                column["min"] = float(values.min())
                column["max"] = float(values.max())
        else:
            non_null = present[str(name)] = values[~missing]
            counts = _as_text(non_null).value_counts()
            # Only when every value is a string is a value its own text, so distinct texts are distinct values.
            column["distinct"] = len(counts) if _all_strings(non_null) else int(non_null.nunique())
            column["categories"] = counts.index[:MAX_LISTED_CATEGORIES].tolist()
        columns.append(column)
    return {"rows": len(frame), "columns": columns}, present


def _distinct_numbers(values: pd.Series, missing: pd.Series) -> int:
    """``values.nunique()``; for a numpy column by sorting, faster than hashing millions of distinct floats."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iuf":
        return len(np.unique(values.to_numpy()[~missing.to_numpy()]))
    return int(values.nunique())


def _all_strings(values: pd.Series) -> bool:
    """Every value (none missing) is a Python string: then ``astype(str)`` changes nothing."""
    return values.dtype == object and pd.api.types.infer_dtype(values, skipna=False) in ("string", "empty")


def _as_text(values: pd.Series) -> pd.Series:
    return values if _all_strings(values) else values.astype(str)


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
    schema, present = _infer_schema(frame)
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
            problems += _mixed_type_problems(present[name], name)
        elif math.isinf(column.get("min", 0.0)) or math.isinf(column.get("max", 0.0)):
            # The schema's range shows it at no cost; scikit-learn would only fail later, inside training.
            infinite = int(np.isinf(frame[name].to_numpy(dtype="float64", na_value=np.nan)).sum())
            problems.append(f"column {name!r} has {infinite} infinite value(s); leave a value empty when it is unknown")
    return Validation(schema=schema, task=resolved, problems=problems)


def _target_problems(values: pd.Series, target: str, task: str) -> list[str]:
    labelled = values.dropna()
    if labelled.empty:
        return [f"target column {target!r} has no values"]
    distinct = _distinct_numbers(labelled, labelled.isna())
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


def _mixed_type_problems(present: pd.Series, name: str) -> list[str]:
    """A text column in which most values are numbers is a numeric column with typos, not a category.

    ``present``: the column's values without the missing ones.
    """
    if present.empty or pd.api.types.is_bool_dtype(present.dtype):
        return []
    is_number = _is_number(present)
    numeric_share = float(is_number.mean())
    if 0.5 <= numeric_share < 1.0:
        bad = present[~is_number]
        return [
            f"column {name!r} mixes numbers and text: {len(bad)} of {len(present)} values are not numbers, "
            f"e.g. {bad.astype(str).unique()[:3].tolist()}"
        ]
    return []


def _is_number(present: pd.Series) -> np.ndarray:
    """Per value (none missing): its text, stripped, parses as a number.

    A column of strings holds few distinct values, each parsed once; anything else is parsed value by value.
    """
    if _all_strings(present):
        codes, uniques = pd.factorize(present)
        parsed = pd.to_numeric(pd.Series(uniques, dtype=object).str.strip(), errors="coerce")
        return parsed.notna().to_numpy()[codes]
    return pd.to_numeric(present.astype(str).str.strip(), errors="coerce").notna().to_numpy()


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
