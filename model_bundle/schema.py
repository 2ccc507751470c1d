"""The data contract: what a model's training data looked like, checked again on new data and on requests. Owns
the schema's format (``schema.json``), its inference, and both ways of holding data to it.

``validate_data`` infers a schema from the data a model is trained on; it travels in the model directory
(``schema.json``), is registered with the model, and is the reference later data is compared with
(``compare``: whole datasets, one ``Finding`` per difference, grouped by check) and requests are held to
(``check_request``, in the model server, which raises ``SchemaViolation``: a request refused, not a finding to
weigh under a policy). What a finding does to a run is the validation policy's decision, in validate_data.

Per column the schema records: the feature type (numeric or categorical, as the model treats it), the kind of
values (integer, float, boolean, string, datetime, mixed or empty), missing values, distinct values and whether
every value is unique, the range of numbers and, for a categorical column with at most ``MAX_DOMAIN`` distinct
values, its closed domain of categories (as the strings the model sees).

Each column also has a ``role``: ``feature`` (the model's input), ``target``, or ``excluded`` (in the data but not a
feature, e.g. an identifier or a column named in ``exclude_columns``), the latter with ``excluded_because``, a short
reason. The model trains on the feature columns only; comparisons ignore excluded columns (see ``compare``).

Why one module of about 390 lines: inference writes, and both comparisons read, the same per-column fields
(``kind``, ``domain``, ``min``/``max``, ``nullable``, ``unique``, ``role``); kept together, each field is defined once
and a column is judged by the same rule in a batch and in a request, in both runtimes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from model_bundle.features import NUMERIC, FeatureError, infer_feature_types

SCHEMA_FILE = "schema.json"
SCHEMA_FORMAT = 1
# A categorical column with at most this many distinct values has a closed domain: other values are findings.
MAX_DOMAIN = 50
MAX_EXAMPLES = 5
DISTINCT_SAMPLE = 10_000  # values looked at to choose how to count distinct values

# Checks, each with its own key in the validation policy. What each one compares with the reference schema:
COLUMNS = "columns"  # columns missing from the data, or new in it
TYPES = "types"  # a column's feature type or kind of values changed (integer <-> float is not a change)
NULLS = "nulls"  # missing values where the reference had none, or a missing-value rate up by NULL_RATE_TOLERANCE
DOMAIN = "domain"  # categories outside a closed domain
RANGE = "range"  # numbers outside the reference's [min, max]
UNIQUENESS = "uniqueness"  # repeated values in a column whose every value was unique (an identifier)
CHECKS = (COLUMNS, TYPES, NULLS, DOMAIN, RANGE, UNIQUENESS)

NULL_RATE_TOLERANCE = 0.05
# What the model server holds each request to unless told otherwise.
DEFAULT_REQUEST_CHECKS = (DOMAIN,)
REQUEST_CHECKS = (NULLS, DOMAIN, RANGE)

# Column roles. Excluded columns stay in the data (and in the schema, described like the others) but are no feature.
FEATURE, TARGET, EXCLUDED = "feature", "target", "excluded"

# Kinds of values that may replace each other without a "types" finding.
_COMPATIBLE_KINDS = ({"integer", "float"},)


class SchemaViolation(FeatureError):
    """A request breaks the model's data contract; the message names the column and the check."""


@dataclass(frozen=True)
class Finding:
    """What a check found about a column: one difference between data and its reference schema here; validate_data
    reports its own checks' findings the same way."""

    check: str
    column: str
    message: str
    count: int = 0
    examples: tuple = ()


def infer(frame: pd.DataFrame, target: str | None = None, excluded: Mapping[str, str] | None = None) -> dict:
    """The schema of ``frame``: rows, target and one entry per column (see the module docstring).

    ``excluded``: columns that are no features, each with the reason recorded as its ``excluded_because``.
    """
    return infer_with_values(frame, target, excluded)[0]


def infer_with_values(
    frame: pd.DataFrame, target: str | None = None, excluded: Mapping[str, str] | None = None
) -> tuple[dict, dict[str, pd.Series]]:
    """The schema, and the present (non-missing) values of each categorical column, which callers check further."""
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
            "nullable": nulls > 0,
            "nulls": nulls,
            "null_fraction": nulls / len(values) if len(values) else 0.0,
        }
        if column["type"] == NUMERIC:  # nunique, min and max skip missing values themselves
            column["kind"] = "integer" if pd.api.types.is_integer_dtype(values.dtype) else "float"
            column["distinct"] = distinct_count(values, missing)
            if nulls < len(values):
                column["min"] = float(values.min())
                column["max"] = float(values.max())
        else:
            non_null = present[str(name)] = values[~missing]
            column["kind"] = kind_of(non_null)
            counts = as_text(non_null, column["kind"]).value_counts()
            # Only when every value is a string is a value its own text, so distinct texts are distinct values.
            column["distinct"] = len(counts) if column["kind"] == "string" else int(non_null.nunique())
            column["categories"] = counts.index[:MAX_DOMAIN].tolist()
            column["domain"] = sorted(counts.index.tolist()) if 0 < len(counts) <= MAX_DOMAIN else None
            # Measured over the distinct values only: cheap, and a label's length says whether it is a label.
            column["max_length"] = int(counts.index.str.len().max()) if len(counts) else 0
        present_count = len(values) - nulls
        # Only whole numbers and text can be identifiers; distinct measurements are no contract.
        column["unique"] = (
            name != target
            and column["kind"] in ("integer", "string")
            and present_count > 1
            and column["distinct"] == present_count
        )
        column["role"] = TARGET if name == target else FEATURE
        columns.append(column)
    schema = {"format_version": SCHEMA_FORMAT, "rows": len(frame), "target": target, "columns": columns}
    return with_excluded(schema, excluded or {}), present


def with_excluded(schema: Mapping, reasons: Mapping[str, str]) -> dict:
    """``schema`` with the columns of ``reasons`` (name -> why) excluded from the features.

    Raises ValueError naming a column the schema does not have, or the target.
    """
    names = [column["name"] for column in schema["columns"]]
    unknown = [name for name in reasons if name not in names]
    if unknown:
        raise ValueError(f"cannot exclude column(s) {unknown}: not in the data; columns are {names}")
    if schema.get("target") in reasons:
        raise ValueError(f"cannot exclude the target column {schema['target']!r}")
    columns = []
    for column in schema["columns"]:
        column = {key: value for key, value in column.items() if key != "excluded_because"}
        if column["name"] in reasons:
            column.update(role=EXCLUDED, excluded_because=str(reasons[column["name"]]))
        elif column.get("role") == EXCLUDED:
            column["role"] = FEATURE
        columns.append(column)
    return {**schema, "columns": columns}


def excluded_columns(schema: Mapping | None) -> dict[str, str]:
    """The excluded columns of ``schema``, name -> why, in column order; {} for a schema without roles (older)."""
    if not schema:
        return {}
    return {
        column["name"]: column.get("excluded_because", "")
        for column in schema["columns"]
        if column.get("role") == EXCLUDED
    }


def kind_of(present: pd.Series) -> str:
    """The kind of the present values of a non-numeric column."""
    if pd.api.types.is_bool_dtype(present.dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(present.dtype):
        return "datetime"
    return kind_of_label(pd.api.types.infer_dtype(present, skipna=False))


# What kind of values each label of pandas' ``infer_dtype`` names; any other label is "mixed".
_KINDS = {
    "string": "string",
    "empty": "empty",
    "boolean": "boolean",
    "datetime": "datetime",
    "datetime64": "datetime",
    "date": "datetime",
    "integer": "integer",
    "floating": "float",
    "mixed-integer-float": "float",
}


def kind_of_label(label: str) -> str:
    """The kind of values an ``infer_dtype`` label names (for values counted batch by batch)."""
    return _KINDS.get(label, "mixed")


def distinct_count(values: pd.Series, missing: pd.Series) -> int:
    """``values.nunique()``, by the faster way for the column: hashing when values repeat a lot, sorting (numpy) when
    most are distinct, as a small sample tells; hashing millions of distinct floats is slower than sorting them."""
    if not (isinstance(values.dtype, np.dtype) and values.dtype.kind in "iuf"):
        return int(values.nunique())
    present = values.to_numpy()[~missing.to_numpy()]
    sample = present[:: max(1, len(present) // DISTINCT_SAMPLE)]
    if len(pd.unique(sample)) > len(sample) // 2:
        return len(np.unique(present))
    return len(pd.unique(present))


def as_text(present: pd.Series, kind: str) -> pd.Series:
    """Categorical values as the model sees them: their strings (a Python string stays as it is)."""
    return present if kind in ("string", "empty") else present.astype(str)


def column_map(schema: Mapping) -> dict[str, dict]:
    return {column["name"]: column for column in schema["columns"]}


def compare(reference: Mapping, current: Mapping, frame: pd.DataFrame) -> list[Finding]:
    """Every difference of ``frame`` (whose schema is ``current``) from the ``reference`` schema, column by column.

    Counts and examples come from ``frame``: how many values are outside a domain or a range, and which. A column
    excluded in either schema is no feature of either model, so it is never missing, new or changed; only the
    uniqueness check still applies to it when both have it, since that check is about identifiers, which are
    excluded: a unique identifier that now repeats values tells of duplicated or wrongly joined records.
    """
    return compare_measured(reference, current, FrameMeasure(frame))


class FrameMeasure:
    """What ``compare_measured`` counts in the data, counted in a frame. validate_data measures the same from
    statistics gathered batch by batch (``components.validate_data.column_stats.StatsMeasure``)."""

    def __init__(self, frame: pd.DataFrame):
        self._frame = frame

    def _present(self, name: str) -> pd.Series:
        values = self._frame[name]
        return values[values.notna()]

    def present(self, name: str) -> int:
        """Present values of the column."""
        return len(self._present(name))

    def outside_range(self, name: str, low: float, high: float) -> tuple[int, pd.Series]:
        """How many values are outside [low, high], and the values ``_extremes`` picks examples from."""
        present = self._present(name)
        outside = _outside_range(present, low, high)
        return int(outside.sum()), present[outside]

    def outside_domain(self, name: str, domain: Iterable[str], kind: str) -> tuple[int, int, tuple]:
        """How many values (as text of ``kind``) are outside ``domain``, in how many categories, the most frequent."""
        unseen = _outside_domain(as_text(self._present(name), kind), domain)
        return int(unseen.sum()), len(unseen), tuple(unseen.index[:MAX_EXAMPLES].tolist())

    def repeated(self, name: str) -> int:
        """Present values that repeat an earlier one."""
        return int(self._present(name).duplicated().sum())


def compare_measured(reference: Mapping, current: Mapping, measure) -> list[Finding]:
    """``compare``, with the counts and examples in the data taken from ``measure`` (see ``FrameMeasure``)."""
    expected, found = column_map(reference), column_map(current)
    excluded = set(excluded_columns(reference)) | set(excluded_columns(current))
    uniqueness = [
        finding
        for name in excluded
        if name in expected and name in found
        for finding in _uniqueness_findings(name, expected[name], found[name], measure)
    ]
    expected = {name: column for name, column in expected.items() if name not in excluded}
    found = {name: column for name, column in found.items() if name not in excluded}
    findings = [
        Finding(COLUMNS, name, f"column {name!r} of the reference schema is missing")
        for name in expected
        if name not in found
    ]
    findings += [
        Finding(COLUMNS, name, f"column {name!r} is new: the reference schema does not have it")
        for name in found
        if name not in expected
    ]
    for name, was in expected.items():
        now = found.get(name)
        if now is not None:
            findings += _column_findings(name, was, now, measure)
    return findings + uniqueness


def _column_findings(name: str, was: Mapping, now: Mapping, measure) -> list[Finding]:
    findings = []
    if _type_changed(was, now):
        findings.append(
            Finding(
                TYPES,
                name,
                f"column {name!r} was {was['type']} ({was['kind']}) in the reference schema, now {now['type']} "
                f"({now['kind']})",
            )
        )
        return findings  # ranges and domains of another type say nothing more
    if now["nulls"] and (not was["nullable"] or now["null_fraction"] > was["null_fraction"] + NULL_RATE_TOLERANCE):
        findings.append(
            Finding(
                NULLS,
                name,
                f"column {name!r} has {now['nulls']} missing value(s) ({now['null_fraction']:.1%}); the reference "
                f"had {was['null_fraction']:.1%}",
                count=now["nulls"],
            )
        )
    present = measure.present(name)
    if was["type"] == NUMERIC and "min" in was and present:
        outside, values = measure.outside_range(name, was["min"], was["max"])
        if outside:
            examples = _extremes(values)
            findings.append(
                Finding(
                    RANGE,
                    name,
                    f"column {name!r} has {outside} value(s) outside the reference range "
                    f"[{was['min']:g}, {was['max']:g}], e.g. {list(examples)}",
                    count=outside,
                    examples=examples,
                )
            )
    elif was.get("domain") is not None and present:
        unseen, categories, examples = measure.outside_domain(name, was["domain"], now["kind"])
        if categories:
            findings.append(
                Finding(
                    DOMAIN,
                    name,
                    f"column {name!r} has {unseen} value(s) in {categories} categor(ies) outside the "
                    f"reference domain of {len(was['domain'])}, e.g. {list(examples)}",
                    count=unseen,
                    examples=examples,
                )
            )
    return findings + _uniqueness_findings(name, was, now, measure)


def _uniqueness_findings(name: str, was: Mapping, now: Mapping, measure) -> list[Finding]:
    if not (was["unique"] and not now["unique"]):
        return []
    repeated = measure.repeated(name)
    if not repeated:
        return []
    message = f"column {name!r} was unique in the reference schema but repeats {repeated} value(s)"
    return [Finding(UNIQUENESS, name, message, count=repeated)]


def _type_changed(was: Mapping, now: Mapping) -> bool:
    if was["type"] != now["type"]:
        return True
    kinds = {was["kind"], now["kind"]}
    return len(kinds) > 1 and "empty" not in kinds and kinds not in _COMPATIBLE_KINDS


def _outside_range(present: pd.Series, low: float, high: float) -> np.ndarray:
    numbers = present.to_numpy(dtype="float64")
    return (numbers < low) | (numbers > high)


def _extremes(values: pd.Series) -> tuple:
    """A few of ``values``, the most extreme first (lowest and highest alternate)."""
    ordered = values.sort_values().tolist()
    picked = []
    while ordered and len(picked) < MAX_EXAMPLES:
        picked.append(ordered.pop(0))
        if ordered and len(picked) < MAX_EXAMPLES:
            picked.append(ordered.pop())
    return tuple(picked)


def _outside_domain(texts: pd.Series, domain: Iterable[str]) -> pd.Series:
    """Counts of each value not in ``domain``, most frequent first."""
    counts = texts.value_counts()
    return counts[~counts.index.isin(list(domain))]


def check_request(schema: Mapping | None, features: pd.DataFrame, checks: Iterable[str]) -> None:
    """Holds a request's coerced feature columns to ``schema``; raises SchemaViolation naming the column.

    ``checks``: which of ``REQUEST_CHECKS`` apply (nulls: missing values in a column that had none; domain:
    categories outside a closed domain; range: numbers outside the training range). Feature columns and their
    types are already enforced by the coercion; without a schema nothing more is checked. Requests are small, so
    this works on Python sets and numpy arrays rather than pandas' per-call machinery.
    """
    if schema is None:
        return
    checks = set(checks)
    for name, column in column_map(schema).items():
        if name not in features.columns or column.get("role") == EXCLUDED:
            continue
        values = features[name].to_numpy()
        missing = pd.isna(values)
        if NULLS in checks and not column["nullable"] and missing.any():
            raise SchemaViolation(
                f"column {name!r} has {int(missing.sum())} missing value(s), but it had none in training (check "
                f"{NULLS!r})"
            )
        present = values[~missing] if missing.any() else values
        if DOMAIN in checks and column.get("domain") is not None and len(present):
            unseen = set(present.tolist()).difference(column["domain"])
            if unseen:
                raise SchemaViolation(
                    f"column {name!r} has value(s) {sorted(unseen)[:MAX_EXAMPLES]} outside its domain "
                    f"{column['domain']} (check {DOMAIN!r})"
                )
        if RANGE in checks and column["type"] == NUMERIC and "min" in column and len(present):
            outside = _outside_range(pd.Series(present), column["min"], column["max"])
            if outside.any():
                raise SchemaViolation(
                    f"column {name!r} has value(s) {list(_extremes(pd.Series(present[outside])))} outside its "
                    f"training range [{column['min']:g}, {column['max']:g}] (check {RANGE!r})"
                )


def parse_request_checks(text: str) -> tuple[str, ...]:
    """The model server's ``schema_checks`` parameter: comma-separated checks, or ``none``."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if names == ("none",):
        return ()
    unknown = sorted(set(names) - set(REQUEST_CHECKS))
    if unknown:
        raise ValueError(
            f"parameter schema_checks names unknown check(s) {unknown}; use a comma-separated subset of "
            f"{list(REQUEST_CHECKS)} or 'none'"
        )
    return names
