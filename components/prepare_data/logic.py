"""Cleans the validated data by explicit policy and splits it into train and test sets."""

from __future__ import annotations

import math
from dataclasses import dataclass

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

    labelled = frame[frame[target].notna()]
    dropped_missing_target = len(frame) - len(labelled)
    cleaned = labelled.drop_duplicates() if drop_duplicates else labelled
    dropped_duplicates = len(labelled) - len(cleaned)
    if len(cleaned) < MIN_ROWS:
        raise PreparationError(
            f"only {len(cleaned)} usable rows remain after dropping {dropped_missing_target} without target "
            f"{target!r} and {dropped_duplicates} duplicates; at least {MIN_ROWS} are needed"
        )

    stratify = None
    if task == CLASSIFICATION:
        labels = cleaned[target].astype(str)
        counts = labels.value_counts()
        rare = counts[counts < 2]
        if not rare.empty:
            raise PreparationError(
                f"class(es) {rare.index.tolist()} of target {target!r} have a single row; a stratified split "
                "needs at least 2 rows per class (drop or merge rare classes)"
            )
        test_rows = math.ceil(len(cleaned) * test_fraction)  # how train_test_split sizes the test set
        if test_rows < len(counts) or len(cleaned) - test_rows < len(counts):
            raise PreparationError(
                f"test_fraction {test_fraction} of {len(cleaned)} rows cannot hold all {len(counts)} classes of "
                f"{target!r} in both train and test; use more data or a test_fraction nearer 0.5"
            )
        stratify = labels

    train, test = train_test_split(cleaned, test_size=test_fraction, random_state=seed, stratify=stratify)
    return Preparation(
        train=train.reset_index(drop=True),
        test=test.reset_index(drop=True),
        dropped_missing_target=dropped_missing_target,
        dropped_duplicates=dropped_duplicates,
    )
