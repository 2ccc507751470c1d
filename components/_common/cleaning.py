"""The cleaning policy (``cleaning_policy``) and the mixed-type rule, shared by the two steps that apply them.

prepare_data owns what the policy does to the data; validate_data reads its ``coerce_mixed_types`` (a column it
would coerce is then a warning, not a failure), so the user sets the policy once and both steps judge a text
column that is mostly numbers by the same rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from components._common.policies import Deprecated, policy_from_mapping

PARAMETER = "cleaning_policy"
KEEP, CLIP, DROP = "keep", "clip", "drop"
OUTLIER_ACTIONS = (KEEP, CLIP, DROP)


@dataclass(frozen=True)
class CleaningPolicy:
    """How prepare_data cleans the validated data, after dropping the rows without a target (always).

    Attributes:
        drop_duplicates: Drop rows that repeat another row exactly.
        coerce_mixed_types: In a text column that is mostly numbers, set the values that are not numbers missing
            and make the column numeric. validate_data reads the same key: such a column is then a warning there,
            not a failure.
        outliers: `keep`, `clip` or `drop` numbers outside `[Q1 - k*IQR, Q3 + k*IQR]` of each numeric feature (a
            feature whose IQR is 0 is left alone).
        outlier_factor: `k` of the outlier fences, a positive number.
    """

    drop_duplicates: bool = True
    coerce_mixed_types: bool = False
    outliers: str = KEEP
    outlier_factor: float = 3.0

    def __post_init__(self):
        if self.outliers not in OUTLIER_ACTIONS:
            raise ValueError(
                f"parameter {PARAMETER}['outliers'] must be one of {list(OUTLIER_ACTIONS)}, got {self.outliers!r}"
            )
        if not self.outlier_factor > 0:
            raise ValueError(
                f"parameter {PARAMETER}['outlier_factor'] must be a positive number, got {self.outlier_factor}"
            )


def read_cleaning_policy(
    values: Mapping | None,
    *,
    drop_duplicates: bool | None = None,
    coerce_mixed_types: bool | None = None,
    outliers: str | None = None,
    outlier_factor: float | None = None,
) -> CleaningPolicy:
    """The ``cleaning_policy`` parameter read key by key, with the flat parameters of earlier releases (each None
    when not given) filling the keys it does not set, each with a deprecation message naming its key."""
    deprecated = [
        Deprecated(name, None if value is None else {name: value})
        for name, value in (
            ("drop_duplicates", drop_duplicates),
            ("coerce_mixed_types", coerce_mixed_types),
            ("outliers", outliers),
            ("outlier_factor", outlier_factor),
        )
    ]
    return policy_from_mapping(CleaningPolicy, values, PARAMETER, deprecated)


# --- the mixed-type rule ------------------------------------------------------------------------------------------

# pandas < 3 kills the interpreter (SIGSEGV: no exception to catch) parsing text whose exponent is in [2**31, 2**32),
# such as the hex digest "8e2569614270f3d8b9e7038efac9f116" (pandas GH#63650, fixed in 3.0): an identifier column
# would crash validate_data. Text with a 10-digit exponent is parsed by Python instead, which never crashes.
_LONG_EXPONENT = r"[eE][+-]?\d{10}"


def to_numbers(values: pd.Series) -> pd.Series:
    """``pd.to_numeric(values, errors="coerce")``, safe from pandas' crash above: numbers, and NaN for a value that
    is not one (text with a huge exponent is infinite or zero when it is a number, as in pandas 3)."""
    if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
        try:
            risky = values.str.contains(_LONG_EXPONENT, regex=True, na=False).to_numpy(dtype=bool)
        except AttributeError:  # pandas refuses .str for objects none of which is text: nothing to guard
            risky = np.zeros(len(values), dtype=bool)
        if risky.any():
            values = values.astype(object)  # a copy: the caller's values stay as they are
            values[risky] = [_python_number(text) for text in values[risky]]  # a handful: ids with a long "e..."
    return pd.to_numeric(values, errors="coerce")


def _python_number(text: str) -> float:
    if "_" in text:  # Python reads "1_000" as 1000; pandas does not
        return np.nan
    try:
        return float(text)
    except ValueError:
        return np.nan


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
        parsed = to_numbers(pd.Series(uniques, dtype=object).str.strip())
        return parsed.notna().to_numpy()[codes]
    return to_numbers(present.astype(str).str.strip()).notna().to_numpy()


def coerce_mixed_columns(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` with ``columns`` converted to numbers; values that are not finite numbers become missing.

    Each distinct text is stripped and parsed once (text columns repeat their values: parsing row by row took most
    of a coercing run), which gives what parsing every row gives: the same values, so the same result type."""
    converted = {}
    for name in columns:
        codes, uniques = pd.factorize(frame[name].astype("string"))
        numbers = to_numbers(pd.Series(uniques, dtype="string").str.strip()).astype("float64")
        numbers = np.append(numbers.replace([np.inf, -np.inf], np.nan).to_numpy(), np.nan)  # code -1: missing
        converted[name] = pd.Series(numbers[codes], index=frame.index, name=name)
    return frame.assign(**converted)
