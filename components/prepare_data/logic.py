"""Cleans the validated data by explicit policy and splits it into train and test sets."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from components._common.scoring import CLASSIFICATION, check_task

MIN_ROWS = 10


class PreparationError(ValueError):
    """The data cannot be split as asked; the message names the parameter, column or class."""


@dataclass
class Preparation:
    train: pd.DataFrame
    test: pd.DataFrame
    dropped_missing_target: int
    dropped_duplicates: int


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
    drop_duplicates: bool = True,
) -> Preparation:
    """Drops rows without a target (and exact duplicate rows when asked), then splits train/test.

    Classification splits are stratified, so every class is in both sets in proportion. The split is
    deterministic for a given ``seed``.
    """
    check_task(task)
    if not 0.0 < test_fraction < 1.0:
        raise PreparationError(f"parameter test_fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    if target not in frame.columns:
        raise PreparationError(f"target column {target!r} not found; columns are {list(frame.columns)}")

    # Rows are kept by position and taken from ``frame`` once, by the split: no intermediate copies of the data.
    kept = np.flatnonzero(frame[target].notna().to_numpy())
    dropped_missing_target = len(frame) - len(kept)
    labelled = len(kept)
    if drop_duplicates:
        kept = kept[~_duplicated(frame, kept)]
    dropped_duplicates = labelled - len(kept)
    if len(kept) < MIN_ROWS:
        raise PreparationError(
            f"only {len(kept)} usable rows remain after dropping {dropped_missing_target} without target "
            f"{target!r} and {dropped_duplicates} duplicates; at least {MIN_ROWS} are needed"
        )

    stratify = None
    if task == CLASSIFICATION:
        labels = frame[target].take(kept).astype(str)
        counts = labels.value_counts()
        rare = counts[counts < 2]
        if not rare.empty:
            raise PreparationError(
                f"class(es) {rare.index.tolist()} of target {target!r} have a single row; a stratified split "
                "needs at least 2 rows per class (drop or merge rare classes)"
            )
        test_rows = math.ceil(len(kept) * test_fraction)  # how train_test_split sizes the test set
        if test_rows < len(counts) or len(kept) - test_rows < len(counts):
            raise PreparationError(
                f"test_fraction {test_fraction} of {len(kept)} rows cannot hold all {len(counts)} classes of "
                f"{target!r} in both train and test; use more data or a test_fraction nearer 0.5"
            )
        stratify = labels

    # The split depends only on the row count, seed and labels: splitting positions picks the same rows.
    train_at, test_at = train_test_split(
        np.arange(len(kept)), test_size=test_fraction, random_state=seed, stratify=stratify
    )
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
    )
