"""Saving and loading a model bundle: ``model.joblib`` plus its card ``model.json``, integrity-checked."""

from __future__ import annotations

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

from model_bundle.features import coerce_features
from model_bundle.schema import SCHEMA_FILE

MODEL_FILE = "model.joblib"
CARD_FILE = "model.json"
FORMAT_VERSION = 1
REQUIRED_CARD_KEYS = ("format_version", "sha256", "task", "target", "features", "library_versions")
# A pickled scikit-learn model is only trusted by the exact version that wrote it.
VERSION_LOCKED_LIBRARIES = ("scikit-learn",)


class BundleError(RuntimeError):
    """A model bundle is missing, malformed or fails its integrity check; the message names the file."""


@dataclass(frozen=True)
class Bundle:
    model: Any
    card: dict
    directory: Path
    documents: dict[str, dict] = field(default_factory=dict)

    @property
    def schema(self) -> dict | None:
        """The data contract of the training data (``schema.json``), or None for a model saved without one."""
        return self.documents.get(SCHEMA_FILE)

    @property
    def features(self) -> list[dict[str, str]]:
        return self.card["features"]

    @property
    def feature_names(self) -> list[str]:
        return [feature["name"] for feature in self.card["features"]]

    @property
    def task(self) -> str:
        return self.card["task"]

    def predict(self, features: pd.DataFrame):
        """Predictions for raw feature columns, coerced exactly as in training (raises FeatureError)."""
        return self.model.predict(coerce_features(features, self.features))

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Class probabilities for raw feature columns (coerced as in ``predict``): one row per row of ``features``,
        one column per class of ``card["classes"]``, in that order.

        Raises BundleError for a regression model, or an estimator without class probabilities.
        """
        name = f"model {self.directory} ({self.card.get('estimator', type(self.model).__name__)})"
        if self.task != "classification":
            raise BundleError(f"{name} is a {self.task} model; only a classifier has class probabilities")
        if not hasattr(self.model, "predict_proba"):
            raise BundleError(f"{name} has no predict_proba: its estimator gives no class probabilities")
        # Probability columns follow the fitted model's classes_; the card promises its own order to callers.
        fitted = [str(label) for label in self.model.classes_]
        listed = [str(label) for label in self.card["classes"]]
        if fitted != listed:
            raise BundleError(f"{name} has classes {fitted} but its card lists {listed}")
        return self.model.predict_proba(coerce_features(features, self.features))


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


def save(directory: str | Path, model: Any, card: dict, documents: dict[str, dict] | None = None) -> dict:
    """Writes ``model``, its card and ``documents`` into ``directory``; returns the card as written.

    ``documents``: JSON files that travel with the model, by file name (``schema.json``: the data contract); the
    card records each one's sha256, so they are verified on loading like the model itself.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / MODEL_FILE
    joblib.dump(model, model_path)
    digests = {}
    for name, document in (documents or {}).items():
        if Path(name).name != name or name in (MODEL_FILE, CARD_FILE) or not name.endswith(".json"):
            raise BundleError(f"document name {name!r} must be a plain *.json file name other than {CARD_FILE}")
        (directory / name).write_text(json.dumps(document, indent=2, sort_keys=True, default=_json_default) + "\n")
        digests[name] = file_sha256(directory / name)
    written = {
        **card,
        "format_version": FORMAT_VERSION,
        "model_file": MODEL_FILE,
        "sha256": file_sha256(model_path),
        "documents": digests,
        "library_versions": library_versions(),
    }
    (directory / CARD_FILE).write_text(json.dumps(written, indent=2, sort_keys=True, default=_json_default) + "\n")
    return written


def read_card(directory: str | Path) -> dict:
    card_path = Path(directory) / CARD_FILE
    if not card_path.is_file():
        raise BundleError(f"no model card: {card_path} does not exist")
    try:
        card = json.loads(card_path.read_text())
    except json.JSONDecodeError as error:
        raise BundleError(f"model card {card_path} is not valid JSON: {error}") from error
    missing = [key for key in REQUIRED_CARD_KEYS if key not in card]
    if missing:
        raise BundleError(f"model card {card_path} lacks required key(s) {missing}")
    if card["format_version"] != FORMAT_VERSION:
        raise BundleError(
            f"model card {card_path} has format_version {card['format_version']}, expected {FORMAT_VERSION}"
        )
    return card


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
    _check_recorded_digest(model_path, actual, card["sha256"])
    runtime = library_versions()
    for name in VERSION_LOCKED_LIBRARIES:
        trained_with = card["library_versions"].get(name)
        if trained_with != runtime[name]:
            raise BundleError(
                f"{model_path} was written by {name} {trained_with} but this runtime has {runtime[name]}; "
                "the pins in requirements.txt and images/serving/requirements.txt must match"
            )
    documents = {name: _read_document(directory / name, digest) for name, digest in card.get("documents", {}).items()}
    return Bundle(model=joblib.load(model_path), card=card, directory=directory, documents=documents)


def _read_document(path: Path, expected_sha256: str) -> dict:
    if not path.is_file():
        raise BundleError(f"{path} is listed in the model card but does not exist")
    _check_recorded_digest(path, file_sha256(path), expected_sha256)
    return json.loads(path.read_text())


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
