"""How train_model fits a candidate: the Pipeline (built by ``candidate``) fitted on the labelled rows, its
held-out validation scores, and the model card and model directory that record it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from components._common.datasets import read_dataset
from components._common.fairness import check_sensitive_columns
from components._common.scoring import CLASSIFICATION, REGRESSION, score
from components.train_model.candidate import DEFAULT_MODEL_TYPE, TrainingError, build_pipeline, parse_candidate
from model_bundle import SCHEMA_FILE, ModelCard, infer_feature_types, save, top_groups
from model_bundle import excluded_columns as schema_excluded_columns


def train(
    frame: pd.DataFrame,
    target: str,
    task: str,
    model_type: str = DEFAULT_MODEL_TYPE,
    hyperparameters: dict | None = None,
    seed: int = 42,
    validation_fraction: float = 0.2,
    excluded_columns: Mapping[str, str] | None = None,
    data_content_sha256: str = "",
    sensitive_columns: Sequence[str] = (),
) -> tuple[Pipeline, ModelCard]:
    """Fits the model on ``frame``; returns it with its model card (everything but file digests and versions).

    ``excluded_columns``: columns that are not features (name -> why, from the schema's column roles); the card
    records them, and ``data_content_sha256`` (the ingested data's hash) as lineage. ``sensitive_columns``
    (features or excluded columns, not the target): the card lists each one's most frequent groups in the trained
    rows (``sensitive_groups``, model_bundle.groups), the groups the model server counts predictions for. With a
    ``validation_fraction``, a copy of the model is first fitted without that share of the rows and scored on them:
    the ``validation_scores`` that model selection compares, never the test set's. The model returned is then
    fitted on every row.
    """
    hyperparameters = dict(hyperparameters or {})
    excluded_columns = dict(excluded_columns or {})
    if target not in frame.columns:
        raise TrainingError(f"target column {target!r} not found; columns are {list(frame.columns)}")
    absent = [name for name in excluded_columns if name not in frame.columns]
    if absent:
        raise TrainingError(f"excluded column(s) {absent} not found; columns are {list(frame.columns)}")
    try:
        sensitive_columns = check_sensitive_columns(sensitive_columns, frame.columns, target=target)
    except ValueError as error:
        raise TrainingError(str(error)) from error
    labelled = frame[frame[target].notna()]
    if labelled.empty:
        raise TrainingError(f"no rows with a value in target column {target!r}")
    features = infer_feature_types(labelled, exclude=[target, *excluded_columns])
    if not features:
        raise TrainingError(f"no feature columns besides target {target!r} and the excluded {list(excluded_columns)}")

    pipeline = build_pipeline(features, task, model_type, hyperparameters, seed)
    x = labelled[[f["name"] for f in features]]  # raw: the model types its own input
    y = labelled[target].astype(str) if task == CLASSIFICATION else labelled[target].astype("float64")
    validation_scores, validation_rows = score_held_out(pipeline, x, y, task, validation_fraction, seed)
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
        sensitive_groups=top_groups(labelled, sensitive_columns),
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
        data_content_sha256=data_content_sha256,
    )
    return pipeline, card


def train_model_directory(
    train_path: str | Path,
    document_paths: Mapping[str, str | Path],
    model_dir: str | Path,
    *,
    target: str,
    task: str,
    candidate: Mapping,
    seed: int = 42,
    validation_fraction: float = 0.2,
    data_content_sha256: str = "",
    sensitive_columns: Sequence[str] = (),
) -> ModelCard:
    """The step: fits ``candidate`` on the rows at ``train_path`` and writes the model directory at ``model_dir``
    with the JSON documents at ``document_paths`` (file name -> path; ``schema.json`` is required: its column roles
    decide the features); returns the saved card (with digests and library versions). ``sensitive_columns``: see
    ``train``."""
    documents = {name: json.loads(Path(path).read_text()) for name, path in document_paths.items()}
    if SCHEMA_FILE not in documents:
        raise TrainingError(f"no {SCHEMA_FILE} among the documents {sorted(documents)}: its column roles are required")
    model_type, hyperparameters = parse_candidate(candidate)
    pipeline, card = train(
        read_dataset(train_path),
        target=target,
        task=task,
        model_type=model_type,
        hyperparameters=hyperparameters,
        seed=seed,
        validation_fraction=validation_fraction,
        excluded_columns=schema_excluded_columns(documents[SCHEMA_FILE]),  # the schema's column roles
        data_content_sha256=data_content_sha256,
        sensitive_columns=sensitive_columns,
    )
    return save(model_dir, pipeline, card, documents)


def card_metrics(card: ModelCard) -> dict[str, float]:
    """The step's metrics: training (``train_<metric>``) and validation scores, fit time and row count."""
    return {
        **{f"train_{name}": value for name, value in card.training_scores.items()},
        **{f"validation_{name}": value for name, value in (card.validation_scores or {}).items()},
        "fit_seconds": card.fit_seconds,
        "training_rows": card.training_rows,
    }


def _most_frequent(labels: pd.Series) -> str:
    """The most frequent label; of equally frequent ones the first in sorted order, as DummyClassifier picks."""
    counts = labels.value_counts()
    return str(min(counts[counts == counts.max()].index))


def score_held_out(
    pipeline: Pipeline, x: pd.DataFrame, y: pd.Series, task: str, validation_fraction: float, seed: int
) -> tuple[dict[str, float] | None, int]:
    """``(scores, rows held out)`` of a copy of ``pipeline`` fitted without a ``validation_fraction`` share of the
    rows, scored on those rows; ``(None, 0)`` for a fraction of 0.

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
