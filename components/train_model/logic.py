"""Fits a scikit-learn Pipeline (preprocessing + estimator) and describes it in a model card."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.utils._param_validation import Interval

from components._common.scoring import CLASSIFICATION, REGRESSION, check_task, score
from model_bundle import AS_CATEGORY, AS_NUMBER, CATEGORICAL, NUMERIC, ModelCard, infer_feature_types

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


def train(
    frame: pd.DataFrame,
    target: str,
    task: str,
    model_type: str = DEFAULT_MODEL_TYPE,
    hyperparameters: dict | None = None,
    seed: int = 42,
    validation_fraction: float = 0.2,
    excluded_columns: Mapping[str, str] | None = None,
) -> tuple[Pipeline, ModelCard]:
    """Fits the model on ``frame``; returns it with its model card (everything but file digests and versions).

    ``excluded_columns``: columns that are not features (name -> why, from the schema's column roles); the card
    records them. With a ``validation_fraction``, a copy of the model is first fitted without that share of the
    rows and scored on them: the ``validation_scores`` that model selection compares, never the test set's. The
    model returned is then fitted on every row.
    """
    hyperparameters = dict(hyperparameters or {})
    excluded_columns = dict(excluded_columns or {})
    if target not in frame.columns:
        raise TrainingError(f"target column {target!r} not found; columns are {list(frame.columns)}")
    absent = [name for name in excluded_columns if name not in frame.columns]
    if absent:
        raise TrainingError(f"excluded column(s) {absent} not found; columns are {list(frame.columns)}")
    labelled = frame[frame[target].notna()]
    if labelled.empty:
        raise TrainingError(f"no rows with a value in target column {target!r}")
    features = infer_feature_types(labelled, exclude=[target, *excluded_columns])
    if not features:
        raise TrainingError(f"no feature columns besides target {target!r} and the excluded {list(excluded_columns)}")

    pipeline = build_pipeline(features, task, model_type, hyperparameters, seed)
    x = labelled[[f["name"] for f in features]]  # raw: the model types its own input
    y = labelled[target].astype(str) if task == CLASSIFICATION else labelled[target].astype("float64")
    validation_scores, validation_rows = validate(pipeline, x, y, task, validation_fraction, seed)
    started = time.perf_counter()
    pipeline.fit(x, y)
    fit_seconds = time.perf_counter() - started

    # One real row, JSON-safe (missing values as null): documents the request format and feeds `make demo`'s curl.
    input_example = json.loads(x.head(1).to_json(orient="records"))[0]
    card = ModelCard(
        target=target,
        task=task,
        features=features,
        excluded_columns=excluded_columns,
        classes=pipeline.classes_.tolist() if task == CLASSIFICATION else None,
        model_type=model_type,
        estimator=type(pipeline.named_steps["estimator"]).__name__,
        hyperparameters=hyperparameters,
        seed=seed,
        training_rows=len(labelled),
        fit_seconds=round(fit_seconds, 3),
        training_scores=score(task, y, pipeline.predict(x)),
        validation_fraction=validation_fraction,
        validation_rows=validation_rows,
        validation_scores=validation_scores,
        # What the constant baseline predicts (the training mean, or the most frequent class, as evaluate_model's
        # DummyRegressor / DummyClassifier): the gate's reference when there is no champion yet.
        baseline_prediction=float(y.mean()) if task == REGRESSION else _most_frequent(y),
        input_example=input_example,
        # Deciles of the training target: the server counts predictions per range to show their distribution.
        prediction_buckets=(
            np.unique(np.quantile(y, np.linspace(0.1, 0.9, 9))).tolist() if task == REGRESSION else None
        ),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return pipeline, card


def _most_frequent(labels: pd.Series) -> str:
    """The most frequent label; of equally frequent ones the first in sorted order, as DummyClassifier picks."""
    counts = labels.value_counts()
    return str(min(counts[counts == counts.max()].index))


def validate(
    pipeline: Pipeline, x: pd.DataFrame, y: pd.Series, task: str, validation_fraction: float, seed: int
) -> tuple[dict[str, float] | None, int]:
    """Scores of a copy of ``pipeline`` fitted without a held-out share of the rows, on those rows.

    Classification holds out a stratified share when every class has at least two rows.
    """
    if not validation_fraction:
        return None, 0
    if not 0 < validation_fraction < 1:
        raise TrainingError(f"parameter validation_fraction must be in [0, 1), got {validation_fraction}")
    held_out = int(np.ceil(len(y) * validation_fraction))
    if held_out < 1 or len(y) - held_out < 2:
        raise TrainingError(
            f"{len(y)} training rows are too few to hold out validation_fraction={validation_fraction}; "
            "set it to 0 to skip validation"
        )
    stratify = None
    if task == CLASSIFICATION:
        counts = y.value_counts()
        if counts.min() >= 2 and held_out >= len(counts) and len(y) - held_out >= len(counts):
            stratify = y
    fit_at, held_at = train_test_split(np.arange(len(y)), test_size=held_out, random_state=seed, stratify=stratify)
    candidate = clone(pipeline).fit(x.iloc[fit_at], y.iloc[fit_at])
    return score(task, y.iloc[held_at], candidate.predict(x.iloc[held_at])), held_out
