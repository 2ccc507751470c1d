"""Decides whether a model can be trained on a dataset: resolves the task, runs the data checks, assigns each
column its role, and compares the data with a reference schema (the champion's) under the validation policy.

Every check reports ``Finding``s (``model_bundle.schema.Finding``: check, column, message, count, examples), one
word for one thing from the schema comparison to the report. ``Validation`` keeps them by where they come from
(``data_findings``, ``schema_findings``, ``coerced_findings``, ``identifier_findings``, ``leakage_findings``);
the policy sorts them into the two views the step acts on: ``failures`` stop the run, ``warnings`` are reported.

Column roles: each column is a feature, the target, or excluded (named in ``exclude_columns``, or an identifier,
see ``identifiers``); excluded columns skip the data checks, and the model never sees them. Among the features, the
leakage check (``leakage``) looks for columns that give the target away. The policy (``policy.ValidationPolicy``)
says what identifiers and suspected leakage do to the run; the report is rendered by ``report``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from components._common.cleaning import coerce_mixed_columns, is_mostly_numbers, parses_as_number
from components._common.fairness import check_sensitive_columns
from components._common.scoring import CLASSIFICATION, REGRESSION, TASKS
from components.validate_data.identifiers import identifier_finding, identifier_reason
from components.validate_data.leakage import LeakageCheck, check_leakage, leakage_findings
from components.validate_data.policy import EXCLUDE, FAIL, IGNORE, KEEP, WARN, ValidationPolicy
from model_bundle import NUMERIC
from model_bundle import schema as schema_contract
from model_bundle.schema import EXCLUDED, FEATURE, Finding

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

EXCLUDED_BY_PARAMETER = "exclude_columns"
LEAKAGE_SEED = 0  # the leakage check's sample and folds: the same data always gets the same verdict


class DataValidationError(ValueError):
    """The data cannot be trained on; the message lists every failure with its column and check."""


@dataclass
class Validation:
    """What validating a dataset found: its schema, the resolved task, and the findings by the checks they come from."""

    schema: dict
    task: str
    policy: ValidationPolicy = field(default_factory=ValidationPolicy)
    reference_name: str = ""  # what the data was compared with; empty when there was no reference schema
    data_findings: list[Finding] = field(default_factory=list)  # data checks that failed: always stop the run
    schema_findings: list[Finding] = field(default_factory=list)  # differences from the reference schema
    coerced_findings: list[Finding] = field(default_factory=list)  # mixed columns prepare_data will coerce
    identifier_findings: list[Finding] = field(default_factory=list)  # identifier columns, whatever the policy
    leakage: LeakageCheck | None = None  # None when the check did not run (policy ignore, or failed data)
    leakage_findings: list[Finding] = field(default_factory=list)  # suspected leakage, one per column

    @property
    def failures(self) -> list[Finding]:
        """The findings that stop the run."""
        return self.data_findings + self._acting(FAIL)

    @property
    def warnings(self) -> list[Finding]:
        """The findings reported while the run goes on."""
        return self.coerced_findings + self._acting(WARN, EXCLUDE)

    def _acting(self, *actions: str) -> list[Finding]:
        """The schema, identifier and leakage findings whose policy is one of ``actions``, in that order."""
        return [
            finding
            for finding in self.schema_findings + self.identifier_findings + self.leakage_findings
            if self.policy.action(finding.check) in actions
        ]

    @property
    def excluded(self) -> dict[str, str]:
        """Columns that are not features, name -> why."""
        return schema_contract.excluded_columns(self.schema)

    @property
    def passed(self) -> bool:
        return not self.failures

    def raise_for_failures(self) -> None:
        if self.failures:
            lines = [f"[{finding.check}] {finding.message}" for finding in self.failures]
            raise DataValidationError("data validation failed:\n- " + "\n- ".join(lines))


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


def check_sensitive_column_names(sensitive_columns: Sequence[str], columns: Sequence, target: str) -> list[str]:
    """The ``sensitive_columns`` parameter: columns of the data other than the target, excluded ones included (a
    model is audited on attributes it does not use); raises DataValidationError naming unknown names or the target."""
    try:
        return check_sensitive_columns(sensitive_columns, columns, target=target)
    except ValueError as error:
        raise DataValidationError(str(error)) from None


def validate_dataset(
    frame: pd.DataFrame,
    target: str,
    task: str = AUTO,
    reference: Mapping | None = None,
    reference_name: str = "the reference schema",
    validation_policy: ValidationPolicy = ValidationPolicy(),  # noqa: B008 (frozen: one shared default is safe)
    coerce_mixed_types: bool = False,
    exclude_columns: Sequence[str] = (),
    sensitive_columns: Sequence[str] = (),
) -> Validation:
    """Checks ``frame`` for training on ``target`` and, given a ``reference`` schema, compares it with that.

    ``validation_policy`` says what each schema check, identifier columns and suspected leakage do. With
    ``coerce_mixed_types`` (the cleaning policy's key), a text column that is mostly numbers is a warning
    (prepare_data sets its other values missing) instead of a failure. ``exclude_columns`` are no features.
    ``sensitive_columns`` (the fairness audit's groups) must be columns of the data other than the target.
    """
    policy = validation_policy
    # With the target missing (e.g. a wrong delimiter), that is the finding to report, not the exclusions.
    excluded = {}
    if target in frame.columns:
        excluded = dict.fromkeys(check_exclude_columns(exclude_columns, frame.columns, target), EXCLUDED_BY_PARAMETER)
        check_sensitive_column_names(sensitive_columns, frame.columns, target)
    schema, present = schema_contract.infer_with_values(frame, target, excluded)
    validation = Validation(schema=schema, task=task, policy=policy)
    data_findings = validation.data_findings
    if frame.empty:
        data_findings.append(Finding(ROWS, "", "the dataset has no rows"))
    if target not in frame.columns:
        columns = [str(c) for c in frame.columns]
        data_findings.append(Finding(TARGET, target, f"target column {target!r} not found; columns are {columns}"))
        return validation

    validation.task = resolve_task(frame[target], task)
    data_findings += _target_findings(frame[target], target, validation.task)
    identifiers: dict[str, str] = {}
    for column in schema["columns"]:
        name = column["name"]
        if column["role"] == EXCLUDED:
            continue  # not a feature: whatever its values, the model never sees them
        is_feature = column["role"] == FEATURE
        categorical = column["type"] != NUMERIC
        mixed = _mixed_type_finding(present[name], name) if categorical and is_feature else None
        reason = identifier_reason(column, present.get(name), mostly_numbers=mixed is not None) if is_feature else None
        if reason:
            identifiers[name] = reason
            validation.identifier_findings.append(identifier_finding(column, reason, policy.identifiers))
            if policy.identifiers != KEEP:
                continue  # excluded, or stopping the run: its values feed no model
        if is_feature and len(frame) and column["nulls"] == len(frame):
            data_findings.append(Finding(VALUES, name, f"column {name!r} has no values (all {len(frame)} are missing)"))
        elif categorical and is_feature:
            if column["max_length"] > MAX_TEXT_LENGTH:
                message = (
                    f"column {name!r} holds a value of {column['max_length']} characters, more than "
                    f"{MAX_TEXT_LENGTH}: a category is a short label (a broken quote can swallow many lines)"
                )
                data_findings.append(Finding(TEXT_LENGTH, name, message, column["max_length"]))
            if mixed and coerce_mixed_types:
                message = f"{mixed.message}; prepare_data sets them missing (cleaning_policy coerce_mixed_types)"
                validation.coerced_findings.append(Finding(MIXED_TYPES, name, message, mixed.count, mixed.examples))
            elif mixed:
                data_findings.append(mixed)
        elif math.isinf(column.get("min", 0.0)) or math.isinf(column.get("max", 0.0)):
            # The schema's range shows it at no cost; scikit-learn would only fail later, inside training.
            infinite = int(np.isinf(frame[name].to_numpy(dtype="float64", na_value=np.nan)).sum())
            message = f"column {name!r} has {infinite} infinite value(s); leave a value empty when it is unknown"
            data_findings.append(Finding(INFINITE, name, message, infinite))
    if policy.identifiers == EXCLUDE:
        excluded.update(identifiers)
    if validation.coerced_findings:
        # The schema describes the data as prepare_data delivers it to training: these columns as numbers.
        frame = coerce_mixed_columns(frame, [finding.column for finding in validation.coerced_findings])
        schema = schema_contract.infer(frame, target, excluded)
    else:
        schema = schema_contract.with_excluded(schema, excluded)
    validation.schema = schema
    # Identifiers failing the run are no features either: it stops until they are excluded.
    unchecked = identifiers if policy.identifiers == FAIL else {}
    features = {c["name"]: c["type"] for c in schema["columns"] if c["role"] == FEATURE and c["name"] not in unchecked}
    if frame.columns.size < 2:
        data_findings.append(
            Finding(FEATURES, target, f"no feature columns: the dataset has only the target column {target!r}")
        )
    elif not any(column["role"] == FEATURE for column in schema["columns"]):
        message = f"no feature columns: every column but the target {target!r} is excluded ({validation.excluded})"
        data_findings.append(Finding(FEATURES, target, message))
    if policy.leakage != IGNORE and not data_findings:
        # Scores need trainable data: with a failed data check they would fail or mislead.
        validation.leakage = check_leakage(frame, target, validation.task, features, seed=LEAKAGE_SEED)
        # The advice must be complete: the columns excluded by parameter, failing identifiers, then the suspects.
        rerun = [name for name, why in excluded.items() if why == EXCLUDED_BY_PARAMETER] + list(unchecked)
        validation.leakage_findings = leakage_findings(validation.leakage, target, rerun)
    if reference is not None:
        validation.reference_name = reference_name
        findings = schema_contract.compare(reference, schema, frame)
        validation.schema_findings = [finding for finding in findings if policy.action(finding.check) != IGNORE]
    return validation


def _target_findings(values: pd.Series, target: str, task: str) -> list[Finding]:
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


def _mixed_type_finding(present: pd.Series, name: str) -> Finding | None:
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
