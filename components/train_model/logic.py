"""Fits a scikit-learn Pipeline (preprocessing + estimator) and describes it in a model card."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from numbers import Integral

import numpy as np
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
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils._param_validation import Interval

from components._common.scoring import CLASSIFICATION, REGRESSION, check_task, score
from model_bundle import CATEGORICAL, NUMERIC, coerce_features, infer_feature_types

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


class TrainingError(ValueError):
    """Training cannot start as configured; the message names the parameter or column."""


def restore_integers(estimator_class: type, hyperparameters: dict) -> dict:
    """Gives integer-only parameters their int back: ``{"max_depth": 3.0}`` becomes ``{"max_depth": 3}``.

    KFP passes dict parameters through protobuf Struct, where every number is a float. A whole float is
    converted when the parameter accepts it as an integer and not as a real number (scikit-learn's own
    constraints decide): ``min_samples_leaf=2.0`` becomes 2, while ``max_features=1.0`` stays the fraction
    1.0, which is a valid real value there.
    """
    constraints = getattr(estimator_class, "_parameter_constraints", {})
    restored = dict(hyperparameters)
    for name, value in hyperparameters.items():
        if not (isinstance(value, float) and value.is_integer()):
            continue
        intervals = [c for c in constraints.get(name, []) if isinstance(c, Interval)]
        as_integer = any(issubclass(i.type, Integral) and int(value) in i for i in intervals)
        as_real = any(not issubclass(i.type, Integral) and value in i for i in intervals)
        if as_integer and not as_real:
            restored[name] = int(value)
    return restored


def build_pipeline(
    features: list[dict[str, str]], task: str, model_type: str, hyperparameters: dict, seed: int
) -> Pipeline:
    """The full model: impute + scale numeric columns, impute + one-hot categorical ones, then the estimator."""
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
    preprocess = ColumnTransformer(
        [
            (
                "numeric",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                numeric,
            ),
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
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


def train(
    frame: pd.DataFrame,
    target: str,
    task: str,
    model_type: str = "hist_gradient_boosting",
    hyperparameters: dict | None = None,
    seed: int = 42,
) -> tuple[Pipeline, dict]:
    """Fits the model on ``frame``; returns it with its model card (everything but file digests and versions)."""
    hyperparameters = dict(hyperparameters or {})
    if target not in frame.columns:
        raise TrainingError(f"target column {target!r} not found; columns are {list(frame.columns)}")
    labelled = frame[frame[target].notna()]
    if labelled.empty:
        raise TrainingError(f"no rows with a value in target column {target!r}")
    features = infer_feature_types(labelled, exclude=[target])
    if not features:
        raise TrainingError(f"no feature columns besides target {target!r}")

    pipeline = build_pipeline(features, task, model_type, hyperparameters, seed)
    x = coerce_features(labelled.drop(columns=[target]), features)
    y = labelled[target].astype(str) if task == CLASSIFICATION else labelled[target].astype("float64")
    started = time.perf_counter()
    pipeline.fit(x, y)
    fit_seconds = time.perf_counter() - started

    # One real row, JSON-safe (missing values as null): documents the request format and feeds `make demo`'s curl.
    input_example = json.loads(labelled.drop(columns=[target]).head(1).to_json(orient="records"))[0]
    card = {
        "target": target,
        "task": task,
        "features": features,
        "classes": pipeline.classes_.tolist() if task == CLASSIFICATION else None,
        "model_type": model_type,
        "estimator": type(pipeline.named_steps["estimator"]).__name__,
        "hyperparameters": hyperparameters,
        "seed": seed,
        "training_rows": len(labelled),
        "fit_seconds": round(fit_seconds, 3),
        "training_scores": score(task, y, pipeline.predict(x)),
        "input_example": input_example,
        # Deciles of the training target: the server counts predictions per range to show their distribution.
        "prediction_buckets": (
            np.unique(np.quantile(y, np.linspace(0.1, 0.9, 9))).tolist() if task == REGRESSION else None
        ),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return pipeline, card
