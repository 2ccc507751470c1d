"""Groups of the sensitive columns: the model card's ``sensitive_groups`` and how a value is named as a group, the
same at training (train_model lists each column's most frequent groups) and at serving (the model server counts
predictions per group, serving.metrics).

A value's group name is its text as a category (``group_name``): text stays as it is, a boolean is "True" or
"False", a whole number is its integer text whatever its type (3, 3.0 and np.int64(3) are all "3": a JSON client
sends numbers as floats, a Parquet column may hold them as integers), and a missing value has no name. The server
names the rows outside a column's listed groups with the fixed labels below, so a column has at most
``MAX_SENSITIVE_GROUPS`` + 3 group labels: Prometheus label values stay bounded whatever the traffic sends.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

MAX_SENSITIVE_GROUPS = 10  # groups listed per sensitive column, most frequent first
OTHER_GROUP = "(other)"  # a present value the card does not list (rarer in training, or never seen)
MISSING_GROUP = "(missing)"  # a missing value (null, NaN)
NOT_SENT_GROUP = "(not sent)"  # the request lacks the column (only an excluded column may be left out)
RESERVED_GROUPS = (OTHER_GROUP, MISSING_GROUP, NOT_SENT_GROUP)
NAMED_ONE_BY_ONE = 16  # GroupCoder.codes names up to this many values one by one, more through pandas.factorize


def group_name(value) -> str | None:
    """The group a value belongs to, as text; None for a missing value."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value)


def top_groups(frame: pd.DataFrame, columns: Iterable[str], limit: int = MAX_SENSITIVE_GROUPS) -> dict[str, list[str]]:
    """Each column's ``limit`` most frequent group names in ``frame``, most frequent first (ties in name order);
    missing values and values named like the reserved labels are not listed. Raises KeyError for a column
    ``frame`` lacks (callers name their parameter first)."""
    listed = {}
    for column in columns:
        codes, uniques = pd.factorize(frame[column])
        counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
        totals: dict[str, int] = {}
        for value, count in zip(uniques, counts.tolist(), strict=True):
            name = group_name(value)
            if name is not None and name not in RESERVED_GROUPS:
                totals[name] = totals.get(name, 0) + count  # 1 and 1.0 are one group
        ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
        listed[str(column)] = [name for name, _ in ranked[:limit]]
    return listed


def check_groups(sensitive_groups, columns: Sequence[str]) -> str | None:
    """What is wrong with a card's ``sensitive_groups`` given the columns it may name (features and excluded
    columns), or None: a mapping of column -> list of at most MAX_SENSITIVE_GROUPS distinct, non-reserved texts."""
    if not isinstance(sensitive_groups, dict):
        return f"sensitive_groups must be an object (column -> groups), got {sensitive_groups!r}"
    for column, groups in sensitive_groups.items():
        if column not in columns:
            return f"sensitive_groups names column {column!r}, which is neither a feature nor an excluded column"
        if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
            return f"sensitive_groups[{column!r}] must be a list of strings, got {groups!r}"
        if len(groups) > MAX_SENSITIVE_GROUPS or len(set(groups)) != len(groups):
            return (
                f"sensitive_groups[{column!r}] must list at most {MAX_SENSITIVE_GROUPS} distinct groups, got {groups!r}"
            )
        reserved = [group for group in groups if group in RESERVED_GROUPS]
        if reserved:
            return f"sensitive_groups[{column!r}] lists the reserved label(s) {reserved}"
    return None


class GroupCoder:
    """A column's groups as positions, for counting with ``np.bincount``: ``labels`` are the listed groups, then
    OTHER_GROUP, MISSING_GROUP and NOT_SENT_GROUP."""

    def __init__(self, groups: Sequence[str]):
        self.labels = [*groups, *RESERVED_GROUPS]
        self._positions = {group: position for position, group in enumerate(groups)}
        self.other, self.missing, self.not_sent = (len(groups) + offset for offset in range(3))

    def codes(self, values: Sequence | np.ndarray | pd.Series | None, rows: int) -> np.ndarray:
        """The position of each of ``rows`` values; all NOT_SENT_GROUP when ``values`` is None.

        Vectorised for batches: pandas factorizes the values (a hash table, missing values as -1) and only the
        distinct ones are named. A few values are named one by one: factorizing costs tens of microseconds
        whatever the size, more than naming a handful."""
        if values is None:
            return np.full(rows, self.not_sent, dtype=np.intp)
        if rows <= NAMED_ONE_BY_ONE:
            return np.fromiter((self._position(group_name(value)) for value in values), dtype=np.intp, count=rows)
        if not isinstance(values, np.ndarray | pd.Series | pd.Index):
            values = np.asarray(values, dtype=object)
        codes, uniques = pd.factorize(values)
        named = [self._position(group_name(value)) for value in uniques]
        # The last entry is the position of a missing value: factorize marks those -1.
        return np.asarray([*named, self.missing], dtype=np.intp)[codes]

    def _position(self, name: str | None) -> int:
        if name is None:
            return self.missing
        return self._positions.get(name, self.other)
