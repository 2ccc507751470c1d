"""A candidate configuration (``model_type`` + ``hyperparameters``): parsed, checked against scikit-learn's
estimator, and built into the full Pipeline (typing, imputation, scaling, one-hot encoding, estimator) that
train_model fits.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.utils._param_validation import Interval

from components._common.scoring import CLASSIFICATION, REGRESSION, check_task
from model_bundle import AS_CATEGORY, AS_NUMBER, CATEGORICAL, NUMERIC

ESTIMATORS = {
    "hist_gradient_boosting": {
        REGRESSION: HistGradientBoostingRegressor,
        CLASSIFICATION: HistGradientBoostingClassifier,
    },
    "random_forest": {REGRESSION: RandomForestRegressor, CLASSIFICATION: RandomForestClassifier},
    "linear": {REGRESSION: Ridge, CLASSIFICATION: LogisticRegression},
}
# One-hot columns per categorical feature at most; rarer categories share an "infrequent" column.
MAX_CATEGORIES = 50
DEFAULT_MODEL_TYPE = "hist_gradient_boosting"
# A random forest's trees grow with the rows each is fitted on (time about n log n, memory about n per tree): past
# this many rows each tree is fitted on a bootstrap sample of this many, scikit-learn's ``max_samples`` as a
# fraction, unless the candidate sets ``max_samples`` itself (docs/benchmarks.md, "Random forest: rows per tree").
FOREST_ROWS_PER_TREE = 100_000
CANDIDATE_KEYS = ("model_type", "hyperparameters")  # of a candidate configuration


class TrainingError(ValueError):
    """Training cannot start as configured; the message names the parameter or column."""


def parse_candidate(candidate: Mapping) -> tuple[str, dict]:
    """``(model_type, hyperparameters)`` of a candidate configuration such as
    ``{"model_type": "random_forest", "hyperparameters": {"n_estimators": 300}}`` (both keys optional)."""
    if not isinstance(candidate, Mapping):
        raise TrainingError(f"a candidate must be an object with keys {list(CANDIDATE_KEYS)}, got {candidate!r}")
    unknown = sorted(set(candidate) - set(CANDIDATE_KEYS))
    if unknown:
        raise TrainingError(f"candidate {dict(candidate)} has unknown key(s) {unknown}; known: {list(CANDIDATE_KEYS)}")
    hyperparameters = candidate.get("hyperparameters") or {}
    if not isinstance(hyperparameters, Mapping):
        raise TrainingError(f"candidate {dict(candidate)}: hyperparameters must be an object, got {hyperparameters!r}")
    return candidate.get("model_type") or DEFAULT_MODEL_TYPE, dict(hyperparameters)


def fitted_hyperparameters(model_type: str, hyperparameters: Mapping, rows: int) -> dict:
    """The hyperparameters train_model fits a candidate on ``rows`` rows with, as its model card records them: the
    candidate's own, and for a random forest with bootstrap samples on more than ``FOREST_ROWS_PER_TREE`` rows,
    ``max_samples`` so that each tree sees that many (the forest as a whole still sees every row)."""
    fitted = dict(hyperparameters)
    if (
        model_type == "random_forest"
        and "max_samples" not in fitted
        and fitted.get("bootstrap", True) is not False
        and rows > FOREST_ROWS_PER_TREE
    ):
        fitted["max_samples"] = FOREST_ROWS_PER_TREE / rows
    return fitted


# scikit-learn's named constraints that take integers (an int seed; a verbosity level).
INTEGER_CONSTRAINTS = ("random_state", "verbose")


def restore_integers(estimator_class: type, hyperparameters: dict) -> dict:
    """Gives integer-only parameters their int back: ``{"max_depth": 3.0}`` becomes ``{"max_depth": 3}``.

    KFP passes dict parameters through protobuf Struct, where every number is a float. A whole float is
    converted when the parameter accepts it as an integer and not as a real number (scikit-learn's own
    constraints decide): ``min_samples_leaf=2.0`` becomes 2, while ``max_features=1.0`` stays the fraction
    1.0, which is a valid real value there. Integers are also what the constraints ``"random_state"``,
    ``"verbose"`` and the type ``Integral`` (``n_jobs``) take.
    """
    constraints = getattr(estimator_class, "_parameter_constraints", {})
    restored = dict(hyperparameters)
    for name, value in hyperparameters.items():
        if not (isinstance(value, float) and value.is_integer()):
            continue
        allowed = constraints.get(name, [])
        as_integer = any(
            (isinstance(c, Interval) and issubclass(c.type, Integral) and int(value) in c)
            or c in INTEGER_CONSTRAINTS
            or (isinstance(c, type) and issubclass(c, Integral))
            for c in allowed
        )
        as_real = any(
            (isinstance(c, Interval) and not issubclass(c.type, Integral) and value in c)
            or (isinstance(c, type) and issubclass(c, Real) and not issubclass(c, Integral))
            for c in allowed
        )
        if as_integer and not as_real:
            restored[name] = int(value)
    return restored


def build_pipeline(
    features: list[dict[str, str]], task: str, model_type: str, hyperparameters: dict, seed: int
) -> Pipeline:
    """The full model, from raw columns: type, impute and scale numeric columns; type, impute and one-hot
    categorical ones; then the estimator. The typing steps make model.joblib stand on its own (model_bundle.features).
    """
    check_task(task)
    if model_type not in ESTIMATORS:
        raise TrainingError(f"parameter model_type must be one of {sorted(ESTIMATORS)}, got {model_type!r}")
    estimator_class = ESTIMATORS[model_type][task]
    known = estimator_class().get_params()
    unknown = sorted(set(hyperparameters) - set(known))
    if unknown:
        raise TrainingError(
            f"unknown hyperparameter(s) {unknown} for {estimator_class.__name__}; valid: {sorted(known)}"
        )
    params = restore_integers(estimator_class, hyperparameters)
    if "random_state" in known:
        params.setdefault("random_state", seed)
    try:
        estimator = estimator_class(**params)
        estimator._validate_params()
    except (TypeError, ValueError) as error:
        raise TrainingError(f"invalid hyperparameters for {estimator_class.__name__}: {error}") from error

    numeric = [f["name"] for f in features if f["type"] == NUMERIC]
    categorical = [f["name"] for f in features if f["type"] == CATEGORICAL]
    # Selected by name: the fitted model takes a DataFrame with these columns in any order, and ignores others.
    preprocess = ColumnTransformer(
        [
            (
                "numeric",
                Pipeline(
                    [
                        *_typing_steps(AS_NUMBER),
                        ("impute", SimpleImputer(strategy="median")),
                        ("scale", StandardScaler()),
                    ]
                ),
                numeric,
            ),
            (
                "categorical",
                Pipeline(
                    [
                        *_typing_steps(AS_CATEGORY),
                        # AS_CATEGORY marks missing values pd.NA (pandas' string dtype).
                        ("impute", SimpleImputer(strategy="constant", fill_value="missing", missing_values=pd.NA)),
                        (
                            "one_hot",
                            OneHotEncoder(
                                handle_unknown="infrequent_if_exist",
                                max_categories=MAX_CATEGORIES,
                                sparse_output=False,
                            ),
                        ),
                    ]
                ),
                categorical,
            ),
        ],
        sparse_threshold=0.0,
    )
    return Pipeline([("preprocess", preprocess), ("estimator", estimator)])


def _typing_steps(calls) -> list[tuple[str, FunctionTransformer]]:
    return [
        (f"type_{position}", FunctionTransformer(call, feature_names_out="one-to-one"))
        for position, call in enumerate(calls)
    ]
