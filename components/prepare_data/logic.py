"""Cleans the validated data by the cleaning policy and splits it into train and test sets; owns what each
cleaning step does and the split (the component profiles the training rows with model_bundle.profile).

The steps, in the order they apply (keys of ``components._common.cleaning.CleaningPolicy``):
1. rows without a target are dropped (always);
2. ``coerce_mixed_types``: in a text column that is mostly numbers (the rule of ``_common.cleaning``), values that
   are not numbers become missing and the column numeric;
3. ``outliers``: ``keep`` (default), ``clip`` or ``drop`` numbers outside the fences
   ``[Q1 - k * IQR, Q3 + k * IQR]`` of each numeric feature (``k`` = ``outlier_factor``; a feature whose IQR is 0
   is left alone);
4. ``drop_duplicates``: rows repeating another row exactly are dropped.
Each step's effect (rows or values changed, per column, with examples) is in ``Preparation.cleaning``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from components._common.cleaning import CLIP, DROP, KEEP, CleaningPolicy, coerce_mixed_columns, is_mostly_numbers
from components._common.sampling import proportional_counts, row_keys, select_smallest
from components._common.scoring import CLASSIFICATION, check_task
from model_bundle import NUMERIC, infer_feature_types

MIN_ROWS = 10


class PreparationError(ValueError):
    """The data cannot be split as asked; the message names the parameter, column or class."""


@dataclass(frozen=True)
class CleaningStep:
    """What one cleaning step did: ``rows`` dropped or ``values`` changed, in which column, with examples.

    ``policy``: the cleaning policy key that decided it (``missing_target`` for the rows without a target).
    """

    policy: str
    setting: str
    column: str = ""
    rows: int = 0
    values: int = 0
    detail: str = ""


@dataclass
class Preparation:
    train: pd.DataFrame
    test: pd.DataFrame
    dropped_missing_target: int
    dropped_duplicates: int
    cleaning: list[CleaningStep] = field(default_factory=list)


def _duplicated(frame: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """``frame.iloc[rows].duplicated()`` as an array, computed exactly but only among rows whose hash repeats.

    Equal rows hash equally (zeros and NaN are made canonical first; text is hashed by value), so a row whose
    hash occurs once has no duplicate; the few others are compared by ``DataFrame.duplicated`` itself.
    """
    if len(rows) < 2:
        return frame.iloc[rows].duplicated().to_numpy()
    hashes = np.zeros(len(frame), dtype=np.uint64)
    for position in range(frame.shape[1]):  # one column at a time: a hash and a copy of one column in memory
        values = frame.iloc[:, position]
        if isinstance(values.dtype, np.dtype) and values.dtype.kind in "fc":
            array = values.to_numpy()
            values = pd.Series(np.where(pd.isna(array), np.nan, array + 0))  # -0.0 -> 0.0, one NaN
        hashes = hashes * np.uint64(1_000_003) ^ pd.util.hash_pandas_object(values, index=False).to_numpy()
    hashes = hashes[rows]
    candidates = pd.Series(hashes).duplicated(keep=False).to_numpy()
    duplicated = np.zeros(len(rows), dtype=bool)
    if candidates.any():
        duplicated[candidates] = frame.iloc[rows[candidates]].duplicated().to_numpy()
    return duplicated


def prepare(
    frame: pd.DataFrame,
    target: str,
    task: str,
    test_fraction: float = 0.2,
    seed: int = 42,
    cleaning_policy: CleaningPolicy = CleaningPolicy(),  # noqa: B008 (frozen: one shared default is safe)
) -> Preparation:
    """Cleans ``frame`` by ``cleaning_policy`` (the steps of the module docstring), then splits train/test.

    Classification splits are stratified: every class is in both sets, with its share of the test rows up to
    rounding (``_common.sampling.proportional_counts``). The split is decided per row by a seeded hash of its row
    number in ``frame`` (``_common.sampling.row_keys``), so it is deterministic for a given ``seed`` and data, and
    a row's side does not depend on the other rows beyond the counts; both sets keep the rows in ``frame``'s order.
    """
    check_task(task)
    if not 0.0 < test_fraction < 1.0:
        raise PreparationError(f"parameter test_fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    if target not in frame.columns:
        raise PreparationError(f"target column {target!r} not found; columns are {list(frame.columns)}")

    # Rows are kept by position and taken from ``frame`` once, by the split: no intermediate copies of the data.
    kept = np.flatnonzero(frame[target].notna().to_numpy())
    dropped_missing_target = len(frame) - len(kept)
    cleaning = [CleaningStep("missing_target", "drop", target, rows=dropped_missing_target)]
    if cleaning_policy.coerce_mixed_types:
        frame, coerced = _coerce_mixed(frame, target)
        cleaning += coerced
    if cleaning_policy.outliers != KEEP:
        frame, kept, steps = _handle_outliers(
            frame, target, kept, cleaning_policy.outliers, cleaning_policy.outlier_factor
        )
        cleaning += steps
    usable = len(kept)
    if cleaning_policy.drop_duplicates:
        kept = kept[~_duplicated(frame, kept)]
    dropped_duplicates = usable - len(kept)
    setting = DROP if cleaning_policy.drop_duplicates else KEEP
    cleaning.append(CleaningStep("duplicates", setting, rows=dropped_duplicates))
    if len(kept) < MIN_ROWS:
        dropped = ", ".join(f"{step.rows} by {step.policy}" for step in cleaning if step.rows)
        raise PreparationError(
            f"only {len(kept)} usable rows of {len(frame)} remain after cleaning ({dropped or 'none dropped'}) on "
            f"target {target!r}; at least {MIN_ROWS} are needed"
        )
    test_rows = math.ceil(len(kept) * test_fraction)  # the test set's size as scikit-learn's train_test_split had it
    if task == CLASSIFICATION:
        labels = frame[target].take(kept).astype(str)
        codes, classes = pd.factorize(labels)
        # Classes renumbered in sorted order (cheaper than factorize's own sort): the allocation's tie-break then does
        # not depend on which class comes first in the file.
        order = np.argsort(classes.to_numpy())
        codes = np.argsort(order)[codes]
        sizes = np.bincount(codes, minlength=len(classes))
        if (sizes < 2).any():
            rare = pd.unique(labels.to_numpy()[sizes[codes] < 2]).tolist()  # in file order
            raise PreparationError(
                f"class(es) {rare} of target {target!r} have a single row; a stratified split "
                "needs at least 2 rows per class (drop or merge rare classes)"
            )
        if test_rows < len(classes) or len(kept) - test_rows < len(classes):
            raise PreparationError(
                f"test_fraction {test_fraction} of {len(kept)} rows cannot hold all {len(classes)} classes of "
                f"{target!r} in both train and test; use more data or a test_fraction nearer 0.5"
            )
        # Every class gets its share of the test set, up to rounding, and at least one row on each side.
        counts = proportional_counts(sizes, test_rows, low=1, high=sizes - 1)
    else:
        if test_rows >= len(kept):
            raise PreparationError(
                f"test_fraction {test_fraction} of {len(kept)} rows puts every row in the test set and none in "
                "train; use a smaller test_fraction"
            )
        codes, counts = None, [test_rows]

    # Each class's test rows are its rows with the smallest seeded keys of their row numbers in the data as read:
    # the same rows for the same seed and data, whatever the other rows, so a streaming split picks them too.
    test_mask = select_smallest(row_keys(kept, seed), codes, counts)
    # Both sets keep the rows in file order.
    train_at, test_at = np.flatnonzero(~test_mask), np.flatnonzero(test_mask)
    train = frame.take(kept[train_at])
    test = frame.take(kept[test_at])
    # Both are new frames: renumbering their rows in place spares another copy of the data.
    train.reset_index(drop=True, inplace=True)
    test.reset_index(drop=True, inplace=True)
    return Preparation(
        train=train,
        test=test,
        dropped_missing_target=dropped_missing_target,
        dropped_duplicates=dropped_duplicates,
        cleaning=cleaning,
    )


def _coerce_mixed(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, list[CleaningStep]]:
    """Text feature columns that are mostly numbers become numeric; their other values become missing."""
    mixed = [
        name
        for name in frame.columns
        if name != target and frame[name].dtype == object and is_mostly_numbers(frame[name].dropna())
    ]
    if not mixed:
        return frame, []
    coerced = coerce_mixed_columns(frame, mixed)
    steps = []
    for name in mixed:
        lost = frame[name].notna() & coerced[name].isna()
        examples = frame.loc[lost, name].astype(str).unique()[:3].tolist()
        steps.append(
            CleaningStep(
                "coerce_mixed_types",
                "coerce",
                name,
                values=int(lost.sum()),
                detail=f"not numbers, set missing: {examples}",
            )
        )
    return coerced, steps


def _handle_outliers(
    frame: pd.DataFrame, target: str, kept: np.ndarray, policy: str, factor: float
) -> tuple[pd.DataFrame, np.ndarray, list[CleaningStep]]:
    """Clips or drops numbers outside each numeric feature's IQR fences, computed over the labelled rows."""
    numeric = [f["name"] for f in infer_feature_types(frame, exclude=[target]) if f["type"] == NUMERIC]
    steps, clipped, outside_any = [], {}, np.zeros(len(kept), dtype=bool)
    for name in numeric:
        values = frame[name].to_numpy(dtype="float64", na_value=np.nan)
        labelled = values[kept]
        q1, q3 = np.nanquantile(labelled, [0.25, 0.75]) if np.isfinite(labelled).any() else (np.nan, np.nan)
        spread = q3 - q1
        if not spread > 0:
            continue
        low, high = q1 - factor * spread, q3 + factor * spread
        outside = (values < low) | (values > high)
        outside_labelled = outside[kept]
        count = int(outside_labelled.sum())
        if not count:
            continue
        examples = np.unique(labelled[outside_labelled])[[0, -1]].tolist()
        detail = f"outside [{low:.6g}, {high:.6g}], e.g. {examples[0]:.6g} .. {examples[-1]:.6g}"
        if policy == CLIP:
            clipped[name] = np.clip(values, low, high)
            steps.append(CleaningStep("outliers", CLIP, name, values=count, detail=detail))
        else:
            outside_any |= outside_labelled
            steps.append(CleaningStep("outliers", DROP, name, rows=count, detail=detail))
    if clipped:
        frame = frame.assign(**clipped)
    if outside_any.any():
        # A row outside in several columns is counted in each column but dropped once.
        steps.append(CleaningStep("outliers", DROP, "", rows=int(outside_any.sum()), detail="rows dropped in all"))
        kept = kept[~outside_any]
    return frame, kept, steps
