"""Infers a dataset's schema, resolves the task, checks that a model can be trained on the data, and compares
the data with a reference schema (the champion's) under a per-check policy.

Every problem names its column and its check; the step fails when a data check fails or a schema check whose
policy is ``fail`` finds a difference. Schema checks whose policy is ``warn`` are reported and let the run go on.

Column roles: each column is a feature, the target, or excluded (named in ``exclude_columns``, or an identifier,
see ``identifiers``); excluded columns skip the data checks, and the model never sees them. Among the features, the
leakage check (``leakage``) looks for columns that give the target away. ``column_policy`` says what identifiers
(``exclude``, ``fail``, ``keep``) and suspected leakage (``fail``, ``warn``, ``ignore``) do to the run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from components._common.policies import policy_from_mapping
from components._common.scoring import CLASSIFICATION, REGRESSION, TASKS
from components.validate_data.identifiers import identifier_reason
from components.validate_data.leakage import ALONE, COLLAPSE, NEAR_PERFECT, LeakageCheck, check_leakage
from model_bundle import NUMERIC
from model_bundle import schema as schema_contract
from model_bundle.schema import EXCLUDED, FAIL, FEATURE, IGNORE, WARN, Finding

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

# Column checks, each with its column_policy.
IDENTIFIERS = "identifiers"  # unique integers in sequence, unique text: no magnitude, only memorised
LEAKAGE = "leakage"  # a feature that gives the target away (components.validate_data.leakage)
EXCLUDE, KEEP = "exclude", "keep"
COLUMN_POLICIES = {IDENTIFIERS: (EXCLUDE, FAIL, KEEP), LEAKAGE: (FAIL, WARN, IGNORE)}
EXCLUDED_BY_PARAMETER = "exclude_columns"
LEAKAGE_SEED = 0  # the leakage check's sample and folds: the same data always gets the same verdict


@dataclass(frozen=True)
class ColumnPolicy:
    """What identifier columns and suspected leakage do to the run (the ``column_policy`` parameter)."""

    identifiers: str = EXCLUDE
    leakage: str = FAIL


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
    column_policy: ColumnPolicy = field(default_factory=ColumnPolicy)
    identifiers: list[Finding] = field(default_factory=list)  # identifier columns found, whatever the policy
    leakage: LeakageCheck | None = None  # None when the check did not run (policy ignore, or failed data)
    leaks: list[Finding] = field(default_factory=list)  # suspected leakage, one per column

    @property
    def failures(self) -> list[Finding]:
        return (
            self.issues
            + [finding for finding in self.findings if self.policy[finding.check] == FAIL]
            + self._by_column_policy(FAIL)
        )

    @property
    def warnings(self) -> list[Finding]:
        return (
            self.coerced
            + [finding for finding in self.findings if self.policy[finding.check] == WARN]
            + self._by_column_policy(EXCLUDE)
            + self._by_column_policy(WARN)
        )

    def _by_column_policy(self, action: str) -> list[Finding]:
        found = []
        if self.column_policy.identifiers == action:
            found += self.identifiers
        if self.column_policy.leakage == action:
            found += self.leaks
        return found

    @property
    def excluded(self) -> dict[str, str]:
        """Columns that are not features, name -> why."""
        return schema_contract.excluded_columns(self.schema)

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


def check_column_policy(policy: Mapping[str, str]) -> ColumnPolicy:
    """The ``column_policy`` parameter read; raises ValueError naming an unknown key or action."""
    resolved = policy_from_mapping(ColumnPolicy, policy, "column_policy")
    for key, action in asdict(resolved).items():
        if action not in COLUMN_POLICIES[key]:
            raise ValueError(
                f"parameter column_policy[{key!r}] must be one of {list(COLUMN_POLICIES[key])}, got {action!r}"
            )
    return resolved


def check_exclude_columns(exclude_columns: Sequence[str], columns: Sequence, target: str) -> list[str]:
    """The ``exclude_columns`` parameter, each name once; raises DataValidationError naming a column the data does
    not have (with the columns it has) or the target."""
    if isinstance(exclude_columns, str) or not all(isinstance(name, str) for name in exclude_columns):
        raise DataValidationError(f"parameter exclude_columns must be a list of column names, got {exclude_columns!r}")
    names = [str(column) for column in columns]
    unknown = [name for name in exclude_columns if name not in names]
    if unknown:
        raise DataValidationError(f"parameter exclude_columns names unknown column(s) {unknown}; columns are {names}")
    if target in exclude_columns:
        raise DataValidationError(
            f"parameter exclude_columns names the target column {target!r}; it cannot be excluded"
        )
    return list(dict.fromkeys(exclude_columns))


def validate(
    frame: pd.DataFrame,
    target: str,
    task: str = AUTO,
    reference: Mapping | None = None,
    reference_name: str = "the reference schema",
    policy: Mapping[str, str] | None = None,
    coerce_mixed_types: bool = False,
    exclude_columns: Sequence[str] = (),
    column_policy: Mapping[str, str] | None = None,
) -> Validation:
    """Checks ``frame`` for training on ``target`` and, given a ``reference`` schema, compares it with that.

    ``policy`` maps schema checks to ``fail``, ``warn`` or ``ignore`` (``model_bundle.schema.DEFAULT_POLICY`` for
    the others). With ``coerce_mixed_types``, a text column that is mostly numbers is a warning (prepare_data sets
    its other values missing) instead of a failure. ``exclude_columns`` are no features; ``column_policy``
    (``ColumnPolicy``) says what identifier columns and suspected target leakage do.
    """
    resolved_policy = schema_contract.check_policy(policy or {})
    columns_policy = check_column_policy(column_policy or {})
    # With the target missing (e.g. a wrong delimiter), that is the problem to report, not the exclusions.
    excluded = (
        dict.fromkeys(check_exclude_columns(exclude_columns, frame.columns, target), EXCLUDED_BY_PARAMETER)
        if target in frame.columns
        else {}
    )
    schema, present = schema_contract.infer_with_values(frame, target, excluded)
    validation = Validation(schema=schema, task=task, policy=resolved_policy, column_policy=columns_policy)
    issues = validation.issues
    if frame.empty:
        issues.append(Finding(ROWS, "", "the dataset has no rows"))
    if target not in frame.columns:
        columns = [str(c) for c in frame.columns]
        issues.append(Finding(TARGET, target, f"target column {target!r} not found; columns are {columns}"))
        return validation

    validation.task = resolve_task(frame[target], task)
    issues += _target_problems(frame[target], target, validation.task)
    identifiers: dict[str, str] = {}
    for column in schema["columns"]:
        name = column["name"]
        if column["role"] == EXCLUDED:
            continue  # not a feature: whatever its values, the model never sees them
        is_feature = column["role"] == FEATURE
        categorical = column["type"] != NUMERIC
        mixed = _mixed_type_problem(present[name], name) if categorical and is_feature else None
        reason = identifier_reason(column, present.get(name), mostly_numbers=mixed is not None) if is_feature else None
        if reason:
            identifiers[name] = reason
            validation.identifiers.append(_identifier_finding(column, reason, columns_policy.identifiers))
            if columns_policy.identifiers != KEEP:
                continue  # excluded, or stopping the run: its values feed no model
        if is_feature and len(frame) and column["nulls"] == len(frame):
            issues.append(Finding(VALUES, name, f"column {name!r} has no values (all {len(frame)} are missing)"))
        elif categorical and is_feature:
            if column["max_length"] > MAX_TEXT_LENGTH:
                message = (
                    f"column {name!r} holds a value of {column['max_length']} characters, more than "
                    f"{MAX_TEXT_LENGTH}: a category is a short label (a broken quote can swallow many lines)"
                )
                issues.append(Finding(TEXT_LENGTH, name, message, column["max_length"]))
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
    if columns_policy.identifiers == EXCLUDE:
        excluded.update(identifiers)
    if validation.coerced:
        # The schema describes the data as prepare_data delivers it to training: these columns as numbers.
        frame = coerce_mixed_columns(frame, [finding.column for finding in validation.coerced])
        schema = schema_contract.infer(frame, target, excluded)
    else:
        schema = schema_contract.with_excluded(schema, excluded)
    validation.schema = schema
    # Identifiers failing the run are no features either: it stops until they are excluded.
    unchecked = identifiers if columns_policy.identifiers == FAIL else {}
    features = {c["name"]: c["type"] for c in schema["columns"] if c["role"] == FEATURE and c["name"] not in unchecked}
    if frame.columns.size < 2:
        issues.append(
            Finding(FEATURES, target, f"no feature columns: the dataset has only the target column {target!r}")
        )
    elif not any(column["role"] == FEATURE for column in schema["columns"]):
        message = f"no feature columns: every column but the target {target!r} is excluded ({validation.excluded})"
        issues.append(Finding(FEATURES, target, message))
    if columns_policy.leakage != IGNORE and not issues:
        # Scores need trainable data: with a failed data check they would fail or mislead.
        validation.leakage = check_leakage(frame, target, validation.task, features, seed=LEAKAGE_SEED)
        # The advice must be complete: the columns excluded by parameter, failing identifiers, then the suspects.
        rerun = [name for name, why in excluded.items() if why == EXCLUDED_BY_PARAMETER] + list(unchecked)
        validation.leaks = _leak_findings(validation.leakage, target, rerun)
    if reference is not None:
        validation.reference = reference_name
        findings = schema_contract.compare(reference, schema, frame)
        validation.findings = [finding for finding in findings if resolved_policy[finding.check] != IGNORE]
    return validation


def _identifier_finding(column: Mapping, reason: str, action: str) -> Finding:
    name = column["name"]
    what = f"column {name!r} is an identifier ({reason.removeprefix('identifier: ')}, {column['distinct']} values)"
    if action == EXCLUDE:
        message = f"{what}: excluded from the features (column_policy identifiers=exclude)"
    elif action == FAIL:
        message = (
            f"{what}: a model can only memorise it; rerun with exclude_columns=[{name!r}] or column_policy "
            "identifiers=exclude"
        )
    else:
        message = f"{what}: kept as a feature (column_policy identifiers=keep)"
    return Finding(IDENTIFIERS, name, message, column["distinct"])


def _leak_findings(check: LeakageCheck, target: str, already: list[str]) -> list[Finding]:
    """One finding per suspect, each with the whole ``exclude_columns`` to rerun with: ``already`` and the suspects."""
    rerun = [*already, *(feature.name for feature in check.suspects)]
    return [
        Finding(
            LEAKAGE,
            feature.name,
            f"column {feature.name!r} is suspected target leakage of {target!r}: {check.evidence(feature)}. If its "
            f"value is not known when predicting, exclude it: rerun with exclude_columns={rerun}",
        )
        for feature in check.suspects
    ]


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
    counts and examples, the excluded columns and why, every feature's leakage scores, and the inferred schema."""
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
    identifiers = ", ".join(finding.column for finding in validation.identifiers)
    result = {
        EXCLUDE: f"excluded: {identifiers}",
        FAIL: f"**failed**: {identifiers}",
        KEEP: f"kept: {identifiers}",
    }[validation.column_policy.identifiers]
    lines.append(f"| {IDENTIFIERS} | {validation.column_policy.identifiers} | {result if identifiers else 'passed'} |")
    leakage = validation.leakage
    result = "not run" if leakage is None or leakage.not_run else _result(LEAKAGE, failures, warnings)
    lines.append(f"| {LEAKAGE} | {validation.column_policy.leakage} | {result} |")
    lines.append("")
    for title, group in (("Problems", failures), ("Warnings", warnings)):
        if group:
            lines += [f"## {title}", ""] + [f"- **{finding.check}**: {finding.message}" for finding in group] + [""]
    kept = [finding for finding in validation.identifiers if validation.column_policy.identifiers == KEEP]
    if kept:
        lines += ["## Identifiers kept", ""] + [f"- {finding.message}" for finding in kept] + [""]
    if validation.excluded:
        lines += ["## Excluded columns", "", "Not features: the model neither trains on them nor needs them.", ""]
        lines += [f"- `{name}`: {reason}" for name, reason in validation.excluded.items()] + [""]
    lines += _leakage_section(validation)
    lines += [
        "## Schema",
        "",
        "| column | role | type | kind | dtype | missing | distinct | unique | range / categories |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for column in schema["columns"]:
        if "min" in column:
            domain = f"{column['min']:g} .. {column['max']:g}"
        else:
            shown = column.get("categories", [])[:8]
            domain = ", ".join(shown) + (" ..." if column["distinct"] > len(shown) else "")
        lines.append(
            f"| {column['name']} | {column['role']} | {column['type']} | {column['kind']} | {column['dtype']} | "
            f"{column['nulls']} ({column['null_fraction']:.1%}) | {column['distinct']} | "
            f"{'yes' if column['unique'] else ''} | {domain} |"
        )
    return "\n".join(lines) + "\n"


def _leakage_section(validation: Validation) -> list[str]:
    """Every checked feature's scores: how well it alone predicts the target, and the whole fit without it."""
    check = validation.leakage
    if check is None:
        why = "column_policy leakage=ignore" if validation.column_policy.leakage == IGNORE else "the data failed"
        return ["## Leakage", "", f"Not run ({why}).", ""]
    if check.not_run:
        return ["## Leakage", "", f"Not run: {check.not_run}.", ""]
    task, metric = check.task, check.metric
    lines = [
        "## Leakage",
        "",
        f"On {check.rows} sampled rows, cross-validated {metric}. A feature is suspected when alone it scores at "
        f"least {ALONE[task]}, or when the whole table scores at least {NEAR_PERFECT[task]} and at least "
        f"{COLLAPSE} less without it. Whole table: {check.whole:.3f}.",
        "",
        f"| feature | alone ({metric}) | whole table without it | suspected |",
        "|---|---|---|---|",
    ]
    for feature in check.features:
        without = "" if feature.without is None else f"{feature.without:.3f}"
        suspected = f"**{', '.join(feature.suspected_by)}**" if feature.suspected_by else ""
        lines.append(f"| {feature.name} | {feature.alone:.3f} | {without} | {suspected} |")
    return [*lines, ""]


def _result(check: str, failures: list[Finding], warnings: list[Finding]) -> str:
    failed = [finding.column or "the dataset" for finding in failures if finding.check == check]
    warned = [finding.column for finding in warnings if finding.check == check]
    if failed:
        return f"**failed**: {', '.join(failed)}"
    if warned:
        return f"warning: {', '.join(warned)}"
    return "passed"
