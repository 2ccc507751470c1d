"""How train_model fits a candidate: the Pipeline (built by ``candidate``) fitted on the labelled rows, its
held-out validation scores, and the model card and model directory that record it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sklearn.base import clone
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from components._common.datasets import read_dataset
from components._common.fairness import check_sensitive_columns
from components._common.sampling import SmallestKeys, proportional_counts, row_keys
from components._common.scoring import CLASSIFICATION, REGRESSION, predict_in_chunks, score
from components.train_model.candidate import (
    DEFAULT_MODEL_TYPE,
    TrainingError,
    build_pipeline,
    fitted_hyperparameters,
    parse_candidate,
)
from model_bundle import SCHEMA_FILE, ModelCard, infer_feature_types, save, top_groups
from model_bundle import excluded_columns as schema_excluded_columns

# Rows fitted at most by default: at 500,000 rows every default candidate scores within 0.0033 of its score on twice
# as many or more, and the random forest fits in 3.3 GB, under the 5Gi model_memory_limit (docs/benchmarks.md,
# "Learning curve: max_training_rows", bench/learning_curve.py).
DEFAULT_MAX_TRAINING_ROWS = 500_000
# The sample's keys: another stream than prepare_data's split keys for the same seed (its rows are numbered alike).
SAMPLE_KEY_SALT = 0x5EED_5A3B
SAMPLE_BATCH_ROWS = 131_072  # rows read at a time while sampling: the train set never is in memory whole


def _on_every_core():
    """While a candidate fits: joblib's threading backend, with as many workers as the process may use cores
    (joblib.cpu_count: the pod's CPU limit, its affinity). A random forest then builds as many trees at a time,
    sharing the data, and they are the trees one thread builds, bit for bit (each tree's seed is drawn before any is
    built). n_jobs stays unset on the estimator: the saved model serves a request in one thread, as before."""
    return joblib.parallel_config(backend="threading", n_jobs=joblib.cpu_count())


def _fit(pipeline: Pipeline, x: pd.DataFrame, y: pd.Series, candidate: str) -> Pipeline:
    """``pipeline`` fitted on every core (``_on_every_core``). scikit-learn checks each hyperparameter when the
    estimator is built (``build_pipeline``), but some values, or combinations of them, only when it fits (Ridge's
    solver "lbfgs" without positive=True): its refusal is a TrainingError naming ``candidate``."""
    try:
        with _on_every_core():
            return pipeline.fit(x, y)
    except ValueError as error:
        estimator = type(pipeline.named_steps["estimator"]).__name__
        # Most such refusals are of hyperparameters, but a few are of the data (e.g. one class): say both.
        raise TrainingError(
            f"{candidate} failed to fit ({estimator}); scikit-learn: {error} (if it names a hyperparameter, change "
            "it in candidates)"
        ) from error


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
    training_rows_available: int | None = None,
) -> tuple[Pipeline, ModelCard]:
    """Fits the model on ``frame``; returns it with its model card (everything but file digests and versions).

    ``excluded_columns``: columns that are not features (name -> why, from the schema's column roles); the card
    records them, and ``data_content_sha256`` (the ingested data's hash) as lineage. ``sensitive_columns``
    (features or excluded columns, not the target): the card lists each one's most frequent groups in the trained
    rows (``sensitive_groups``, model_bundle.groups), the groups the model server counts predictions for. With a
    ``validation_fraction``, a copy of the model is first fitted without that share of the rows and scored on them:
    the ``validation_scores`` that model selection compares, never the test set's. The model returned is then
    fitted on every row. ``training_rows_available``: the labelled rows of the train set when ``frame`` is a sample of
    it (``read_training_rows``); the card records both sizes.
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

    hyperparameters = fitted_hyperparameters(model_type, hyperparameters, len(labelled))
    pipeline = build_pipeline(features, task, model_type, hyperparameters, seed)
    x = labelled[[f["name"] for f in features]]  # raw: the model types its own input
    y = labelled[target].astype(str) if task == CLASSIFICATION else labelled[target].astype("float64")
    candidate = f"candidate {model_type} with hyperparameters {hyperparameters}"
    validation_scores, validation_rows = score_held_out(pipeline, x, y, task, validation_fraction, seed, candidate)
    started = time.perf_counter()
    _fit(pipeline, x, y, candidate)
    fit_seconds = time.perf_counter() - started
    fitted = pipeline.named_steps["estimator"].get_params()

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
        # As fitted: a KFP float (7.0) given back its int, a forest's computed max_samples.
        hyperparameters={name: fitted[name] for name in hyperparameters},
        seed=seed,
        training_rows=len(labelled),
        training_rows_available=len(labelled) if training_rows_available is None else training_rows_available,
        fit_seconds=round(fit_seconds, 3),
        training_scores=score(task, y, predict_in_chunks(pipeline.predict, x)),
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
    max_training_rows: int = DEFAULT_MAX_TRAINING_ROWS,
) -> ModelCard:
    """The step: fits ``candidate`` on the rows at ``train_path`` and writes the model directory at ``model_dir``
    with the JSON documents at ``document_paths`` (file name -> path; ``schema.json`` is required: its column roles
    decide the features); returns the saved card (with digests and library versions). ``sensitive_columns``: see
    ``train``; ``max_training_rows``: see ``read_training_rows``."""
    documents = {name: json.loads(Path(path).read_text()) for name, path in document_paths.items()}
    if SCHEMA_FILE not in documents:
        raise TrainingError(f"no {SCHEMA_FILE} among the documents {sorted(documents)}: its column roles are required")
    model_type, hyperparameters = parse_candidate(candidate)
    frame, available = read_training_rows(train_path, target, task, max_training_rows, seed)
    pipeline, card = train(
        frame,
        target=target,
        task=task,
        model_type=model_type,
        hyperparameters=hyperparameters,
        seed=seed,
        validation_fraction=validation_fraction,
        excluded_columns=schema_excluded_columns(documents[SCHEMA_FILE]),  # the schema's column roles
        data_content_sha256=data_content_sha256,
        sensitive_columns=sensitive_columns,
        training_rows_available=available,
    )
    return save(model_dir, pipeline, card, documents)


def read_training_rows(
    path: str | Path,
    target: str,
    task: str,
    max_training_rows: int = DEFAULT_MAX_TRAINING_ROWS,
    seed: int = 42,
    batch_rows: int = SAMPLE_BATCH_ROWS,
) -> tuple[pd.DataFrame, int | None]:
    """The rows to fit on, and how many labelled rows the train set at ``path`` holds (None: ``train`` counts them).

    At most ``max_training_rows`` (0: every row) labelled rows: past that, a seeded sample drawn over record
    batches, so memory holds the sample, never the whole train set. The sample is stratified for classification
    (each class in proportion, every class kept, exact counts: ``_common.sampling.proportional_counts``) and, within
    a class, the rows with the smallest seeded keys of their row numbers (``row_keys``): the same rows for the same
    seed and data, in file order, whatever the batch size.
    """
    if isinstance(max_training_rows, bool) or not isinstance(max_training_rows, int) or max_training_rows < 0:
        raise TrainingError(
            f"parameter max_training_rows must be a whole number >= 0 (0 fits every row), got {max_training_rows!r}"
        )
    parquet = pq.ParquetFile(path)
    if not max_training_rows or parquet.metadata.num_rows <= max_training_rows:
        return read_dataset(path), None
    if target not in parquet.schema_arrow.names:
        raise TrainingError(f"target column {target!r} not found; columns are {parquet.schema_arrow.names}")

    def labelled_batches(columns=None):
        """Per batch: the batch, its labelled rows (positions in the batch), their row numbers in the file and class
        codes (None for regression)."""
        start = 0
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
            labels = batch.column(target)
            labelled = pc.invert(pc.is_null(labels, nan_is_null=True)).to_numpy(zero_copy_only=False)
            at = np.flatnonzero(labelled)
            codes = None
            if task == CLASSIFICATION:
                codes = pc.index_in(labels.take(at), value_set=classes).to_numpy(zero_copy_only=False)
            yield batch, at, at + start, codes
            start += batch.num_rows

    classes = pa.array([], type=parquet.schema_arrow.field(target).type)
    if task == CLASSIFICATION:  # the labels, sorted: class codes that do not depend on the batches
        batches = parquet.iter_batches(batch_size=batch_rows, columns=[target])
        seen = [pc.unique(pc.drop_null(batch.column(target))) for batch in batches]
        classes = pc.unique(pa.concat_arrays(seen)) if seen else classes
        classes = classes.take(pc.sort_indices(classes))
    sizes = np.zeros(max(len(classes), 1), dtype=np.int64)
    for _, at, _, codes in labelled_batches([target]):
        sizes += np.bincount(codes, minlength=len(sizes)) if codes is not None else len(at)
    available = int(sizes.sum())
    if available <= max_training_rows:
        return read_dataset(path), available
    present = (sizes > 0).astype(np.int64)  # a float label column may list NaN among its values: no class
    if present.sum() > max_training_rows:
        raise TrainingError(
            f"max_training_rows={max_training_rows} cannot hold one row of each of the {present.sum()} classes of "
            f"{target!r}; raise it (0 fits every row)"
        )
    counts = proportional_counts(sizes, max_training_rows, low=present)
    sample_seed = seed ^ SAMPLE_KEY_SALT
    smallest = SmallestKeys(sizes, counts)
    while not smallest.done:
        for _, _, rows, codes in labelled_batches([target]):
            smallest.add(row_keys(rows, sample_seed), codes)
        smallest.end_pass()
    chosen = []
    for batch, at, rows, codes in labelled_batches():
        chosen.append(batch.take(at[smallest.thresholds.select(row_keys(rows, sample_seed), codes)]))
    return pa.Table.from_batches(chosen, schema=parquet.schema_arrow).to_pandas(), available


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
    pipeline: Pipeline,
    x: pd.DataFrame,
    y: pd.Series,
    task: str,
    validation_fraction: float,
    seed: int,
    candidate: str,
) -> tuple[dict[str, float] | None, int]:
    """``(scores, rows held out)`` of a copy of ``pipeline`` fitted without a ``validation_fraction`` share of the
    rows, scored on those rows; ``(None, 0)`` for a fraction of 0. ``candidate``: what a refusal to fit names.

    Classification holds out a stratified share of the classes with at least two rows; a class of one row is always
    fitted on (held out, it would leave the fit without that class: with two classes, a fit on one).
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
    positions, kept, stratify = np.arange(len(y)), np.arange(0), None
    if task == CLASSIFICATION:
        counts = y.value_counts()
        single = y.isin(counts.index[counts < 2]).to_numpy()
        positions, kept = positions[~single], positions[single]
        classes = len(counts) - len(kept)
        if len(positions) - held_out < 1:
            raise TrainingError(
                f"{len(y)} training rows, {len(kept)} of them the only row of their class, are too few to hold out "
                f"validation_fraction={validation_fraction}; set it to 0 to skip validation"
            )
        if held_out >= classes and len(positions) - held_out >= classes:
            stratify = y.iloc[positions]
    fit_at, held_at = train_test_split(positions, test_size=held_out, random_state=seed, stratify=stratify)
    if len(kept):
        fit_at = np.sort(np.concatenate([fit_at, kept]))
    fitted = _fit(clone(pipeline), x.iloc[fit_at], y.iloc[fit_at], candidate)
    return score(task, y.iloc[held_at], predict_in_chunks(fitted.predict, x.iloc[held_at])), held_out
