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

Both entry points read the data in batches: ``validate_file`` a Parquet dataset in record batches (what the step
runs: memory bounded by the batch size, not the rows), ``validate_dataset`` a frame in slices. One pass gathers
every column's statistics (``column_stats``: exact counts, ranges and distinct values, with the examples each check
reports) and the leakage check's sample rows (the rows ``check_leakage`` would sample, picked by their rank among
the labelled rows); the checks then read the statistics, never the rows. Columns coerced by ``coerce_mixed_types``
are read a second time, as numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from components._common.cleaning import coerce_mixed_columns
from components._common.counting import dictionary_columns
from components._common.datasets import (
    BATCH_ROWS,
    DictionaryRows,
    check_batch_rows,
    dataset_layout,
    read_ahead,
    read_batches,
)
from components._common.fairness import check_sensitive_columns
from components._common.scoring import CLASSIFICATION, REGRESSION, TASKS
from components.validate_data.column_stats import (
    CategoricalStats,
    ColumnStats,
    Spill,
    StatsMeasure,
    arrow_string_columns,
    dataset_schema,
    gather,
    series_stats,
)
from components.validate_data.identifiers import identifier_finding, identifier_reason
from components.validate_data.leakage import LeakageCheck, check_leakage_sample, leakage_findings, sample_ranks
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
    return _resolve_task(series_stats(target, target=True), task)


def _resolve_task(target: ColumnStats, task: str) -> str:
    if task != AUTO:
        if task not in TASKS:
            raise DataValidationError(f"parameter task must be one of {(AUTO, *TASKS)}, got {task!r}")
        return task
    if not target.numeric:
        return CLASSIFICATION
    return CLASSIFICATION if target.integral and target.distinct <= MAX_AUTO_CLASSES else REGRESSION


def check_exclude_columns(exclude_columns: Sequence[str], columns: Sequence, target: str) -> list[str]:
    """The ``exclude_columns`` parameter, each name once; raises DataValidationError naming a column the data does
    not have (with the columns it has) or the target."""
    if isinstance(exclude_columns, str) or not all(isinstance(name, str) for name in exclude_columns):
        raise DataValidationError(f"parameter exclude_columns must be a list of column names, got {exclude_columns!r}")
    names = [str(column) for column in columns]
    unknown = [name for name in exclude_columns if name not in names]
    if unknown:
        raise DataValidationError(
            f"parameter exclude_columns names unknown column(s) {unknown}; columns are {names}"
            + near_names(unknown, names, "exclude_columns")
        )
    if target in exclude_columns:
        raise DataValidationError(
            f"parameter exclude_columns names the target column {target!r}; it cannot be excluded"
        )
    return list(dict.fromkeys(exclude_columns))


def near_names(unknown: Sequence[str], names: Sequence[str], parameter: str) -> str:
    """What to add to a message naming ``unknown`` columns: the data's columns equal to one of them but for case
    or surrounding spaces (a header written ``price, area`` has a column ``' area'``), which the column lists show
    without drawing the eye to them; empty when there is none."""
    pairs = [
        (name, column)
        for name in unknown
        for column in names
        if column != name and column.strip().casefold() == name.strip().casefold()
    ]
    if not pairs:
        return ""
    listed = ", ".join(f"{column!r} for {name!r}" for name, column in pairs)
    return (
        f"; the data has {listed}, differing only by case or surrounding spaces: write the data's name exactly in "
        f"{parameter}, or rename the column in the file"
    )


def check_sensitive_column_names(sensitive_columns: Sequence[str], columns: Sequence, target: str) -> list[str]:
    """The ``sensitive_columns`` parameter: columns of the data other than the target, excluded ones included (a
    model is audited on attributes it does not use); raises DataValidationError naming unknown names or the target."""
    try:
        return check_sensitive_columns(sensitive_columns, columns, target=target)
    except ValueError as error:
        names = [str(column) for column in columns]
        named = (
            [name for name in sensitive_columns if isinstance(name, str)] if isinstance(sensitive_columns, list) else []
        )
        hint = near_names([name for name in named if name not in names], names, "sensitive_columns")
        raise DataValidationError(str(error) + hint) from None


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
    batch_rows: int = BATCH_ROWS,
) -> Validation:
    """Checks ``frame`` for training on ``target`` and, given a ``reference`` schema, compares it with that.

    ``validation_policy`` says what each schema check, identifier columns and suspected leakage do. With
    ``coerce_mixed_types`` (the cleaning policy's key), a text column that is mostly numbers is a warning
    (prepare_data sets its other values missing) instead of a failure. ``exclude_columns`` are no features.
    ``sensitive_columns`` (the fairness audit's groups) must be columns of the data other than the target.

    The frame is read in slices of ``batch_rows``, as ``validate_file`` reads a file: one way of validating.
    """
    return _validate(
        _FrameSource(frame, batch_rows),
        target,
        task,
        reference,
        reference_name,
        validation_policy,
        coerce_mixed_types,
        exclude_columns,
        sensitive_columns,
    )


def validate_file(
    path: str | Path,
    target: str,
    task: str = AUTO,
    reference: Mapping | None = None,
    reference_name: str = "the reference schema",
    validation_policy: ValidationPolicy = ValidationPolicy(),  # noqa: B008 (frozen: one shared default is safe)
    coerce_mixed_types: bool = False,
    exclude_columns: Sequence[str] = (),
    sensitive_columns: Sequence[str] = (),
    batch_rows: int = BATCH_ROWS,
) -> Validation:
    """``validate_dataset(read_dataset(path), ...)``, the same Validation, reading the Parquet dataset at ``path``
    in record batches of ``batch_rows``: memory bounded by the batch size and the distinct values kept per column
    (see ``column_stats``), not the rows. A column coerced by ``coerce_mixed_types`` is read a second time."""
    return _validate(
        _FileSource(path, batch_rows),
        target,
        task,
        reference,
        reference_name,
        validation_policy,
        coerce_mixed_types,
        exclude_columns,
        sensitive_columns,
    )


class _FrameSource:
    """A frame read in slices: what ``_validate`` needs of a dataset (dtypes, rows, missing values, batches)."""

    def __init__(self, frame: pd.DataFrame, batch_rows: int):
        check_batch_rows(batch_rows)
        self._frame, self._batch_rows = frame, batch_rows
        self.dtypes = dict(zip(frame.columns, frame.dtypes, strict=True))
        self.rows = len(frame)
        self.nulls = {name: int(frame[name].isna().sum()) for name in frame.columns}

    def batches(self, columns: Sequence | None = None) -> Iterator[pd.DataFrame]:
        frame = self._frame if columns is None else self._frame[list(columns)]
        for start in range(0, self.rows, self._batch_rows):
            yield frame.iloc[start : start + self._batch_rows]

    frames = batches


class _FileSource:
    """A Parquet dataset read in record batches (``read_batches``); its layout from the footer."""

    def __init__(self, path: str | Path, batch_rows: int):
        check_batch_rows(batch_rows)
        self._path, self._batch_rows = path, batch_rows
        self._layout = dataset_layout(path)
        self.dtypes = dict(self._layout.dtypes)
        self.rows = self._layout.rows
        self.nulls = dict(self._layout.nulls)

    def batches(self, columns: Sequence | None = None) -> Iterator[tuple[pd.DataFrame, dict[str, pa.ChunkedArray]]]:
        """Batches as pandas frames (``read_batches``), but text columns as Arrow arrays, read alongside."""
        names = list(self.dtypes) if columns is None else list(columns)
        texts = [name for name in arrow_string_columns(self._path, self.dtypes) if name in names]
        others = [name for name in names if name not in texts]
        # Text as Parquet stores it, dictionary-encoded: read without building each row's string, counted by index.
        # Such a reader ends its batches where the dictionaries change, so its rows are cut to the frames' lengths.
        # Not a column of (mostly) distinct texts: its dictionary would grow with the rows (``dictionary_columns``).
        encoded = dictionary_columns(self._path, texts, self._batch_rows)
        if not others:
            arrow = pq.ParquetFile(self._path, read_dictionary=encoded).iter_batches(self._batch_rows, columns=texts)
            for batch in read_ahead(arrow):  # decoded by a thread while the statistics take the batch before
                yield pd.DataFrame(index=pd.RangeIndex(batch.num_rows)), dict(zip(texts, batch.columns, strict=True))
            return
        alongside = DictionaryRows(self._path, texts, encoded, self._batch_rows) if texts else None
        for frame in read_batches(self._path, others, self._batch_rows, self._layout):
            rows = alongside.next(len(frame)) if alongside else None
            yield frame, {name: rows.column(name) for name in texts}

    def frames(self, columns: Sequence | None = None) -> Iterator[pd.DataFrame]:
        """Batches as pandas frames, every column."""
        return read_batches(self._path, columns, self._batch_rows, self._layout)


def _validate(
    source: _FrameSource | _FileSource,
    target: str,
    task: str,
    reference: Mapping | None,
    reference_name: str,
    policy: ValidationPolicy,
    coerce_mixed_types: bool,
    exclude_columns: Sequence[str],
    sensitive_columns: Sequence[str],
) -> Validation:
    """What ``validate_dataset`` and ``validate_file`` share: one pass gathering every column's statistics (and
    the leakage check's sample rows), the checks on those statistics, a second pass over coerced columns only."""
    columns = list(source.dtypes)
    labels = {str(name): name for name in columns}  # schema names are strings; a frame's labels may not be
    # With the target missing (e.g. a wrong delimiter), that is the finding to report, not the exclusions.
    excluded = {}
    if target in columns:
        excluded = dict.fromkeys(check_exclude_columns(exclude_columns, columns, target), EXCLUDED_BY_PARAMETER)
        check_sensitive_column_names(sensitive_columns, columns, target)
    labelled = source.rows - source.nulls[target] if target in columns else 0
    with Spill(source.rows) as spill:
        stats, sample = gather(
            source.batches(),
            source.dtypes,
            source.nulls,
            source.rows,
            target,
            spill,
            reference=reference,
            sample=sample_ranks(labelled, LEAKAGE_SEED),
        )
        schema = dataset_schema(stats, source.rows, target, excluded)
        validation = Validation(schema=schema, task=task, policy=policy)
        data_findings = validation.data_findings
        if not source.rows:
            data_findings.append(Finding(ROWS, "", "the dataset has no rows"))
        if target not in columns:
            message = f"target column {target!r} not found; columns are {list(labels)}"
            message += near_names([target], list(labels), "target")
            data_findings.append(Finding(TARGET, target, message))
            return validation

        validation.task = _resolve_task(stats[target], task)
        data_findings += _target_findings(stats[target], target, validation.task)
        identifiers: dict[str, str] = {}
        for column in schema["columns"]:
            name = column["name"]
            values = stats[labels[name]]
            if column["role"] == EXCLUDED:
                continue  # not a feature: whatever its values, the model never sees them
            is_feature = column["role"] == FEATURE
            categorical = column["type"] != NUMERIC
            mixed = _mixed_finding(values, name) if categorical and is_feature else None
            reason = None
            if is_feature:
                number_range = None
                if categorical and values.number_low is not None:
                    number_range = (values.number_low, values.number_high)
                reason = identifier_reason(
                    column,
                    mostly_numbers=mixed is not None,
                    number_range=number_range,
                    uuid_sample=values.uuid_sample if categorical else None,
                )
            if reason:
                identifiers[name] = reason
                validation.identifier_findings.append(identifier_finding(column, reason, policy.identifiers))
                if policy.identifiers != KEEP:
                    continue  # excluded, or stopping the run: its values feed no model
            if is_feature and source.rows and column["nulls"] == source.rows:
                data_findings.append(
                    Finding(VALUES, name, f"column {name!r} has no values (all {source.rows} are missing)")
                )
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
                message = (
                    f"column {name!r} has {values.infinite} infinite value(s); leave a value empty when it is unknown"
                )
                data_findings.append(Finding(INFINITE, name, message, values.infinite))
        if policy.identifiers == EXCLUDE:
            excluded.update(identifiers)
        coerced = [labels[finding.column] for finding in validation.coerced_findings]
        if coerced:
            # The schema describes the data as prepare_data delivers it to training: these columns as numbers.
            batches = (coerce_mixed_columns(batch, coerced) for batch in source.frames(coerced))
            numbers, _ = gather(
                batches,
                dict.fromkeys(coerced, np.dtype("float64")),
                source.nulls,
                source.rows,
                target,
                spill,
                reference=reference,
                sample=np.empty(0, dtype=np.int64),
            )
            stats.update(numbers)
            if sample is not None:
                sample = coerce_mixed_columns(sample, coerced)
        schema = dataset_schema(stats, source.rows, target, excluded)
        validation.schema = schema
        # Identifiers failing the run are no features either: it stops until they are excluded.
        unchecked = identifiers if policy.identifiers == FAIL else {}
        features = {
            c["name"]: c["type"] for c in schema["columns"] if c["role"] == FEATURE and c["name"] not in unchecked
        }
        if len(columns) < 2:
            data_findings.append(
                Finding(FEATURES, target, f"no feature columns: the dataset has only the target column {target!r}")
            )
        elif not any(column["role"] == FEATURE for column in schema["columns"]):
            message = f"no feature columns: every column but the target {target!r} is excluded ({validation.excluded})"
            data_findings.append(Finding(FEATURES, target, message))
        if policy.leakage != IGNORE and not data_findings:
            # Scores need trainable data: with a failed data check they would fail or mislead.
            validation.leakage = check_leakage_sample(sample, target, validation.task, features, seed=LEAKAGE_SEED)
            # The advice must be complete: the columns excluded by parameter, failing identifiers, then the suspects.
            rerun = [name for name, why in excluded.items() if why == EXCLUDED_BY_PARAMETER] + list(unchecked)
            validation.leakage_findings = leakage_findings(validation.leakage, target, rerun)
        if reference is not None:
            validation.reference_name = reference_name
            findings = schema_contract.compare_measured(reference, schema, StatsMeasure(stats))
            validation.schema_findings = [finding for finding in findings if policy.action(finding.check) != IGNORE]
    return validation


def _target_findings(values: ColumnStats, target: str, task: str) -> list[Finding]:
    if not values.present:
        return [Finding(TARGET, target, f"target column {target!r} has no values")]
    if values.distinct == 1:
        message = (
            f"target column {target!r} has a single value ({_plain(values.first_value)!r}) in {values.present} rows: "
            "there is nothing to learn"
        )
        return [Finding(TARGET, target, message)]
    if task == REGRESSION and not values.numeric:
        examples = values.first_texts[:3]
        message = f"task=regression needs a numeric target, but column {target!r} holds text such as {examples}"
        return [Finding(TARGET, target, message, examples=tuple(examples))]
    if task == CLASSIFICATION and values.distinct > MAX_CLASSES:
        message = (
            f"target column {target!r} has {values.distinct} distinct values, more than {MAX_CLASSES} classes; "
            "use task=regression for a continuous target"
        )
        return [Finding(TARGET, target, message, values.distinct)]
    return []


def _mixed_type_finding(present: pd.Series, name: str) -> Finding | None:
    """A text column in which most values are numbers is a numeric column with typos, not a category.

    ``present``: the column's values without the missing ones.
    """
    return _mixed_finding(series_stats(present), name)


def _mixed_finding(values: CategoricalStats, name: str) -> Finding | None:
    if not values.mostly_numbers():
        return None
    bad = values.present - values.parsed
    examples = values.bad_examples[:3]
    message = (
        f"column {name!r} mixes numbers and text: {bad} of {values.present} values are not numbers, e.g. {examples}"
    )
    return Finding(MIXED_TYPES, name, message, bad, tuple(examples))


def _plain(value):
    """A numpy scalar as the Python value it holds, so a message shows 1, not np.int64(1)."""
    return value.item() if isinstance(value, np.generic) else value
