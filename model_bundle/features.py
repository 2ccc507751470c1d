"""Feature typing and coercion, identical at training and at serving time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import reduce
from operator import methodcaller

import numpy as np
import pandas as pd

NUMERIC = "numeric"
CATEGORICAL = "categorical"
FEATURE_TYPES = (NUMERIC, CATEGORICAL)

# How the model itself types raw columns: train_model puts these calls at the head of its Pipeline's branches (as
# FunctionTransformers), so model.joblib alone, with only scikit-learn, pandas and numpy, takes raw rows. They are
# plain pandas method calls (picklable without any code of this repository), and coerce_features below applies the
# same calls, so the checks and feature signals see the values exactly as the model does.
# Numbers become float64; numbers stored as text convert, anything else that is not a number raises.
AS_NUMBER = (methodcaller("astype", "float64"),)
# Categories become text, missing values stay missing. convert_dtypes first gives whole floats their integer text:
# pandas reads the codes 1, 2 and a blank as 1.0, 2.0, NaN, and "1.0" would be a category training never saw.
AS_CATEGORY = (methodcaller("convert_dtypes"), methodcaller("astype", "string"))


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


def coerce_features(frame: pd.DataFrame, features: list[Mapping[str, str]], ignore: Iterable[str] = ()) -> pd.DataFrame:
    """Returns the model's input frame: exactly the trained feature columns, in trained order, typed as the model
    types them (``AS_NUMBER``, ``AS_CATEGORY``).

    Numeric columns become float64 (a value that is not a number is an error, never a silent NaN); categorical
    columns become strings with missing values kept as NaN. Columns named in ``ignore`` (those the model card
    excludes) may be present and are left out. Raises FeatureError naming every missing or unknown column, or the
    column and values that cannot be typed.
    """
    _check_columns(features, [str(name) for name in frame.columns], ignore)
    return pd.DataFrame({f["name"]: _coerce_series(f, frame[f["name"]]) for f in features}, index=frame.index)


def coerce_columns(
    columns: Mapping[str, Sequence], features: list[Mapping[str, str]], ignore: Iterable[str] = ()
) -> pd.DataFrame:
    """The same result as ``coerce_features(pd.DataFrame(columns), features, ignore)``, built straight from sequences
    of JSON values (or numeric numpy arrays).

    The model server's path: for the few rows of a typical request, building and converting an intermediate
    DataFrame costs more than the checks' own work. Columns of plain numbers and nulls, or of plain strings and
    nulls, convert directly; anything else takes the DataFrame path, so results and error messages are the same.
    """
    _check_columns(features, list(columns), ignore)
    return pd.DataFrame({f["name"]: _coerce_values(f, columns[f["name"]]) for f in features})


def _check_columns(features: list[Mapping[str, str]], present: list[str], ignore: Iterable[str] = ()) -> None:
    expected = [feature["name"] for feature in features]
    ignored = set(ignore)
    missing = [name for name in expected if name not in present]
    unknown = [name for name in present if name not in expected and name not in ignored]
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
_JSON_TEXT_TYPES = {str, type(None)}


def _coerce_values(feature: Mapping[str, str], values: Sequence) -> np.ndarray | pd.Series:
    name = feature["name"]
    if feature["type"] == NUMERIC and isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        return _finite(name, values.astype("float64"))  # a tensor: no per-value look needed
    kinds = set(map(type, values))
    if feature["type"] == NUMERIC:
        if kinds <= _JSON_NUMBER_TYPES:  # numpy turns None into NaN, as AS_NUMBER does
            return _finite(name, np.array(values, dtype="float64"))
        return _to_float(name, pd.Series(values, dtype=object))
    if kinds <= _JSON_TEXT_TYPES:  # AS_CATEGORY keeps text as it is and None missing
        return np.array([np.nan if value is None else value for value in values], dtype=object)
    return _to_category_strings(pd.Series(values, dtype=object)).to_numpy()


def _to_float(name: str, values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype):
        raise FeatureError(f"column {name!r} is numeric but got boolean value(s), e.g. {values.head(3).tolist()}")
    if pd.api.types.is_numeric_dtype(values.dtype):
        return _finite(name, values.astype("float64"))
    is_bool = values.map(lambda value: isinstance(value, bool | np.bool_))
    if is_bool.any():
        raise FeatureError(f"column {name!r} is numeric but got boolean value(s) {values[is_bool].head(3).tolist()}")
    try:
        converted = _apply(AS_NUMBER, values)
    except (TypeError, ValueError) as error:
        bad = values[~values.map(_is_number)]
        if bad.empty:
            raise FeatureError(f"column {name!r} is numeric but its values cannot be typed: {error}") from error
        examples = bad.head(3).tolist()
        raise FeatureError(
            f"column {name!r} is numeric but got {len(bad)} non-numeric value(s), e.g. {examples}"
        ) from error
    return _finite(name, converted)


def _is_number(value) -> bool:
    """Whether AS_NUMBER converts ``value`` (numpy's float conversion: numbers, their text, None, "nan")."""
    if value is None:
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _finite(name: str, values):
    # scikit-learn rejects infinity deep inside predict; name the column here instead.
    infinite = np.isinf(np.asarray(values))
    if infinite.any():
        raise FeatureError(f"column {name!r} has {int(infinite.sum())} infinite value(s); use null for unknown")
    return values


def _apply(calls, values):
    return reduce(lambda typed, call: call(typed), calls, values)


def _to_category_strings(values: pd.Series) -> pd.Series:
    """AS_CATEGORY's text as plain Python strings, missing values as NaN (what pandas and Evidently expect)."""
    texts = _apply(AS_CATEGORY, values)
    return texts.astype(object).where(texts.notna(), np.nan)
