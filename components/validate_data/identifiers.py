"""Identifier columns: which columns are identifiers (values unique per row that carry no magnitude, so a model can
only memorise them), and the finding that says so under the validation policy's ``identifiers`` action.

Built on the schema's ``unique`` flag (whole numbers or text, every present value distinct):

- integers in sequence: row numbers or keys, 1..n shuffled or with gaps. The range of the values is at most
  ``MAX_SPAN_PER_VALUE`` times their count, i.e. at least half the numbers of the range are used. Measurements
  that happen to be unique integers (incomes, prices in cents) spread over a range far wider than the rows.
- text: UUIDs, hashes, codes, names; a category seen once per row teaches a model nothing about new rows.

Floats are never identifiers (a unique float is a measurement), nor is a text column that is mostly numbers (a
numeric column with typos, which its own check names), nor anything in a table of fewer than ``MIN_ROWS`` values,
where uniqueness happens by chance.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd

from components._common.cleaning import to_numbers
from components.validate_data.policy import EXCLUDE, FAIL, IDENTIFIERS
from model_bundle.schema import Finding

MIN_ROWS = 20
# Drawn at random from a range at most twice their count, n distinct-by-chance integers have a probability of
# about exp(-n/4): under 1% from MIN_ROWS on.
MAX_SPAN_PER_VALUE = 2.0
SEQUENCE = "identifier: unique integers in sequence"
UUID = "identifier: unique UUID-like text"
TEXT = "identifier: unique text"
# 8-4-4-4-12 hex digits (with or without dashes or braces), or a long hex digest (md5, sha1, ...).
_UUID_LIKE = re.compile(
    r"^\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?$|^[0-9a-f]{24,}$", re.I
)
_UUID_SAMPLE = 100


def identifier_reason(
    column: Mapping,
    present: pd.Series | None = None,
    mostly_numbers: bool = False,
    *,
    number_range: tuple | None = None,
    uuid_sample: pd.Series | None = None,
) -> str | None:
    """Why the schema ``column`` is an identifier (``SEQUENCE``, ``UUID`` or ``TEXT``), or None when it is not.

    ``present``: the column's present values, needed for a categorical column (the schema keeps no range for it).
    ``mostly_numbers``: the column is text that is mostly numbers. A caller without the values passes what is read
    of them instead: ``number_range``, the (min, max) of whole numbers stored as objects, and ``uuid_sample``, the
    values at ``uuid_sample_step`` strides.
    """
    if not column.get("unique") or column["distinct"] < MIN_ROWS:
        return None
    if column["kind"] == "integer":
        low, high = column.get("min"), column.get("max")
        if low is None and number_range is not None:
            low, high = number_range
        elif low is None and present is not None:  # whole numbers stored as objects: typed categorical
            numbers = to_numbers(present)
            low, high = numbers.min(), numbers.max()
        span = float(high) - float(low) + 1
        return SEQUENCE if span <= MAX_SPAN_PER_VALUE * column["distinct"] else None
    if column["kind"] == "string" and not mostly_numbers:
        if uuid_sample is None and present is not None:
            uuid_sample = present.iloc[:: uuid_sample_step(len(present))]
        if uuid_sample is not None and _uuid_like(uuid_sample):
            return UUID
        return TEXT
    return None


def uuid_sample_step(present: int) -> int:
    """The stride of the values looked at for UUIDs among ``present`` values: about ``_UUID_SAMPLE`` of them."""
    return max(1, present // _UUID_SAMPLE)


def _uuid_like(sample: pd.Series) -> bool:
    return bool(sample.astype(str).str.strip().str.match(_UUID_LIKE).all())


def identifier_finding(column: Mapping, reason: str, action: str) -> Finding:
    """The finding of the identifier ``column`` (``reason`` from ``identifier_reason``), saying what ``action`` (the
    policy's ``identifiers``: exclude, fail or keep) does with it."""
    name = column["name"]
    what = f"column {name!r} is an identifier ({reason.removeprefix('identifier: ')}, {column['distinct']} values)"
    if action == EXCLUDE:
        message = f"{what}: excluded from the features (validation_policy identifiers=exclude)"
    elif action == FAIL:
        message = (
            f"{what}: a model can only memorise it; rerun with exclude_columns=[{name!r}] or validation_policy "
            "identifiers=exclude"
        )
    else:
        message = f"{what}: kept as a feature (validation_policy identifiers=keep)"
    return Finding(IDENTIFIERS, name, message, column["distinct"])
