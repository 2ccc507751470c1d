"""Saving and loading a model bundle: ``model.joblib``, its card ``model.json`` and the JSON documents the card
lists, each checked against the digest recorded for it before it is used."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from model_bundle.card import CARD_FILE, CLASSIFICATION, FORMAT_VERSION, MODEL_FILE, CardError, ModelCard
from model_bundle.features import FeatureError
from model_bundle.schema import SCHEMA_FILE

# A pickled scikit-learn model is only trusted by the exact version that wrote it.
VERSION_LOCKED_LIBRARIES = ("scikit-learn",)


class BundleError(RuntimeError):
    """A model bundle is missing, malformed or fails its integrity check; the message names the file."""


class BundleFormatError(BundleError):
    """A model bundle written in another format version, or its model pickled by another version of a
    VERSION_LOCKED_LIBRARIES library: intact, but this code cannot use it as it is."""


@dataclass(frozen=True)
class Bundle:
    model: Any
    card: ModelCard
    directory: Path
    documents: dict[str, dict] = field(default_factory=dict)

    @property
    def schema(self) -> dict | None:
        """The data contract of the training data (``schema.json``), or None for a model saved without one."""
        return self.documents.get(SCHEMA_FILE)

    @property
    def features(self) -> list[dict[str, str]]:
        return self.card.features

    @property
    def feature_names(self) -> list[str]:
        return self.card.feature_names

    @property
    def task(self) -> str:
        return self.card.task

    @property
    def non_feature_columns(self) -> list[str]:
        """The training table's other columns (target, excluded): a request may send whole rows, these are ignored."""
        return [self.card.target, *self.card.excluded_columns]

    def predict(self, features: pd.DataFrame):
        """Predictions for raw feature columns: the model types its own input, so this is ``model.predict``.

        Other columns are ignored; a missing feature column raises FeatureError naming it.
        """
        return self.model.predict(self._with_features(features))

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Class probabilities for raw feature columns (as in ``predict``): one row per row of ``features``,
        one column per class of ``card.classes``, in that order.

        Raises BundleError for a regression model, or an estimator without class probabilities.
        """
        name = f"model {self.directory} ({self.card.estimator or type(self.model).__name__})"
        if self.task != CLASSIFICATION:
            raise BundleError(f"{name} is a {self.task} model; only a classifier has class probabilities")
        if not hasattr(self.model, "predict_proba"):
            raise BundleError(f"{name} has no predict_proba: its estimator gives no class probabilities")
        # Probability columns follow the fitted model's classes_; the card promises its own order to callers.
        fitted = [str(label) for label in self.model.classes_]
        listed = [str(label) for label in self.card.classes]
        if fitted != listed:
            raise BundleError(f"{name} has classes {fitted} but its card lists {listed}")
        return self.model.predict_proba(self._with_features(features))

    def _with_features(self, frame: pd.DataFrame) -> pd.DataFrame:
        # scikit-learn would say "columns are missing" in a ValueError; callers tell a missing column by its type.
        missing = [name for name in self.feature_names if name not in frame.columns]
        if missing:
            raise FeatureError(f"missing column(s) {missing}; the model expects {self.feature_names}")
        return frame


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    versions = {name: version(name) for name in ("scikit-learn", "numpy", "pandas", "joblib")}
    versions["python"] = platform.python_version()
    return versions


def save(directory: str | Path, model: Any, card: ModelCard, documents: dict[str, dict] | None = None) -> ModelCard:
    """Writes ``model``, its card and ``documents`` into ``directory``; returns the card as written (with the
    digests, library versions and format version filled in).

    ``documents``: JSON files that travel with the model, by file name (``schema.json``: the data contract); the
    card records each one's sha256, so they are verified on loading like the model itself.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / MODEL_FILE
    joblib.dump(model, model_path)
    digests = {}
    for name, document in (documents or {}).items():
        check_document_name(name)
        (directory / name).write_text(json.dumps(document, indent=2, sort_keys=True, default=_json_default) + "\n")
        digests[name] = file_sha256(directory / name)
    written = dataclasses.replace(
        card,
        format_version=FORMAT_VERSION,
        model_file=MODEL_FILE,
        sha256=file_sha256(model_path),
        documents=digests,
        library_versions=library_versions(),
    )
    written.check(str(directory / CARD_FILE))
    (directory / CARD_FILE).write_text(
        json.dumps(written.to_json(), indent=2, sort_keys=True, default=_json_default) + "\n"
    )
    return written


def read_card(directory: str | Path) -> ModelCard:
    card_path = Path(directory) / CARD_FILE
    if not card_path.is_file():
        raise BundleError(f"no model card: {card_path} does not exist")
    try:
        card = json.loads(card_path.read_text())
    except json.JSONDecodeError as error:
        raise BundleError(f"model card {card_path} is not valid JSON: {error}") from error
    if isinstance(card, dict) and "format_version" in card and card["format_version"] != FORMAT_VERSION:
        raise BundleFormatError(
            f"model card {card_path} has format_version {card['format_version']}, expected {FORMAT_VERSION}: "
            "the model was written by another release of this project; train it again"
        )
    try:
        return ModelCard.from_json(card, f"model card {card_path}")
    except (CardError, TypeError) as error:
        raise BundleError(str(error)) from error


def load(directory: str | Path, expected_sha256: str | None = None) -> Bundle:
    """Loads a bundle after checking model.joblib against its card and, when given, the deployer's digest.

    joblib loading runs code, so the bytes are verified before they are unpickled.
    """
    directory = Path(directory)
    card = read_card(directory)
    model_path = directory / MODEL_FILE
    if not model_path.is_file():
        raise BundleError(f"no model file: {model_path} does not exist")
    actual = file_sha256(model_path)
    if expected_sha256 and actual != expected_sha256:
        raise BundleError(
            f"sha256 digest mismatch for {model_path}: expected {expected_sha256}, found {actual}; refusing to load"
        )
    _check_recorded_digest(model_path, actual, card.sha256)
    runtime = library_versions()
    for name in VERSION_LOCKED_LIBRARIES:
        trained_with = card.library_versions.get(name)
        if trained_with != runtime[name]:
            raise BundleFormatError(
                f"{model_path} was written by {name} {trained_with} but this runtime has {runtime[name]}; "
                "the pins in requirements.txt and images/serving/requirements.txt must match"
            )
    documents = read_documents(directory, card)
    return Bundle(model=joblib.load(model_path), card=card, directory=directory, documents=documents)


def check_document_name(name: str) -> None:
    """Refuses a document name that is not a plain ``*.json`` file name beside the model (a path, the card)."""
    if Path(name).name != name or name in (MODEL_FILE, CARD_FILE) or not name.endswith(".json"):
        raise BundleError(f"document name {name!r} must be a plain *.json file name other than {CARD_FILE}")


def read_documents(directory: str | Path, card: ModelCard) -> dict[str, dict]:
    """The JSON documents ``card`` lists, read from ``directory``, each checked against the sha256 the card
    records; raises BundleError naming a missing, altered or malformed file and both digests."""
    directory = Path(directory)
    documents = {}
    for name, recorded in card.documents.items():
        check_document_name(name)  # a card names its documents: never a path outside the bundle
        path = directory / name
        if not path.is_file():
            raise BundleError(f"{path} is listed in the model card but does not exist")
        _check_recorded_digest(path, file_sha256(path), recorded)
        try:
            documents[name] = json.loads(path.read_text())
        except json.JSONDecodeError as error:  # digest-checked, so written malformed: name it all the same
            raise BundleError(f"{path} is not valid JSON: {error}") from error
    return documents


def _check_recorded_digest(path: Path, actual: str, recorded: str) -> None:
    if actual != recorded:
        raise BundleError(
            f"sha256 digest mismatch for {path}: its card records {recorded}, found {actual}; refusing to load"
        )


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays (class labels, metrics) are not JSON-native.
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"model card value {value!r} of type {type(value).__name__} is not JSON serialisable")
