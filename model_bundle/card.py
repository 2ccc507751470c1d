"""The model card (``model.json``): what a trained model is, typed, in one place for both runtimes.

train_model fills the training fields, ``model_bundle.save`` the integrity fields (digests, library versions,
format); every reader gets a ``ModelCard`` from ``ModelCard.from_json``, which names what is wrong with a card.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from model_bundle.features import FEATURE_TYPES
from model_bundle.groups import check_groups

REGRESSION = "regression"
CLASSIFICATION = "classification"
TASKS = (REGRESSION, CLASSIFICATION)

CARD_FILE = "model.json"
MODEL_FILE = "model.joblib"
# 2: the model types its own raw input (model_bundle.features.AS_NUMBER, AS_CATEGORY); 1 needed this package to.
# A field added with a default (sensitive_groups) keeps the format: a card without it reads as before, so the
# models already registered stay comparable, servable and ready to roll back to. The version changes only when a
# card or a model file can no longer be used as it is written.
FORMAT_VERSION = 2
REQUIRED_KEYS = ("format_version", "sha256", "task", "target", "features", "library_versions")


class CardError(ValueError):
    """A model card is malformed; the message names the card and the field."""


@dataclass(frozen=True)
class ModelCard:
    # What the model predicts, from what.
    target: str
    task: str  # REGRESSION or CLASSIFICATION
    features: list[dict[str, str]]  # {"name", "type"} per input column, in the model's order
    excluded_columns: dict[str, str] = field(default_factory=dict)  # training columns left out, with why
    # Column (a feature or an excluded column) -> its most frequent training groups, most frequent first
    # (model_bundle.groups): the model server counts predictions per group of these columns.
    sensitive_groups: dict[str, list[str]] = field(default_factory=dict)
    classes: list[str] | None = None  # a classifier's labels, in predict_proba's column order
    # How it was trained.
    model_type: str = ""
    estimator: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    training_rows: int = 0  # rows fitted: a sample of the train set when it held more than max_training_rows
    training_rows_available: int = 0  # labelled rows of the train set (0 in cards written before it was recorded)
    fit_seconds: float = 0.0
    training_scores: dict[str, float] = field(default_factory=dict)
    validation_fraction: float = 0.0
    validation_rows: int = 0
    validation_scores: dict[str, float] | None = None
    # What the constant baseline predicts (training mean, or most frequent class): the gate's cold-start reference.
    baseline_prediction: float | str | None = None
    input_example: dict[str, Any] = field(default_factory=dict)  # one real training row, JSON values
    prediction_buckets: list[float] | None = None  # a regressor's training-target deciles
    created_at: str = ""
    data_content_sha256: str = ""
    # Written by model_bundle.save: what loading verifies.
    format_version: int = FORMAT_VERSION
    model_file: str = MODEL_FILE
    sha256: str = ""
    documents: dict[str, str] = field(default_factory=dict)  # sha256 of each JSON document beside the model
    library_versions: dict[str, str] = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str]:
        return [feature["name"] for feature in self.features]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str = "model card") -> ModelCard:
        """The card of a parsed ``model.json``; raises CardError naming ``source`` and the field at fault."""
        if not isinstance(data, Mapping):
            raise CardError(f"{source} must be a JSON object, got {type(data).__name__}")
        missing = [key for key in REQUIRED_KEYS if key not in data]
        if missing:
            raise CardError(f"{source} lacks required key(s) {missing}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CardError(f"{source} has unknown key(s) {unknown}; known: {sorted(known)}")
        card = cls(**data)
        card.check(source)
        return card

    def check(self, source: str = "model card") -> None:
        if self.task not in TASKS:
            raise CardError(f"{source}: task must be one of {list(TASKS)}, got {self.task!r}")
        for feature in self.features:
            if not isinstance(feature, Mapping) or set(feature) != {"name", "type"}:
                raise CardError(f"{source}: each feature must be {{'name': ..., 'type': ...}}, got {feature!r}")
            if feature["type"] not in FEATURE_TYPES:
                raise CardError(
                    f"{source}: feature {feature['name']!r} has type {feature['type']!r}, expected one of "
                    f"{list(FEATURE_TYPES)}"
                )
        if self.task == CLASSIFICATION and (self.classes is None or len(self.classes) == 0):
            raise CardError(f"{source}: a classification model must list its classes")
        problem = check_groups(self.sensitive_groups, [*self.feature_names, *self.excluded_columns])
        if problem:
            raise CardError(f"{source}: {problem}")
