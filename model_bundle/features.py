"""Feature typing and coercion, identical at training and at serving time."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

NUMERIC = "numeric"
CATEGORICAL = "categorical"
FEATURE_TYPES = (NUMERIC, CATEGORICAL)


class FeatureError(ValueError):
    """Input features do not match what the model was trained on; the message names the columns."""


def infer_feature_types(frame: pd.DataFrame, exclude: Iterable[str] = ()) -> list[dict[str, str]]:
    """Types every column of ``frame`` except ``exclude`` as numeric or categorical, in column order.

    Booleans are categorical: a JSON ``true`` then reaches the model as the same string "True" it saw in training.
    """
    excluded = set(exclude)
    features = []
    for name in frame.columns:
        if name in excluded:
            continue
        dtype = frame[name].dtype
        is_numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        features.append({"name": str(name), "type": NUMERIC if is_numeric else CATEGORICAL})
    return features


def coerce_features(frame: pd.DataFrame, features: list[Mapping[str, str]]) -> pd.DataFrame:
    """Returns the model's input frame: exactly the trained feature columns, in trained order, coerced to type.

    Numeric columns become float64 (a value that is not a number is an error, never a silent NaN); categorical
    columns become strings with missing values kept as NaN. Raises FeatureError naming every missing or unknown
    column, or the column and values that cannot be coerced.
    """
    _check_columns(features, [str(name) for name in frame.columns])
    return pd.DataFrame({f["name"]: _coerce_series(f, frame[f["name"]]) for f in features}, index=frame.index)


def coerce_columns(columns: Mapping[str, Sequence], features: list[Mapping[str, str]]) -> pd.DataFrame:
    """The same result as ``coerce_features(pd.DataFrame(columns), features)``, built straight from sequences of
    JSON values (or numeric numpy arrays).

    The model server's path: for the few rows of a typical request, building and converting an intermediate
    DataFrame costs more than the model's own work. Columns of plain numbers and nulls convert in one numpy
    call; anything else takes the DataFrame path, so results and error messages are the same.
    """
    _check_columns(features, list(columns))
    return pd.DataFrame({f["name"]: _coerce_values(f, columns[f["name"]]) for f in features})


def _check_columns(features: list[Mapping[str, str]], present: list[str]) -> None:
    expected = [feature["name"] for feature in features]
    missing = [name for name in expected if name not in present]
    unknown = [name for name in present if name not in expected]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing column(s) {missing}")
        if unknown:
            problems.append(f"unknown column(s) {unknown}")
        raise FeatureError(f"{'; '.join(problems)}; the model expects {expected}")
    if len(set(present)) != len(present):
        duplicated = sorted({name for name in present if present.count(name) > 1})
        raise FeatureError(f"duplicate column(s) {duplicated}")
    for feature in features:
        if feature["type"] not in FEATURE_TYPES:
            raise FeatureError(
                f"column {feature['name']!r} has unknown feature type {feature['type']!r}; expected one of "
                f"{FEATURE_TYPES}"
            )


def _coerce_series(feature: Mapping[str, str], values: pd.Series) -> pd.Series:
    if feature["type"] == NUMERIC:
        return _to_float(feature["name"], values)
    return _to_category_strings(values)


_JSON_NUMBER_TYPES = {int, float, type(None)}


def _coerce_values(feature: Mapping[str, str], values: Sequence) -> np.ndarray | pd.Series:
    name = feature["name"]
    if feature["type"] == NUMERIC:
        if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
            return _finite(name, values.astype("float64"))
        if set(map(type, values)) <= _JSON_NUMBER_TYPES:  # numpy turns None into NaN
            return _finite(name, np.array(values, dtype="float64"))
        return _to_float(name, pd.Series(values, dtype=object))
    kinds = set(map(type, values))
    if not kinds & {type(None), float}:  # nothing missing: every value's string (str() returns a str as is)
        return np.array(list(map(str, values)), dtype=object)
    return np.array([value if type(value) is str else _category(value) for value in values], dtype=object)


def _category(value):
    """A categorical value as training saw it: its string, or NaN when missing (None or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return np.nan
    return str(value)


def _to_float(name: str, values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype):
        raise FeatureError(f"column {name!r} is numeric but got boolean value(s), e.g. {values.head(3).tolist()}")
    if pd.api.types.is_numeric_dtype(values.dtype):
        return _finite(name, values.astype("float64"))
    is_bool = values.map(lambda value: isinstance(value, bool | np.bool_))
    if is_bool.any():
        raise FeatureError(f"column {name!r} is numeric but got boolean value(s) {values[is_bool].head(3).tolist()}")
    converted = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = converted.isna() & values.notna() & ~values.isin(["", "nan", "NaN"])
    if bad.any():
        examples = values[bad].head(3).tolist()
        raise FeatureError(f"column {name!r} is numeric but got {int(bad.sum())} non-numeric value(s), e.g. {examples}")
    return _finite(name, converted)


def _finite(name: str, values):
    # scikit-learn rejects infinity deep inside predict; name the column here instead.
    infinite = np.isinf(np.asarray(values))
    if infinite.any():
        raise FeatureError(f"column {name!r} has {int(infinite.sum())} infinite value(s); use null for unknown")
    return values


def _to_category_strings(values: pd.Series) -> pd.Series:
    present = values.notna()
    strings = values.astype(object).where(~present, values.astype(str))
    return strings.where(present, np.nan)
